"""The training's process-group guard: ``python -m gpu_agent.guard <command...>``.

The agent starts the guard as the leader of a new process group (session) and the guard runs the
training command as its child in that group, so everything the training starts is in the group too.
The agent has the kernel send the guard SIGTERM when the agent dies, even by SIGKILL (set between fork
and exec: ``procgroup.die_with_agent``); on that (or on SIGTERM or SIGINT from anyone) it ends the whole group: SIGTERM, up to ``GRACE`` seconds, then SIGKILL for what is
left (Linux: group members are found in /proc). So a
lost agent never leaves any part of an attempt running next to the next attempt elsewhere. Its exit
status is the command's (128 + the signal number when a signal ended it).

Kept to the few standard modules a process needs anyway (no ``subprocess``), so it starts in
milliseconds. The agent keeps one guard started ahead of time (``--await-command``: it waits on its
stdin for one JSON line ``{"argv": [...], "env": {...}, "cwd": "..."}``; end of input without one
ends it quietly), so even those milliseconds are not spent between a claim and the training's first
line.
"""

from __future__ import annotations

import _signal as signal  # the C module: ``signal`` would import enum, which costs more than the rest
import os
import sys
import time

GRACE = 1.5


_child: int | None = None  # pid of the training process
_parent = os.getppid()


def _members(group: int) -> list[int]:
    """Processes of ``group`` other than this guard (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            stat = open(f"/proc/{entry}/stat").read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 2 and fields[0] not in ("Z", "X") and int(fields[2]) == group:
            found.append(int(entry))
    return found


def _end_group(signum: int, _frame) -> None:
    """Terminate every other process of the group, then exit with the training's status."""
    group = os.getpgrp()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # our own group-wide SIGTERM must not re-enter here
    if os.getppid() != _parent:  # the agent died: the kernel told only us, so tell the group
        try:
            os.killpg(group, signal.SIGTERM)
        except ProcessLookupError:
            pass
    # (otherwise the signal came to the whole group, from the agent's kill: not sent twice)
    deadline = time.monotonic() + GRACE
    status = None
    while time.monotonic() < deadline:
        if _child is not None and status is None:
            status = _reap(os.WNOHANG)
        if not _members(group):
            break
        time.sleep(0.02)
    for pid in _members(group):  # whatever ignored SIGTERM
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if _child is not None and status is None:
        status = _reap(0)
    os._exit(128 + signum if status is None else status)


def _reap(flags: int) -> int | None:
    """The training process's exit status as a shell would report it, or None while it runs."""
    try:
        pid, raw = os.waitpid(_child, flags)
    except ChildProcessError:
        return None
    if pid == 0:
        return None
    return os.waitstatus_to_exitcode(raw) if os.WIFEXITED(raw) else 128 + os.WTERMSIG(raw)


def _awaited_command() -> tuple[list[str], dict[str, str] | None] | None:
    """The command the agent sends on stdin (``--await-command``), after changing to its directory;
    None when the agent closed stdin without sending one."""
    import json  # only here: the waiting guard has time, the direct one does not

    line = sys.stdin.buffer.readline()
    if not line.strip():
        return None
    spec = json.loads(line)
    os.chdir(spec["cwd"])
    return [str(arg) for arg in spec["argv"]], {str(k): str(v) for k, v in spec["env"].items()}


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m gpu_agent.guard <command> [args...] | --await-command", file=sys.stderr)
        return 2
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _end_group)
    if os.getppid() != _parent:  # the agent died before the kernel could be told
        _end_group(signal.SIGTERM, None)
    env = None
    if argv == ["--await-command"]:
        try:
            awaited = _awaited_command()
        except (ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
            os.write(2, f"cannot start the training: {exc}\n".encode())
            return 127
        if awaited is None:
            return 0
        argv, env = awaited
        if not argv:
            return 2
    global _child
    pid = os.fork()
    if pid == 0:  # the training: same group, stdin from /dev/null, stdout/stderr inherited
        try:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(sig, signal.SIG_DFL)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            if env is None:
                os.execvp(argv[0], argv)
            else:
                os.execvpe(argv[0], argv, env)
        except OSError as exc:
            os.write(2, f"cannot start {argv[0]!r}: {exc}\n".encode())
        os._exit(127)
    _child = pid
    while True:
        try:
            status = _reap(0)
        except InterruptedError:
            continue
        return 127 if status is None else status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
