"""Changing the admission queue (``queue.manage``): the concurrency limits and a job's priority
override. Each change is audited and the line passes at once, for the REST routes and the console."""

from __future__ import annotations

import asyncio

from pydantic import ConfigDict, Field

from activities.audit.trail import audit
from activities.capacity import admission
from activities.capacity.admission_signals import pass_and_notify
from activities.identity.principals import Principal
from activities.jobs import jobs
from activities.request_body import RequestBody
from api.state import AppState


class ConcurrencyBody(RequestBody):
    model_config = ConfigDict(extra="forbid")
    max_concurrent: int | None = Field(None, ge=1, le=100_000)
    user_max_concurrent: int | None = Field(None, ge=1, le=100_000)


class PriorityBody(RequestBody):
    model_config = ConfigDict(extra="forbid")
    priority: int | None = Field(ge=0, le=1000)  # null removes the override


async def set_concurrency(state: AppState, principal: Principal, body: ConcurrencyBody, ip: str | None) -> dict:
    principal.require("queue.manage")

    def store() -> dict:
        with state.db.session() as session:
            qs = admission.set_limits(session, body.max_concurrent, body.user_max_concurrent, principal.username)
            audit(session, principal.username, "queue.concurrency_changed", "queue", None, body.model_dump(), ip=ip)
            session.commit()
            return {"max_concurrent": qs.max_concurrent, "user_max_concurrent": qs.user_max_concurrent}
    result = await asyncio.to_thread(store)
    await pass_and_notify(state.db.session, state.temporal)
    return result


async def set_priority(state: AppState, principal: Principal, job_id: str, body: PriorityBody,
                       ip: str | None) -> dict:
    principal.require("queue.manage")

    def store() -> dict:
        with state.db.session() as session:
            jobs.get(session, job_id)
            row = admission.set_priority(session, job_id, body.priority)
            audit(session, principal.username, "queue.priority_changed", "job", job_id, {"priority": body.priority},
                  ip=ip)
            session.commit()
            return {"job_id": job_id, "priority": admission.effective_priority(row)}
    result = await asyncio.to_thread(store)
    await pass_and_notify(state.db.session, state.temporal)
    return result
