"""The agent's lifecycle: register, poll Temporal, drain, shut down, reconnect.

``Agent.run()`` returns the process exit code: 0 after a normal end (signal, ephemeral job
done, ephemeral drained), 2 when the worker token is rejected or the API's TLS certificate is not
trusted (``exit_message`` says why).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from gpu_agent.activity import TrainingActivity
from gpu_agent.detect import detect_hardware
from gpu_agent.guard_launcher import GuardLauncher
from gpu_agent.link import INVALID_TOKEN_MESSAGE, ControlPlaneLink
from gpu_agent.orchestrator import InvalidToken, OrchestratorClient, UntrustedCertificate, api_verify
from gpu_agent.state import AgentState
from gpu_agent.temporal_conn import TemporalAccess, connect_temporal

log = logging.getLogger(__name__)

EXIT_OK, EXIT_INVALID_TOKEN = 0, 2
NO_VERIFY_WARNING = ("--ssl-no-verify: the API's TLS certificate is NOT verified, so anyone on the network path can "
                     "pose as the control plane and take this agent's worker token and jobs; development only: give "
                     "the API's CA with --ca-bundle instead")


@dataclass
class AgentConfig:
    orchestrator_url: str
    worker_token: str
    name: str
    work_dir: Path
    persistent: bool = False
    temporal: TemporalAccess = field(default_factory=TemporalAccess)
    gpu_count: int | None = None
    hardware_type: str | None = None
    shutdown_grace: float = 30.0
    ssl_verify: bool = True  # False only with --ssl-no-verify (development): warned about at start
    ca_bundle: str | None = None  # the CA(s) trusted for the API's certificate instead of the system's


class Agent:
    def __init__(self, config: AgentConfig, orchestrator: OrchestratorClient | None = None,
                 hardware: dict[str, Any] | None = None, handle_signals: bool = True):
        self.config, self.hardware, self.handle_signals = config, hardware, handle_signals
        self.orchestrator = orchestrator or OrchestratorClient(
            config.orchestrator_url, config.worker_token, verify=api_verify(config.ssl_verify, config.ca_bundle))
        self.state = AgentState(config.name, config.persistent)
        self.launcher = GuardLauncher()
        self.activity = TrainingActivity(self.orchestrator, self.state, config.work_dir, self.launcher)
        self.link: ControlPlaneLink | None = None
        self.exit_code: int | None = None  # set by a fatal condition (rejected token)
        self.exit_message: str | None = None

    async def run(self) -> int:
        handled = self._install_signal_handlers() if self.handle_signals else []
        if not self.config.ssl_verify:
            log.warning(NO_VERIFY_WARNING)
        try:
            self.hardware = self.hardware or await asyncio.to_thread(
                detect_hardware, self.config.gpu_count, hardware_type_override=self.config.hardware_type)
            log.info("agent %s (%s): %s", self.config.name, "persistent" if self.config.persistent else "ephemeral",
                     self.hardware)
            self.link = ControlPlaneLink(self.orchestrator, self.state, name=self.config.name,
                                         persistent=self.config.persistent, hardware=self.hardware,
                                         on_fatal=self._fatal, sleep=self._sleep)
            await self.launcher.keep_spare()  # a claim is then a fork and an exec away from the training
            await self._run_sessions(self.link)
        except InvalidToken:
            self._fatal(INVALID_TOKEN_MESSAGE)
        except UntrustedCertificate as exc:  # registration refused to talk to an API it cannot verify
            self._fatal(str(exc))
        finally:
            for sig in handled:
                asyncio.get_running_loop().remove_signal_handler(sig)
            if self.link is not None and self.exit_code is None:
                await self.link.disconnect("shutdown" if self.state.stopping else
                                           "drained" if self.state.draining else "ephemeral agent done")
            await self.orchestrator.aclose()
            await self.launcher.close()
        return self.exit_code if self.exit_code is not None else EXIT_OK

    def _install_signal_handlers(self) -> list[signal.Signals]:
        handled = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                asyncio.get_running_loop().add_signal_handler(sig, self.request_stop, sig.name)
                handled.append(sig)
            except (ValueError, RuntimeError, NotImplementedError):  # not the main thread
                log.debug("cannot handle %s here", sig.name)
        return handled

    def request_stop(self, reason: str = "stop requested") -> None:
        """Graceful shutdown (SIGTERM/SIGINT): stop polling; a running job gets ``shutdown_grace`` s."""
        if self.state.stopping:
            log.info("%s: already shutting down", reason)
            return
        log.info("%s: shutting down (a running job gets up to %.0f s)", reason, self.config.shutdown_grace)
        self.state.request_stop()

    def _fatal(self, message: str) -> None:
        log.error(message)
        self.exit_code, self.exit_message = EXIT_INVALID_TOKEN, message
        self.state.request_stop()

    async def _run_sessions(self, link: ControlPlaneLink) -> None:
        """Register, connect, serve; after a failure back off (1 s doubling to 30 s) and start over."""
        backoff = 1.0
        while not self.state.done_with_work:
            answer = await link.register_until_ok()
            if answer is None:
                return
            try:
                client = await connect_temporal(answer.get("temporal") or {}, self.config.temporal,
                                                identity=self._identity())
                backoff = 1.0
                await self._serve(client, link)
                return
            except (InvalidToken, asyncio.CancelledError):
                raise
            except Exception as exc:  # Temporal unreachable, worker died, ...
                log.error("Temporal worker not running (%s: %s); registering and reconnecting in %.0f s",
                          type(exc).__name__, exc, backoff)
                await self._sleep(backoff)
                backoff = min(backoff * 2, 30.0)

    def _identity(self) -> str:
        return f"{self.state.agent_name}/{self.state.agent_id}@{socket.gethostname()}"

    async def _serve(self, client: Client, link: ControlPlaneLink) -> None:
        """Heartbeat, and run Temporal workers (again after an undrain or a queue change) until done."""
        beat = asyncio.create_task(link.heartbeat_loop(), name="agent-heartbeat")
        try:
            while not self.state.done_with_work:
                if self.state.draining and not link.requeue:
                    log.info("draining: not polling for jobs")
                    self.state.changed.clear()
                    await self.state.changed.wait()
                    continue
                link.requeue = False
                await self._run_worker(client, link)
        finally:
            beat.cancel()

    def _should_stop_polling(self, link: ControlPlaneLink) -> bool:
        if self.state.stopping:
            return True  # graceful_shutdown_timeout gives a running job `shutdown_grace` seconds
        wants_out = self.state.draining or self.state.done_with_work or link.requeue
        return wants_out and not self.state.busy  # otherwise let the current job finish first

    async def _run_worker(self, client: Client, link: ControlPlaneLink) -> None:
        assert link.task_queue is not None
        worker = Worker(client, task_queue=link.task_queue, activities=[self.activity.run_training],
                        max_concurrent_activities=1, max_heartbeat_throttle_interval=timedelta(seconds=1),
                        graceful_shutdown_timeout=timedelta(seconds=self.config.shutdown_grace),
                        identity=self._identity())
        running = asyncio.create_task(worker.run(), name="temporal-worker")
        shutdown: asyncio.Task[None] | None = None
        log.info("polling task queue %s", link.task_queue)
        try:
            while not running.done():
                self.state.changed.clear()
                if shutdown is None and self._should_stop_polling(link):
                    log.info("stopping the Temporal worker%s", " (a job is running)" if self.state.busy else "")
                    shutdown = asyncio.create_task(worker.shutdown())
                changed = asyncio.create_task(self.state.changed.wait())
                await asyncio.wait({running, changed}, return_when=asyncio.FIRST_COMPLETED)
                changed.cancel()
        finally:
            if not running.done():  # we are being cancelled: still stop the worker properly
                await asyncio.shield(worker.shutdown())
        running.result()  # a fatal worker error propagates
        if shutdown is None:
            raise RuntimeError("the Temporal worker stopped on its own")
        log.info("Temporal worker stopped")

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake up early when a stop is requested."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not self.state.stopping and loop.time() < deadline:
            self.state.changed.clear()
            try:
                await asyncio.wait_for(self.state.changed.wait(), timeout=deadline - loop.time())
            except asyncio.TimeoutError:
                return
