"""The admission queue: order, positions and reasons, limits, priority overrides, cancel."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func
from sqlmodel import Session, select

from activities.db.models_queue import Admission
from activities.errors import NotFound
from activities.capacity import admission
from activities.jobs import jobs
from activities.audit.trail import audit
from activities.identity.principals import Principal
from api.admission_nudge import nudge
from api.deps import PrincipalDep, SessionDep, StateDep, client_ip, require
from api.job_cancel import cancel_job

router = APIRouter(prefix="/api/queue", tags=["queue"])
QueueAdminDep = Annotated[Principal, Depends(require("queue.manage"))]


class ConcurrencyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_concurrent: int | None = Field(None, ge=1, le=100_000)
    user_max_concurrent: int | None = Field(None, ge=1, le=100_000)


class PriorityBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    priority: int | None = Field(ge=0, le=1000)  # null removes the override


def _entry(d: admission.Decision | None, a: Admission) -> dict[str, Any]:
    return {"job_id": a.job_id, "user": a.username, "user_id": a.user_id, "team": a.team_slug, "org": a.org_slug,
            "priority": admission.effective_priority(a), "priority_override": a.priority_override,
            "state": a.state, "position": d.position if d else None,
            "reason": (d.reason if d else None) if a.state == "waiting" else None,
            "enqueued_at": a.enqueued_at, "admitted_at": a.admitted_at}


def _snapshot(session: Session, principal: Principal | None = None) -> dict[str, Any]:
    decisions = admission.plan(session)
    waiting = [_entry(d, d.admission) for d in decisions]
    running = [_entry(None, a) for a in session.exec(select(Admission).where(Admission.state == "admitted")
                                                       .order_by(Admission.admit_seq))]
    if principal is not None and not principal.has("job.view.all"):
        waiting = [e for e in waiting if e["user_id"] == principal.user_id]
        running = [e for e in running if e["user_id"] == principal.user_id]
    return {"waiting": waiting, "running": running}


@router.get("")
def queue(session: SessionDep, principal: PrincipalDep) -> dict:
    return _snapshot(session, principal)


@router.get("/me")
def my_queue(session: SessionDep, principal: PrincipalDep) -> dict:
    snap = _snapshot(session)
    mine = {k: [e for e in v if e["user_id"] == principal.user_id] for k, v in snap.items()}
    return {**mine, "waiting_count": len(mine["waiting"]), "running_count": len(mine["running"])}


@router.get("/stats")
def stats(session: SessionDep, _: PrincipalDep) -> dict:
    qs = admission.settings(session)
    counts = dict(session.exec(select(Admission.state, func.count()).group_by(Admission.state)).all())
    by_user = dict(session.exec(select(Admission.username, func.count()).where(Admission.state == "admitted")
                                .group_by(Admission.username)).all())
    return {"running": counts.get("admitted", 0), "waiting": counts.get("waiting", 0),
            "max_concurrent": qs.max_concurrent, "user_max_concurrent": qs.user_max_concurrent,
            "running_by_user": by_user}


@router.get("/position/{job_id}")
def position(job_id: str, session: SessionDep, principal: PrincipalDep) -> dict:
    job = jobs.get(session, job_id)
    if not principal.may_see(job.owner_id):
        raise NotFound(f"job {job_id!r} not found")
    row = session.get(Admission, job_id)
    if row is None:
        return {"job_id": job_id, "state": "not_queued", "status": job.status, "position": None, "reason": job.queue_reason}
    decision = next((d for d in admission.plan(session) if d.admission.job_id == job_id), None)
    return {"job_id": job_id, "status": job.status, **{k: v for k, v in _entry(decision, row).items()
                                                       if k in ("state", "position", "reason", "priority")}}


@router.get("/concurrency")
def get_concurrency(session: SessionDep, _: PrincipalDep) -> dict:
    qs = admission.settings(session)
    return {"max_concurrent": qs.max_concurrent, "user_max_concurrent": qs.user_max_concurrent,
            "updated_at": qs.updated_at, "updated_by": qs.updated_by}


@router.post("/concurrency")
async def set_concurrency(body: ConcurrencyBody, state: StateDep, principal: QueueAdminDep, request: Request) -> dict:
    def store() -> dict:
        with state.db.session() as session:
            qs = admission.set_limits(session, body.max_concurrent, body.user_max_concurrent, principal.username)
            audit(session, principal.username, "queue.concurrency_changed", "queue", None, body.model_dump(),
                  ip=client_ip(request))
            session.commit()
            return {"max_concurrent": qs.max_concurrent, "user_max_concurrent": qs.user_max_concurrent}
    result = await asyncio.to_thread(store)
    await nudge(state)
    return result


@router.post("/{job_id}/priority")
async def set_priority(job_id: str, body: PriorityBody, state: StateDep, principal: QueueAdminDep,
                       request: Request) -> dict:
    def store() -> dict:
        with state.db.session() as session:
            jobs.get(session, job_id)
            row = admission.set_priority(session, job_id, body.priority)
            audit(session, principal.username, "queue.priority_changed", "job", job_id, {"priority": body.priority},
                  ip=client_ip(request))
            session.commit()
            return {"job_id": job_id, "priority": admission.effective_priority(row)}
    result = await asyncio.to_thread(store)
    await nudge(state)
    return result


@router.post("/{job_id}/cancel")
async def cancel(job_id: str, state: StateDep, principal: PrincipalDep, request: Request) -> dict:
    return await cancel_job(state, principal, job_id, client_ip(request))
