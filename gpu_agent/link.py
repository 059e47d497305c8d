"""The agent's REST link to the control plane: register, heartbeat, disconnect.

API outages are logged and retried, never fatal (the orchestrator may restart). A rejected
token is fatal: ``on_fatal`` is called and the caller stops. Answers update ``AgentState``
(draining) and the link's ``task_queue`` / ``heartbeat_interval``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from gpu_agent import __version__
from gpu_agent.orchestrator import InvalidToken, NotFound, OrchestratorClient, OrchestratorError, UntrustedCertificate
from gpu_agent.state import AgentState

log = logging.getLogger(__name__)

INVALID_TOKEN_MESSAGE = "invalid worker token (rotated or mistyped?)"


class ControlPlaneLink:
    def __init__(self, orchestrator: OrchestratorClient, state: AgentState, *, name: str, persistent: bool,
                 hardware: dict[str, Any], on_fatal: Callable[[str], None],
                 sleep: Callable[[float], Awaitable[None]]):
        self.orchestrator, self.state, self.name, self.persistent = orchestrator, state, name, persistent
        self.hardware, self.on_fatal, self.sleep = hardware, on_fatal, sleep
        self.task_queue: str | None = None
        self.heartbeat_interval = 10.0
        self.registered = False
        self.requeue = False  # a re-registration moved this agent to another task queue

    def register_body(self) -> dict[str, Any]:
        return {"name": self.name, "hostname": socket.gethostname(), **self.hardware, "persistent": self.persistent,
                "current_job_id": self.state.current_job_id, "version": __version__}

    async def register_until_ok(self) -> dict[str, Any] | None:
        """Register, retrying (1 s doubling to 30 s) while the API is unreachable.

        Raises ``InvalidToken`` and ``UntrustedCertificate`` (the API's certificate is not trusted: this
        agent does not hand its token to it); returns None when a stop was requested meanwhile.
        """
        delay = 1.0
        while not self.state.stopping:
            try:
                answer = await self.orchestrator.register(self.register_body())
                self.apply_register(answer)
                return answer
            except (InvalidToken, UntrustedCertificate):
                raise
            except OrchestratorError as exc:
                log.warning("cannot register (%s); retrying in %.0f s", exc, delay)
            await self.sleep(delay)
            delay = min(delay * 2, 30.0)
        return None

    def apply_register(self, answer: dict[str, Any]) -> None:
        self.registered = True
        self.state.agent_id = str(answer.get("worker_id") or self.state.agent_id)
        self.state.agent_name = str(answer.get("name") or self.state.agent_name)
        self.apply_heartbeat(answer)
        log.info("registered as %s (%s) on task queue %s", self.state.agent_name, self.state.agent_id,
                 self.task_queue)

    def apply_heartbeat(self, answer: dict[str, Any]) -> None:
        queue = answer.get("task_queue")
        if queue and queue != self.task_queue:
            if self.task_queue:  # an admin changed the labels: poll the new pool's queue
                log.info("task queue changed from %s to %s", self.task_queue, queue)
                self.requeue = True
                self.state.notify()
            self.task_queue = queue
        interval = answer.get("heartbeat_interval_seconds")
        if interval:
            self.heartbeat_interval = max(1.0, float(interval))
        draining = bool(answer.get("draining"))
        if draining != self.state.draining:
            log.info("the control plane %s draining this agent", "is" if draining else "stopped")
        self.state.set_draining(draining)

    async def heartbeat_loop(self) -> None:
        """Heartbeat every ``heartbeat_interval`` s, and at once when the state changes."""
        failing = False
        while True:
            self.state.heartbeat_now.clear()
            try:
                await asyncio.wait_for(self.state.heartbeat_now.wait(), timeout=self.heartbeat_interval)
            except asyncio.TimeoutError:
                pass
            try:
                self.apply_heartbeat(await self.orchestrator.heartbeat(self.state.report_state,
                                                                       self.state.current_job_id))
                if failing:
                    log.info("heartbeats reach the control plane again")
                failing = False
            except InvalidToken:
                self.on_fatal(INVALID_TOKEN_MESSAGE)
                return
            except NotFound:
                log.warning("the control plane does not know this agent any more: registering again")
                await self._reregister()
            except OrchestratorError as exc:
                (log.debug if failing else log.warning)("heartbeat failed: %s", exc)
                failing = True

    async def _reregister(self) -> None:
        try:
            self.apply_register(await self.orchestrator.register(self.register_body()))
        except InvalidToken:
            self.on_fatal(INVALID_TOKEN_MESSAGE)
        except OrchestratorError as exc:
            log.warning("re-registration failed: %s", exc)
        self.state.notify()

    async def disconnect(self, reason: str) -> None:
        if not self.registered:
            return
        try:
            await self.orchestrator.disconnect(reason)
            log.info("disconnected from the control plane (%s)", reason)
        except OrchestratorError as exc:
            log.warning("disconnect failed: %s", exc)
