"""The ``run_training`` activity: claim the attempt, run what the claim's answer says, report, upload.

The task names only a job and an attempt; what to run (command, args, env) comes from the API's
answer to the claim, which the API gives only for an attempt dispatched to this agent's pool and not
claimed by another agent. Anything else in the task is ignored.

Outcomes (see PROTOCOL.md): exit 0 → outputs uploaded, ``exited`` reported, ``TrainingOutcome``;
non-zero exit → ``exited`` reported, non-retryable ``ERR_TRAINING_FAILED``; refused claim →
``ERR_AGENT_UNAVAILABLE`` (the job runs elsewhere), or ``ERR_DISPATCH_CLOSED`` when the job no longer
needs it; agent shutdown → ``released`` reported, ``ERR_AGENT_UNAVAILABLE``; cancellation or a lost
job → the process group is killed and the cancellation propagates. A lost job (409 while reporting) raises
``asyncio.CancelledError`` too; Temporal did not ask for it, so the SDK reports it as an
``ApplicationError`` of type ``"CancelledError"`` (the server rejects a plain cancelled failure
there), which the workflow has normally stopped waiting for anyway.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.observability import correlation
from activities.observability.log_context import LogContext

from gpu_agent.guard_launcher import GuardLauncher
from gpu_agent.orchestrator import Conflict, Gone, InvalidToken, NotFound, OrchestratorClient, OrchestratorError, \
    OrchestratorUnavailable
from gpu_agent.reporting import JobReporter
from gpu_agent.runner import TrainingProcess, build_env, prepare_job_dir, substitute
from gpu_agent.state import AgentState
from workflows.contracts import ERR_AGENT_UNAVAILABLE, ERR_DISPATCH_CLOSED, ERR_TRAINING_FAILED, \
    RUN_TRAINING_ACTIVITY, OutputFile, TrainingConfigSpec, TrainingOutcome, TrainingTask

log = logging.getLogger(__name__)
T = TypeVar("T")

HEARTBEAT_EVERY = 0.5
UPLOAD_ATTEMPTS = 3  # for answers other than "unreachable" (e.g. 400 checksum mismatch)


def unavailable(message: str) -> ApplicationError:
    """Hand the task back (retryable); BENIGN keeps the SDK from logging it as an error."""
    return ApplicationError(message, type=ERR_AGENT_UNAVAILABLE, category=ApplicationErrorCategory.BENIGN)


async def uninterruptible(awaitable: Awaitable[T]) -> T:
    """Finish ``awaitable`` even if we are cancelled meanwhile; re-raise the cancel afterwards."""
    task = asyncio.ensure_future(awaitable)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.cancelled():
                raise
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError()
    return task.result()


def sha256_file(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


class TrainingActivity:
    """Holds the agent's API client and identity; ``run_training`` is registered on the worker."""

    def __init__(self, orchestrator: OrchestratorClient, state: AgentState, work_dir: Path,
                 launcher: GuardLauncher | None = None):
        self.orchestrator, self.state, self.work_dir = orchestrator, state, Path(work_dir)
        self.launcher = launcher or GuardLauncher()

    @activity.defn(name=RUN_TRAINING_ACTIVITY)
    async def run_training(self, task: TrainingTask) -> TrainingOutcome:
        with LogContext(job_id=task.job_id, attempt=task.attempt):  # the correlation id came in the headers
            return await self._run_training(task)

    async def _run_training(self, task: TrainingTask) -> TrainingOutcome:
        job = f"{task.job_id} attempt {task.attempt}"
        if not self.state.begin_job(task.job_id):
            log.info("refusing %s: this agent takes no new work", job)
            raise unavailable(f"agent {self.state.agent_name} is not accepting jobs (draining or shutting down)")
        log.info("received %s (activity attempt %s)", job, activity.info().attempt)
        progress: dict[str, Any] = {}
        beat = asyncio.create_task(self._heartbeat_loop(lambda: progress))
        claimed = False
        try:
            config = await self._claim(task)  # a refused claim is not a job: an ephemeral agent keeps waiting
            claimed = True
            self.state.job_started()
            return await self._run(task, config, progress)
        except asyncio.CancelledError:
            details = activity.cancellation_details()
            if details is not None and details.worker_shutdown:
                log.warning("agent shutting down: handing %s back", job)
                if claimed:
                    await uninterruptible(self._report_end(task, "released"))
                raise unavailable(f"agent {self.state.agent_name} shut down; job handed back") from None
            log.info("%s cancelled (%s)", job, details)
            raise
        finally:
            beat.cancel()
            self.state.end_job()

    async def _heartbeat_loop(self, progress: Callable[[], dict[str, Any]]) -> None:
        while True:
            activity.heartbeat(dict(progress()))
            await asyncio.sleep(HEARTBEAT_EVERY)

    async def _run(self, task: TrainingTask, config: TrainingConfigSpec, progress: dict[str, Any]) -> TrainingOutcome:
        job_id, attempt = task.job_id, task.attempt
        if not config.command:
            await self._report_end(task, "exited", 127)
            raise ApplicationError(f"config {config.name!r} has an empty command: nothing to run",
                                   type=ERR_TRAINING_FAILED, non_retryable=True)
        try:
            paths = prepare_job_dir(self.work_dir, job_id, attempt, config.args)
        except OSError as exc:  # this machine's problem (disk full, permissions): run elsewhere
            await self._report_end(task, "released")
            raise unavailable(f"cannot prepare the job directory on {self.state.agent_name}: {exc}") from None
        reporter = JobReporter(self.orchestrator, job_id, attempt)

        def on_progress(latest: dict[str, Any]) -> None:
            progress.clear()
            progress.update(latest)
            reporter.set_progress(latest)

        env = build_env(config.env, job_id, attempt, paths, correlation_id=correlation.current())
        proc = TrainingProcess(substitute(config.command, paths), env, paths, on_line=reporter.add_line,
                               on_progress=on_progress, launcher=self.launcher)
        try:
            try:
                await uninterruptible(proc.start())  # a cancel mid-spawn must not leave an unkilled process
            except OSError as exc:
                await self._report_end(task, "exited", 127)
                raise ApplicationError(f"cannot start the training command {config.command[0]!r}: {exc}",
                                       type=ERR_TRAINING_FAILED, non_retryable=True) from None
            returncode = await self._supervise(proc, reporter)
        except BaseException:
            await uninterruptible(proc.kill())
            await uninterruptible(reporter.try_flush(timeout=3.0))
            raise
        await reporter.try_flush(timeout=10.0)
        if returncode != 0:
            log.warning("%s: training process exited with code %s", job_id, returncode)
            await self._report_end(task, "exited", returncode)
            raise ApplicationError(f"training process exited with code {returncode}", list(proc.tail),
                                   type=ERR_TRAINING_FAILED, non_retryable=True)
        log.info("%s: training finished in %.1f s; uploading outputs", job_id, proc.duration)
        outputs = await self._upload_outputs(task, paths.output_dir)
        await self._report_end(task, "exited", 0)
        return TrainingOutcome(exit_code=0, agent_id=self.state.agent_id, agent_name=self.state.agent_name,
                               outputs=outputs, duration_seconds=round(proc.duration, 3))

    async def _claim(self, task: TrainingTask) -> TrainingConfigSpec:
        """Claim the attempt and learn what to run; retry while the API is unreachable, hand the task
        back on refusal."""
        delay = 0.5
        while True:
            try:
                answer = await self.orchestrator.claim(task.job_id, task.attempt)
                return TrainingConfigSpec.model_validate(answer.get("config") or {})
            except Gone as exc:
                log.info("claim of %s: %s", task.job_id, exc.detail)
                raise ApplicationError(f"job {task.job_id} needs no attempt {task.attempt}: {exc.detail}",
                                       type=ERR_DISPATCH_CLOSED, non_retryable=True) from None
            except (Conflict, NotFound, InvalidToken) as exc:
                log.info("claim of %s refused: %s", task.job_id, exc)
                raise unavailable(f"orchestrator refused the job on {self.state.agent_name}: {exc.detail}") from None
            except OrchestratorUnavailable as exc:
                log.warning("cannot claim %s yet (%s); retrying in %.1f s", task.job_id, exc, delay)
            except (OrchestratorError, ValueError) as exc:
                raise unavailable(f"unexpected answer claiming the job: {exc}") from None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def _report_end(self, task: TrainingTask, how: str, exit_code: int | None = None) -> None:
        """Tell the API how the attempt ended (the control plane settles the job from this report)."""
        await self._until_accepted(lambda: self.orchestrator.job_status(
            task.job_id, status=how, attempt=task.attempt, exit_code=exit_code), f"reporting the end of {task.job_id}")

    async def _until_accepted(self, call: Callable[[], Awaitable[T]], what: str,
                              rejections_allowed: int | None = None) -> T:
        """``call()`` until the API takes it, backing off while it is unreachable. A 409/404/410 means the
        attempt is no longer ours (cancel); a rejected token hands the task back; other rejections are
        retried ``rejections_allowed`` times (None: as long as they last)."""
        delay, failures = 0.5, 0
        while True:
            try:
                return await call()
            except (Conflict, NotFound, Gone) as exc:
                raise asyncio.CancelledError(f"job lost while {what}: {exc.detail}") from None
            except InvalidToken as exc:
                raise unavailable(f"{what} rejected: {exc.detail}") from None
            except OrchestratorUnavailable as exc:
                log.warning("%s failed (%s); retrying in %.1f s", what, exc, delay)
            except OrchestratorError as exc:
                failures += 1
                if rejections_allowed is not None and failures >= rejections_allowed:
                    raise unavailable(f"{what} failed {failures} times: {exc}") from None
                log.warning("%s rejected (%s); retrying in %.1f s", what, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def _supervise(self, proc: TrainingProcess, reporter: JobReporter) -> int:
        """Wait for the exit while shipping logs; a lost job kills the process and cancels."""
        shipper = asyncio.create_task(reporter.run())
        exited = asyncio.create_task(proc.wait())
        lost = asyncio.create_task(reporter.lost.wait())
        try:
            await asyncio.wait({exited, lost}, return_when=asyncio.FIRST_COMPLETED)
            if exited.done():
                return exited.result()
            await proc.kill()
            raise asyncio.CancelledError(f"job lost: {reporter.lost_reason}")
        finally:
            for task in (shipper, exited, lost):
                task.cancel()

    async def _upload_outputs(self, task: TrainingTask, output_dir: Path) -> list[OutputFile]:
        outputs = []
        for path in sorted(p for p in output_dir.rglob("*") if p.is_file()):
            name = path.relative_to(output_dir).as_posix()
            sha256, size = await asyncio.to_thread(sha256_file, path)
            await self._upload_one(task, name, path, sha256)
            outputs.append(OutputFile(name=name, size=size, sha256=sha256))
        log.info("%s: uploaded %d output file(s)", task.job_id, len(outputs))
        return outputs

    async def _upload_one(self, task: TrainingTask, name: str, path: Path, sha256: str) -> None:
        await self._until_accepted(lambda: self.orchestrator.upload_output(task.job_id, task.attempt, name, path, sha256),
                                   f"uploading {name}", rejections_allowed=UPLOAD_ATTEMPTS)
