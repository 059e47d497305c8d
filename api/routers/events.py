"""GET /api/events/stream: job status changes as SSE, resumable with Last-Event-ID."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlmodel import col, select

from activities.db.models import Job, JobEvent
from api import sse
from api.deps import PrincipalDep, StateDep

router = APIRouter(tags=["events"])


def event_dict(event: JobEvent) -> dict:
    return {"id": event.id, "event_type": event.event_type, "job_id": event.job_id, "status": event.status,
            "data": event.data, "created_at": event.created_at}


@router.get("/api/events/stream")
async def stream_events(state: StateDep, principal: PrincipalDep, request: Request,
                        last_event_id: Annotated[int | None, Query(ge=0)] = None, job_id: str | None = None):
    def fetch(cursor: int):
        with state.db.session() as session:
            query = select(JobEvent).where(JobEvent.id > cursor)
            if job_id:
                query = query.where(JobEvent.job_id == job_id)
            if not principal.has("job.view.all"):  # own jobs only
                query = query.where(col(JobEvent.job_id).in_(select(Job.id).where(Job.owner_id == principal.user_id)))
            rows = list(session.exec(query.order_by(JobEvent.id).limit(500)))
        return [(e.id, sse.frame(event_dict(e), e.event_type, e.id)) for e in rows], False

    start = sse.last_event_id(request, last_event_id)
    return sse.response(sse.tail(request, lambda c: asyncio.to_thread(fetch, c), start))
