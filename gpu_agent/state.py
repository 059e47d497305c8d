"""The agent's mutable state shared by the lifecycle loop and the training activity.

Everything runs on one asyncio loop, so plain attributes suffice; ``notify()`` wakes the
lifecycle loop and the heartbeat loop whenever something they react to changes.
"""

from __future__ import annotations

import asyncio


class AgentState:
    def __init__(self, name: str, persistent: bool):
        self.agent_id = ""
        self.agent_name = name
        self.persistent = persistent
        self.draining = False  # the control plane asked us to stop taking work
        self.stopping = False  # SIGTERM/SIGINT or a fatal error: shut down
        self.current_job_id: str | None = None
        self.jobs_started = 0
        self.jobs_finished = 0
        self.changed = asyncio.Event()  # for the lifecycle loop
        self.heartbeat_now = asyncio.Event()  # for the heartbeat loop

    def notify(self) -> None:
        self.changed.set()
        self.heartbeat_now.set()

    def accepting(self) -> bool:
        """May a new activity task start a job on this agent?"""
        if self.stopping or self.draining or self.current_job_id is not None:
            return False
        return self.persistent or self.jobs_started == 0  # ephemeral agents run one job

    def begin_job(self, job_id: str) -> bool:
        """Reserve the agent for a task; False when it takes no new work."""
        if not self.accepting():
            return False
        self.current_job_id = job_id
        self.notify()
        return True

    def job_started(self) -> None:
        """The task became a real job (claimed, or failed on its own): ephemeral agents end after it."""
        self.jobs_started += 1

    def end_job(self) -> None:
        if self.current_job_id is None:
            return
        self.current_job_id = None
        self.jobs_finished = self.jobs_started
        self.notify()

    def set_draining(self, draining: bool) -> None:
        if draining != self.draining:
            self.draining = draining
            self.notify()

    def request_stop(self) -> None:
        if not self.stopping:
            self.stopping = True
            self.notify()

    @property
    def busy(self) -> bool:
        return self.current_job_id is not None

    @property
    def report_state(self) -> str:
        """``state`` for the heartbeat: draining wins (the job id tells whether a job still runs)."""
        if self.draining or self.stopping or (not self.persistent and self.jobs_started > 0 and not self.busy):
            return "draining"
        return "busy" if self.busy else "idle"

    @property
    def done_with_work(self) -> bool:
        """True when this agent should take no more jobs, ever (it exits once idle)."""
        return self.stopping or (not self.persistent and (self.draining or self.jobs_finished > 0))
