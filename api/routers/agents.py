"""Endpoints GPU agents call with X-Worker-Token: register, heartbeat, claim an attempt, report on it,
upload its outputs, disconnect. An agent learns what to run only from its claim's answer."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Literal

from fastapi import APIRouter, BackgroundTasks, Header, Query, Request
from pydantic import Field, model_validator

from activities.request_body import RequestBody
from activities.capacity import claims, workers
from activities.storage.credentials import job_storage_env
from activities.db.models import Worker
from activities.errors import DomainError
from activities.jobs import jobs
from api import outputs
from api.agent_events import nudge_queued_jobs, tell_agent_started
from api.deps import StateDep, WorkerDep, client_ip
from api.schemas.agents import Accepted, Assignment, Disconnected, HeartbeatAnswer, OutputStored, Registered
from workflows.contracts import AgentStarted, OutputFile

router = APIRouter(prefix="/api/workers", tags=["agents"])
log = logging.getLogger(__name__)
MAX_ATTEMPT = 1_000_000


class ClaimBody(RequestBody):
    attempt: int = Field(ge=1, le=MAX_ATTEMPT)


class JobReport(RequestBody):
    status: Literal["progress", "exited", "released"]
    attempt: int = Field(ge=1, le=MAX_ATTEMPT)
    progress: dict | None = None
    logs: list[str] = Field(default_factory=list, max_length=10000)
    log_offset: int = Field(0, ge=0, le=2**53)
    exit_code: int | None = Field(None, ge=-(2**31), le=2**31 - 1)

    @model_validator(mode="after")
    def _exit_code(self) -> "JobReport":
        if (self.status == "exited") != (self.exit_code is not None):
            raise ValueError("exit_code is required with status 'exited', and only then")
        return self


class Disconnect(RequestBody):
    reason: str | None = Field(None, max_length=500)


def heartbeat_interval(timeout: float) -> float:
    """Agents beat every 30 s (the guide's interval), or often enough for a short timeout."""
    return min(30.0, max(1.0, timeout / 4))


def _registration_answer(state, worker: Worker) -> dict:
    """The agent's own record and how to reach Temporal: the GPU namespace only, never the control
    namespace. TLS material and API keys are configured on the agent host, never handed out here."""
    timeout = state.settings.heartbeat_timeout_seconds
    cfg = state.settings.temporal
    return {**workers.to_dict(worker, timeout), "heartbeat_interval_seconds": heartbeat_interval(timeout),
            "heartbeat_timeout_seconds": timeout,
            "temporal": {"address": cfg.public_address or cfg.address, "namespace": cfg.gpu_namespace,
                         "tls": bool(cfg.tls or cfg.tls_ca_path or cfg.tls_cert_path)}}


@router.post("/register", response_model=Registered)
def register(reg: workers.Registration, state: StateDep, agent: WorkerDep, request: Request,
             background: BackgroundTasks) -> dict:
    with state.db.session() as session:
        worker = workers.register(session, workers.get(session, agent.id), reg, client_ip(request))
        session.commit()
    background.add_task(nudge_queued_jobs, state.temporal)
    return _registration_answer(state, worker)


@router.post("/heartbeat", response_model=HeartbeatAnswer)
def heartbeat(beat: workers.Heartbeat, state: StateDep, agent: WorkerDep, background: BackgroundTasks) -> dict:
    timeout = state.settings.heartbeat_timeout_seconds
    with state.db.session() as session:
        worker = workers.get(session, agent.id)
        was = workers.status_of(worker, timeout)
        workers.heartbeat(session, worker, beat)
        session.commit()
    if was in ("offline", "connecting"):
        background.add_task(nudge_queued_jobs, state.temporal)
    return {"status": workers.status_of(worker, timeout), "draining": worker.draining,
            "task_queue": worker.task_queue, "heartbeat_interval_seconds": heartbeat_interval(timeout)}


@router.post("/job/{job_id}/claim", response_model=Assignment)
async def claim(job_id: str, body: ClaimBody, state: StateDep, agent: WorkerDep, background: BackgroundTasks,
                request: Request) -> dict:
    """Claim an attempt received from the pool's queue; the answer is what to run (its ``config.env``
    carries the job's storage credential: ``AWS_ENDPOINT_URL_S3`` and the rest). 409: not yours
    (claimed by another agent, stale, this agent drains); 403: dispatched to another pool; 410: the
    job no longer needs it."""
    public = str(request.base_url)  # the address this agent reaches the API at: its training can, too

    def record() -> tuple[dict, AgentStarted]:
        with state.db.session() as session:
            worker = workers.get(session, agent.id)
            try:
                row, job = claims.claim(session, job_id, body.attempt, worker, state.settings.cost.hourly_rates_usd)
            except DomainError:
                session.commit()  # the refusal's audit entry
                raise
            storage = job_storage_env(session, job.id, public)
            session.commit()
            return claims.assignment(job, row, storage), AgentStarted(agent_id=worker.id, agent_name=worker.name,
                                                                      attempt=row.attempt)

    answer, started = await asyncio.to_thread(record)
    # The claim is recorded: the agent may start at once. Telling the job's workflow is a hint it
    # confirms in the database; a lost hint only delays its "running" until the dispatch settles.
    background.add_task(tell_agent_started, state.temporal, job_id, started)
    return answer


@router.post("/job/{job_id}/status", response_model=Accepted)
async def job_status(job_id: str, report: JobReport, state: StateDep, agent: WorkerDep,
                     background: BackgroundTasks) -> dict:
    """Logs and progress of the agent's claimed attempt; ``exited`` (with the process's exit code) or
    ``released`` (handed back unfinished) ends it."""
    def record() -> AgentStarted | None:
        with state.db.session() as session:
            worker = workers.get(session, agent.id)
            job, _ = claims.reporting_attempt(session, job_id, report.attempt, worker)
            # the workflow has not recorded the claim yet (its hint was lost?): tell it again
            retell = (AgentStarted(agent_id=worker.id, agent_name=worker.name, attempt=report.attempt)
                      if job.status != "running" and report.status == "progress" else None)
            jobs.append_logs(session, job_id, report.attempt, report.log_offset, report.logs)
            if report.progress is not None:
                job.progress = report.progress
                session.add(job)
            if report.status != "progress":
                claims.end(session, job_id, report.attempt, worker, report.status, report.exit_code)
            session.commit()
            return retell

    retell = await asyncio.to_thread(record)
    if retell is not None:
        background.add_task(tell_agent_started, state.temporal, job_id, retell)
    return {"accepted": True}


@router.put("/job/{job_id}/outputs/{name:path}", status_code=201, response_model=OutputStored)
async def upload_output(job_id: str, name: str, state: StateDep, agent: WorkerDep, request: Request,
                        attempt: Annotated[int, Query(ge=1, le=MAX_ATTEMPT)],
                        x_content_sha256: Annotated[str | None, Header()] = None) -> dict:
    """An output of the agent's current, claimed attempt (never of a stale one or another agent's)."""
    outputs.safe_name(name)

    def check() -> None:
        with state.db.session() as session:
            claims.reporting_attempt(session, job_id, attempt, workers.get(session, agent.id))

    def record(output: OutputFile) -> None:
        with state.db.session() as session:
            _, row = claims.reporting_attempt(session, job_id, attempt, workers.get(session, agent.id))
            claims.record_output(session, row, output)
            session.commit()

    await asyncio.to_thread(check)
    size, digest = await outputs.store(state.settings, job_id, attempt, name, request.stream(), x_content_sha256)
    await asyncio.to_thread(record, OutputFile(name=name, size=size, sha256=digest))
    return {"name": name, "size": size, "sha256": digest}


@router.post("/disconnect", response_model=Disconnected)
def disconnect(body: Disconnect, state: StateDep, agent: WorkerDep) -> dict:
    with state.db.session() as session:
        workers.disconnect(session, workers.get(session, agent.id), body.reason)
        session.commit()
    return {"ok": True}
