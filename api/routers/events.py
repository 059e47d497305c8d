"""GET /api/events/stream: job status changes as SSE, resumable with Last-Event-ID."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Request
from activities.jobs import events
from api import sse
from api.deps import PrincipalDep, StateDep

router = APIRouter(tags=["events"])


@router.get("/api/events/stream")
async def stream_events(state: StateDep, principal: PrincipalDep, request: Request,
                        last_event_id: Annotated[int | None, Query(ge=0)] = None, job_id: str | None = None):
    def fetch(cursor: int):
        with state.db.read_session() as session:
            owner = None if principal.has("job.view.all") else principal.user_id  # own jobs only
            rows = events.after(session, cursor, job_id=job_id, owner_id=owner)
        return [(e.id, sse.frame(events.to_dict(e), e.event_type, e.id)) for e in rows], False

    start = sse.last_event_id(request, last_event_id)
    return sse.response(sse.tail(request, lambda c: asyncio.to_thread(fetch, c), start))
