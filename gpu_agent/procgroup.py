"""Process-group hygiene: make sure nothing a training job started outlives it.

The training process is started in its own session, so its pid is also its process-group id
and every descendant that does not call ``setsid`` itself shares that group. Killing means
SIGTERM to the group, up to 1.5 s of grace, then SIGKILL.

A killed group is only *gone* once its zombies are reaped. Orphaned grandchildren are
re-parented to PID 1, which in containers often reaps late or never, so the agent marks
itself a *child subreaper* (Linux ``prctl``): orphans of its jobs become its own children
and ``reap_group`` collects them. The group leader itself is left to asyncio's child
watcher, which owns its exit status.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import sys
import time

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
TERM_GRACE_SECONDS = 1.5
_subreaper_done = False


def become_subreaper() -> bool:
    """Mark this process as a child subreaper (Linux only; idempotent). True when in effect."""
    global _subreaper_done
    if _subreaper_done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            log.debug("prctl(PR_SET_CHILD_SUBREAPER) failed: errno %s", ctypes.get_errno())
            return False
    except (OSError, AttributeError) as exc:
        log.debug("cannot become a child subreaper: %s", exc)
        return False
    _subreaper_done = True
    return True


_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def die_with_agent() -> None:
    """``preexec_fn`` of the training's group guard: the kernel signals it when the agent dies, even
    by SIGKILL. The guard (``gpu_agent/guard.py``) then ends the whole process group, so a lost
    agent never leaves any part of a job running next to its next attempt."""
    if _libc is not None:
        _libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)


def group_alive(pgid: int) -> bool:
    """True while any process (zombies included) is left in the group."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member exists but belongs to someone else
        return True
    return True


def signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def reap_group(pgid: int, leader_pid: int) -> None:
    """Reap exited members of the group that are our children, except the leader."""
    while True:
        try:
            info = os.waitid(os.P_PGID, pgid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return  # no child of ours left in that group
        except OSError:
            return
        if info is None or info.si_pid == leader_pid:
            return  # nothing exited yet, or only the leader (asyncio reaps it)
        try:
            os.waitpid(info.si_pid, os.WNOHANG)
        except ChildProcessError:
            pass


async def _wait_gone(pgid: int, leader_pid: int, deadline: float, poll: float = 0.02) -> bool:
    while True:
        reap_group(pgid, leader_pid)
        if not group_alive(pgid):
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(poll)


async def kill_group(pgid: int, leader_pid: int, grace: float = TERM_GRACE_SECONDS,
                     hard_deadline: float = 1.4) -> bool:
    """SIGTERM the group, wait up to ``grace`` s, SIGKILL, wait until it is gone. True when gone."""
    if not group_alive(pgid):
        return True
    signal_group(pgid, signal.SIGTERM)
    if await _wait_gone(pgid, leader_pid, time.monotonic() + grace):
        return True
    log.info("process group %s still alive %.1f s after SIGTERM: sending SIGKILL", pgid, grace)
    signal_group(pgid, signal.SIGKILL)
    # A member forked between the two signals would survive one SIGKILL: repeat until empty.
    deadline = time.monotonic() + hard_deadline
    while not await _wait_gone(pgid, leader_pid, min(deadline, time.monotonic() + 0.2)):
        if time.monotonic() >= deadline:
            log.error("process group %s survived SIGKILL (uninterruptible I/O?)", pgid)
            return False
        signal_group(pgid, signal.SIGKILL)
    return True
