"""Finding processes by where they run (``/proc``): the training processes an agent left in its
work directory, for ``simpletuner dev`` to clean up after it and for the tests to check."""

from __future__ import annotations

import os
from pathlib import Path


def proc_state(pid: int) -> str | None:
    """The process's state letter (``R``, ``S``, ``Z``, ...), or None when it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[0]


def pid_alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    return proc_state(pid) not in (None, "Z", "X")


def processes_under(directory: Path, must_contain: str | None = None) -> list[int]:
    """Live (non-zombie) processes whose cwd, or an argument, is inside ``directory``; with
    ``must_contain``, only those whose path below ``directory`` has that component."""
    root = str(Path(directory).resolve())
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        pid = int(entry)
        paths = []
        try:
            paths.append(os.readlink(f"/proc/{pid}/cwd").removesuffix(" (deleted)"))
        except OSError:
            pass
        try:
            paths += [a for a in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
                      if a.startswith(root)]
        except OSError:
            pass
        for path in paths:
            if path != root and not path.startswith(root + os.sep):
                continue
            parts = Path(path[len(root):].lstrip(os.sep)).parts
            if must_contain is None or must_contain in parts:
                if pid_alive(pid):
                    found.append(pid)
                break
    return sorted(found)
