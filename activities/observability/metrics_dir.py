"""The directory of prometheus-client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``), made ready
before the API process imports prometheus-client.

Several API processes of one host may share the directory; a scrape of any of them then adds up the
counters and histograms of all. Each process holds a shared lock on ``.lock`` in it for its whole
life; a process that finds nobody holding it (the first to start after all stopped) wipes what a
previous run left, so counters start from zero with the run. The lock goes with the process, even
when it is killed. Must not import prometheus-client (it reads the variable when imported).
"""

from __future__ import annotations

import fcntl
import os
import re
from pathlib import Path

from activities.settings import ConfigFileError

ENV = "PROMETHEUS_MULTIPROC_DIR"
LOCK_NAME = ".lock"
METRIC_FILE = re.compile(r"^(counter|histogram|summary|gauge_[a-z]+)_\d+\.db$")


class MetricsDirError(ConfigFileError):
    """The directory cannot be used; the message names the variable."""


def prepare_from_env(env: dict[str, str] | os._Environ) -> int | None:
    """``prepare`` the directory the environment names, if any (run before prometheus-client is imported)."""
    path = env.get(ENV) or env.get(ENV.lower())
    return prepare(path) if path else None


def prepare(path: str) -> int:
    """Create ``path`` if needed, wipe it if no live process uses it, and join it; returns the lock's
    file descriptor (kept open, and inherited by an exec, for the life of the process)."""
    directory = Path(path)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise MetricsDirError(f"{ENV}={path}: cannot use it as the metrics directory ({exc.strerror})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pass  # other processes of this run are writing here: join them
    else:
        _wipe(directory)
    # Converting to shared may let another starting process wipe in between; neither has written yet.
    fcntl.flock(fd, fcntl.LOCK_SH)
    os.set_inheritable(fd, True)
    return fd


def _wipe(directory: Path) -> None:
    """Only prometheus-client's own files (``counter_<pid>.db``, ``gauge_all_<pid>.db``, ...): a
    directory named by mistake keeps everything else."""
    for entry in directory.iterdir():
        if METRIC_FILE.match(entry.name) and entry.is_file() and not entry.is_symlink():
            entry.unlink(missing_ok=True)
