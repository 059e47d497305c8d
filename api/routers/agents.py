"""Endpoints GPU agents call with X-Worker-Token: register, heartbeat, job status, outputs, disconnect."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Literal

from fastapi import APIRouter, BackgroundTasks, Header, Request
from pydantic import BaseModel, Field

from activities.db.models import Worker
from activities.jobs import jobs
from activities.capacity import workers
from activities.audit.trail import audit
from api import outputs
from api.agent_events import nudge_queued_jobs, signal_agent_started
from api.deps import StateDep, WorkerDep, client_ip
from workflows.contracts import AgentStarted

router = APIRouter(prefix="/api/workers", tags=["agents"])
log = logging.getLogger(__name__)


class JobReport(BaseModel):
    status: Literal["running", "progress"]
    attempt: int = Field(ge=1)
    progress: dict | None = None
    logs: list[str] = Field(default_factory=list, max_length=10000)
    log_offset: int = Field(0, ge=0)


class Disconnect(BaseModel):
    reason: str | None = Field(None, max_length=500)


def heartbeat_interval(timeout: float) -> float:
    """Agents beat every 30 s (the guide's interval), or often enough for a short timeout."""
    return min(30.0, max(1.0, timeout / 4))


def _registration_answer(state, worker: Worker) -> dict:
    timeout = state.settings.heartbeat_timeout_seconds
    cfg = state.settings.temporal
    return {**workers.to_dict(worker, timeout), "heartbeat_interval_seconds": heartbeat_interval(timeout),
            "heartbeat_timeout_seconds": timeout,
            "temporal": {"address": cfg.public_address or cfg.address, "namespace": cfg.namespace,
                         "tls": bool(cfg.tls or cfg.tls_ca_path or cfg.tls_cert_path)}}


@router.post("/register")
def register(reg: workers.Registration, state: StateDep, agent: WorkerDep, request: Request,
             background: BackgroundTasks) -> dict:
    with state.db.session() as session:
        worker = workers.register(session, workers.get(session, agent.id), reg, client_ip(request))
        session.commit()
    background.add_task(nudge_queued_jobs, state.temporal)
    return _registration_answer(state, worker)


@router.post("/heartbeat")
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
            "heartbeat_interval_seconds": heartbeat_interval(timeout)}


@router.post("/job/{job_id}/status")
async def job_status(job_id: str, report: JobReport, state: StateDep, agent: WorkerDep) -> dict:
    def record() -> tuple[str, str]:
        with state.db.session() as session:
            job = jobs.get(session, job_id)
            worker = workers.get(session, agent.id)
            jobs.check_agent_may_report(job, worker, report.attempt, claiming=report.status == "running")
            jobs.append_logs(session, job_id, report.attempt, report.log_offset, report.logs)
            if report.progress is not None:
                job.progress = report.progress
                session.add(job)
            if report.status == "running":
                worker.current_job_id, worker.state = job_id, "busy"
                session.add(worker)
                audit(session, f"worker:{worker.name}", "job.claimed", "job", job_id, {"attempt": report.attempt})
            session.commit()
            return worker.id, worker.name

    worker_id, worker_name = await asyncio.to_thread(record)
    if report.status == "running":
        await signal_agent_started(state.temporal, job_id,
                                   AgentStarted(agent_id=worker_id, agent_name=worker_name, attempt=report.attempt))
    return {"accepted": True}


@router.put("/job/{job_id}/outputs/{name:path}", status_code=201)
async def upload_output(job_id: str, name: str, state: StateDep, agent: WorkerDep, request: Request,
                        x_content_sha256: Annotated[str | None, Header()] = None) -> dict:
    outputs.safe_name(name)

    def check() -> None:
        with state.db.session() as session:
            job = jobs.get(session, job_id)
            jobs.check_agent_may_report(job, workers.get(session, agent.id), job.attempt, claiming=False)

    await asyncio.to_thread(check)
    size, digest = await outputs.store(state.settings, job_id, name, request.stream(), x_content_sha256)
    return {"name": name, "size": size, "sha256": digest}


@router.post("/disconnect")
def disconnect(body: Disconnect, state: StateDep, agent: WorkerDep) -> dict:
    with state.db.session() as session:
        workers.disconnect(session, workers.get(session, agent.id), body.reason)
        session.commit()
    return {"ok": True}
