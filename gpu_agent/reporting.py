"""Ships a running job's log lines and progress to the API, about once a second.

Lines are numbered per attempt; ``log_offset`` of a post is the number of its first line, so
a post that failed is simply sent again (the API ignores lines it already has). A 409 or 404
means this agent no longer owns the job: ``lost`` is set and shipping stops.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from gpu_agent.orchestrator import Conflict, Gone, InvalidToken, NotFound, OrchestratorClient, OrchestratorError

log = logging.getLogger(__name__)

MAX_PENDING_LINES = 50_000
MAX_BATCH_BYTES = 512 * 1024  # well under the API's default 1 MiB body limit


class JobReporter:
    def __init__(self, orchestrator: OrchestratorClient, job_id: str, attempt: int, *, interval: float = 1.0):
        self.orchestrator, self.job_id, self.attempt, self.interval = orchestrator, job_id, attempt, interval
        self._pending: list[str] = []
        self._offset = 0  # sequence number of _pending[0]
        self._progress: dict[str, Any] | None = None
        self._progress_version = self._sent_version = 0
        self._failing = False
        self.lost = asyncio.Event()
        self.lost_reason = ""

    def add_line(self, line: str) -> None:
        self._pending.append(line)
        if len(self._pending) > MAX_PENDING_LINES:  # API unreachable for long: keep the newest lines
            dropped = len(self._pending) - MAX_PENDING_LINES
            del self._pending[:dropped]
            self._offset += dropped

    def set_progress(self, progress: dict[str, Any]) -> None:
        self._progress = progress
        self._progress_version += 1

    @property
    def idle(self) -> bool:
        return not self._pending and self._sent_version == self._progress_version

    def _batch(self) -> list[str]:
        size, count = 0, 0
        for line in self._pending:
            size += len(line.encode("utf-8", errors="replace")) + 4
            if count and size > MAX_BATCH_BYTES:
                break
            count += 1
        return self._pending[:count]

    async def flush(self) -> None:
        """Post everything pending. Raises the orchestrator's errors (lines stay pending)."""
        while not self.idle:
            batch, version = self._batch(), self._progress_version
            await self.orchestrator.job_status(self.job_id, status="progress", attempt=self.attempt,
                                               progress=self._progress, logs=batch, log_offset=self._offset)
            del self._pending[:len(batch)]
            self._offset += len(batch)
            self._sent_version = version

    async def try_flush(self, timeout: float) -> bool:
        """Best-effort flush with retries for up to ``timeout`` seconds (end of a job). True when done."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                await asyncio.wait_for(self.flush(), timeout=max(0.1, deadline - loop.time()))
                return True
            except (Conflict, NotFound, Gone, InvalidToken) as exc:
                log.info("final log flush for %s rejected: %s", self.job_id, exc.detail)
                return False
            except (OrchestratorError, asyncio.TimeoutError) as exc:
                if loop.time() + 0.5 >= deadline:
                    log.warning("could not ship the last %d log lines of %s: %s", len(self._pending), self.job_id, exc)
                    return False
                await asyncio.sleep(0.5)

    async def run(self) -> None:
        """Flush every ``interval`` seconds until cancelled or the job is lost."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.flush()
                if self._failing:
                    log.info("log shipping for %s works again", self.job_id)
                self._failing = False
            except (Conflict, NotFound, Gone) as exc:
                self.lost_reason = exc.detail or str(exc)
                log.warning("job %s attempt %s is no longer ours: %s", self.job_id, self.attempt, self.lost_reason)
                self.lost.set()
                return
            except OrchestratorError as exc:
                (log.debug if self._failing else log.warning)("cannot post progress of %s: %s", self.job_id, exc)
                self._failing = True
