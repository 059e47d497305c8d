"""Starts training commands under their group guard (``gpu_agent/guard.py``), with one guard kept
started ahead of time.

A guard is a fresh Python interpreter (about 15 ms here) started from the agent with the kernel's
"signal me when my parent dies" set between fork and exec (``procgroup.die_with_agent``). Once
``keep_spare()`` is called (the agent does at start), the launcher keeps one guard waiting for its
command on stdin; a launch hands that guard the command, working directory and environment and
starts the next spare in the background, so a claim is followed by the training's first line within
a fork and an exec. A spare holds nothing secret (it starts with an empty environment) and dies with
the agent like any guard; ``close()`` ends it on shutdown. Without a spare (or if it died), the
guard is started for the command directly, as before.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Mapping
from pathlib import Path

from gpu_agent import procgroup

log = logging.getLogger(__name__)

GUARD = Path(__file__).with_name("guard.py")  # run by path, isolated, no site: only the standard library
GUARD_ARGV = (sys.executable, "-I", "-S", str(GUARD))
PIPE_LIMIT = 256 * 1024


class GuardLauncher:
    def __init__(self) -> None:
        self._keep = False
        self._spare: asyncio.subprocess.Process | None = None
        self._refill: asyncio.Task[None] | None = None

    async def keep_spare(self) -> None:
        """From now on keep one guard started ahead of the next launch."""
        self._keep = True
        await self._start_spare()

    async def launch(self, argv: list[str], cwd: Path, env: Mapping[str, str]) -> asyncio.subprocess.Process:
        """The training ``argv`` running under a guard that leads a new process group (stdout and
        stderr merged into ``proc.stdout``). The executable was checked by the caller."""
        procgroup.become_subreaper()
        spare = await self._take_spare()
        if spare is None:
            return await asyncio.create_subprocess_exec(
                *GUARD_ARGV, *argv, cwd=cwd, env=dict(env), stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
                preexec_fn=procgroup.die_with_agent, limit=PIPE_LIMIT)
        assert spare.stdin is not None
        spare.stdin.write(json.dumps({"argv": list(argv), "env": dict(env), "cwd": str(cwd)}).encode() + b"\n")
        spare.stdin.close()
        self._refill = asyncio.create_task(self._start_spare(), name="guard-spare")
        return spare

    async def close(self) -> None:
        """End the spare (closing its stdin ends it without running anything)."""
        self._keep = False
        if self._refill is not None:
            await asyncio.gather(self._refill, return_exceptions=True)
        spare, self._spare = self._spare, None
        if spare is not None and spare.returncode is None and spare.stdin is not None:
            spare.stdin.close()
            try:
                await asyncio.wait_for(spare.wait(), 5.0)
            except asyncio.TimeoutError:
                spare.kill()

    async def _take_spare(self) -> asyncio.subprocess.Process | None:
        if self._refill is not None and not self._refill.done():
            await asyncio.gather(self._refill, return_exceptions=True)
        spare, self._spare = self._spare, None
        if spare is not None and spare.returncode is not None:
            log.warning("the spare training guard (pid %s) had exited with %s", spare.pid, spare.returncode)
            return None
        return spare

    async def _start_spare(self) -> None:
        if not self._keep or self._spare is not None:
            return
        try:
            self._spare = await asyncio.create_subprocess_exec(
                *GUARD_ARGV, "--await-command", cwd="/", env={}, stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
                preexec_fn=procgroup.die_with_agent, limit=PIPE_LIMIT)
        except OSError as exc:
            log.warning("cannot start a spare training guard (%s); guards start with each job", exc)

