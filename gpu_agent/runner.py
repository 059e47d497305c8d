"""Runs one training process: job directory, command, environment, output capture, kill.

Layout of an attempt: ``<work_dir>/<job_id>/attempt-<n>/`` holding ``config.json`` (the
config's ``args``), ``output/`` (uploaded after a successful exit) and ``train.log`` (every
line the process printed, stdout and stderr merged).
"""

from __future__ import annotations

import asyncio
import codecs
import errno
import collections
import json
import logging
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from activities.observability.correlation import ENV_VAR as CORRELATION_ENV
from gpu_agent import procgroup
from gpu_agent.guard_launcher import GUARD, GuardLauncher  # noqa: F401  (GUARD: the guard's path, for tests)

log = logging.getLogger(__name__)

PROGRESS_PREFIX = "SIMPLETUNER_PROGRESS"
MAX_LINE_CHARS = 16 * 1024
READ_CHUNK = 64 * 1024
EXIT_POLL_SECONDS = 0.05
_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # tqdm-style \r redraws count as lines too
_HIDDEN_ENV = ("SIMPLETUNER_WORKER_TOKEN",)  # never leak the agent's credential to user code


def executable(program: str, cwd: Path, path_env: str | None) -> str:
    """The file ``program`` names (as ``execvp`` would find it), or FileNotFoundError/PermissionError."""
    if os.sep in program:
        candidate = Path(program) if os.path.isabs(program) else Path(cwd) / program
        if not candidate.is_file():
            raise FileNotFoundError(errno.ENOENT, "No such file", program)
        if not os.access(candidate, os.X_OK):
            raise PermissionError(errno.EACCES, "Not executable", program)
        return str(candidate)
    found = shutil.which(program, path=path_env if path_env is not None else os.defpath)
    if found is None:
        raise FileNotFoundError(errno.ENOENT, "No such file in PATH", program)
    return found


@dataclass(frozen=True)
class JobPaths:
    job_dir: Path
    config_path: Path
    output_dir: Path
    log_path: Path


def prepare_job_dir(work_dir: Path, job_id: str, attempt: int, args: Mapping[str, Any]) -> JobPaths:
    """Create a fresh attempt directory (any leftover from an earlier run is removed)."""
    job_dir = Path(work_dir).expanduser().resolve() / job_id / f"attempt-{attempt}"
    if job_dir.exists():
        shutil.rmtree(job_dir)
    output_dir = job_dir / "output"
    output_dir.mkdir(parents=True)
    config_path = job_dir / "config.json"
    config_path.write_text(json.dumps(dict(args), indent=2, sort_keys=True))
    return JobPaths(job_dir, config_path, output_dir, job_dir / "train.log")


def substitute(command: list[str], paths: JobPaths) -> list[str]:
    """Replace ``{python}``, ``{config_path}``, ``{output_dir}`` and ``{job_dir}`` in each argument."""
    values = {"{python}": sys.executable, "{config_path}": str(paths.config_path),
              "{output_dir}": str(paths.output_dir), "{job_dir}": str(paths.job_dir)}
    result = []
    for arg in command:
        for key, value in values.items():
            arg = arg.replace(key, value)
        result.append(arg)
    return result


def build_env(config_env: Mapping[str, str], job_id: str, attempt: int, paths: JobPaths,
              base: Mapping[str, str] | None = None, correlation_id: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in (os.environ if base is None else base).items() if k not in _HIDDEN_ENV}
    env.setdefault("PYTHONUNBUFFERED", "1")  # progress lines should arrive as they are printed
    env.update({str(k): str(v) for k, v in config_env.items()})
    env.update({"SIMPLETUNER_JOB_ID": job_id, "SIMPLETUNER_ATTEMPT": str(attempt),
                "SIMPLETUNER_CONFIG_PATH": str(paths.config_path), "SIMPLETUNER_OUTPUT_DIR": str(paths.output_dir),
                "SIMPLETUNER_JOB_DIR": str(paths.job_dir)})
    env.pop(CORRELATION_ENV, None)  # only the job's own id, never one from the config or the agent's environment
    if correlation_id:
        env[CORRELATION_ENV] = correlation_id
    return env


def parse_progress(line: str) -> dict[str, Any] | None:
    """The dict of a ``SIMPLETUNER_PROGRESS {json}`` line, else None. Adds ``percent`` if derivable."""
    text = line.strip()
    if not text.startswith(PROGRESS_PREFIX):
        return None
    try:
        data = json.loads(text[len(PROGRESS_PREFIX):].strip())
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    step, total = data.get("step"), data.get("total_steps")
    if "percent" not in data and isinstance(step, (int, float)) and isinstance(total, (int, float)) and total > 0:
        data["percent"] = round(100.0 * step / total, 2)
    return data


class TrainingProcess:
    """One running training command. ``start()``, then ``wait()`` or ``kill()``."""

    def __init__(self, argv: list[str], env: Mapping[str, str], paths: JobPaths,
                 on_line: Callable[[str], None] | None = None,
                 on_progress: Callable[[dict[str, Any]], None] | None = None, launcher: GuardLauncher | None = None):
        self._launcher = launcher or GuardLauncher()  # the agent's keeps a guard started ahead
        self.argv, self.env, self.paths = argv, dict(env), paths
        self._on_line, self._on_progress = on_line, on_progress
        self.latest_progress: dict[str, Any] | None = None
        self.tail: collections.deque[str] = collections.deque(maxlen=20)
        self.line_count = 0
        self.returncode: int | None = None
        self.started_at = self.ended_at = 0.0
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._group_gone = False  # once empty, never signal the pgid again (it could be reused)

    @property
    def pid(self) -> int:
        assert self._proc is not None, "not started"
        return self._proc.pid

    pgid = pid  # start_new_session=True: the leader's pid is the group id

    @property
    def duration(self) -> float:
        return (self.ended_at or time.monotonic()) - self.started_at if self.started_at else 0.0

    async def start(self) -> None:
        """Spawn the process under its group guard (``gpu_agent/guard.py``: the whole process group dies
        with the agent); raises OSError when the executable cannot be found or run."""
        executable(self.argv[0], self.paths.job_dir, self.env.get("PATH"))
        self._proc = await self._launcher.launch(self.argv, self.paths.job_dir, self.env)
        self.started_at = time.monotonic()
        log.info("started training process pid %s: %s", self._proc.pid, " ".join(self.argv))
        self._reader = asyncio.create_task(self._read_output(), name=f"train-output-{self._proc.pid}")

    def _emit(self, line: str, log_file) -> None:
        if len(line) > MAX_LINE_CHARS:
            line = line[:MAX_LINE_CHARS] + " [truncated]"
        self.line_count += 1
        self.tail.append(line)
        log_file.write(line + "\n")
        progress = parse_progress(line)
        if progress is not None:
            self.latest_progress = progress
            if self._on_progress:
                self._on_progress(progress)
        if self._on_line:
            self._on_line(line)

    async def _read_output(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pending = ""
        with open(self.paths.log_path, "a", encoding="utf-8") as log_file:
            while chunk := await self._proc.stdout.read(READ_CHUNK):
                text = pending + decoder.decode(chunk)
                held = "\r" if text.endswith("\r") else ""  # maybe the first half of \r\n
                parts = _LINE_BREAK.split(text[:-1] if held else text)
                pending = parts.pop() + held
                for line in parts:
                    self._emit(line, log_file)
                if len(pending) > MAX_LINE_CHARS:  # a huge line without a break: cut it
                    self._emit(pending, log_file)
                    pending = ""
                log_file.flush()
            pending = (pending + decoder.decode(b"", final=True)).rstrip("\r")
            if pending:
                self._emit(pending, log_file)

    async def wait(self) -> int:
        """Wait for the process to exit, then kill what is left of its group. Returns the exit code."""
        assert self._proc is not None
        # Process.wait() also waits for the pipe to close, which a lingering grandchild can hold
        # open forever (Python 3.11), so poll the exit status the child watcher records instead.
        while self._proc.returncode is None:
            await asyncio.sleep(EXIT_POLL_SECONDS)
        self.ended_at = self.ended_at or time.monotonic()
        self.returncode = self._proc.returncode
        if procgroup.group_alive(self.pgid):  # leftovers (dataloader workers, ...) die with the job
            log.info("process %s exited with %s; killing the rest of its group", self.pid, self.returncode)
            self._group_gone = await procgroup.kill_group(self.pgid, self.pid)
        else:
            self._group_gone = True
        await self._finish_reader()
        return self.returncode

    async def kill(self) -> None:
        """SIGTERM the whole group, SIGKILL after 1.5 s, reap. The group is gone within 3 s."""
        if self._proc is None or self._group_gone:
            return
        if self._proc.returncode is None:
            log.info("killing training process group %s", self.pgid)
        self._group_gone = await procgroup.kill_group(self.pgid, self.pid)
        deadline = time.monotonic() + 1.0  # the watcher reports the reaped leader's status soon after
        while self._proc.returncode is None and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        self.ended_at = self.ended_at or time.monotonic()
        self.returncode = self._proc.returncode
        await self._finish_reader(timeout=1.0)

    async def _finish_reader(self, timeout: float = 2.0) -> None:
        """Let the reader drain the pipe; give up if an escaped process still holds it open."""
        if self._reader is None or self._reader.done():
            return
        done, _ = await asyncio.wait({self._reader}, timeout=timeout)
        if not done:
            log.warning("output pipe of pid %s still open after exit (a process left the group?)", self.pid)
            self._reader.cancel()
