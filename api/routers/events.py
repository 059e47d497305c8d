"""GET /api/events/stream: job status changes as SSE, resumable with Last-Event-ID."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Request
from activities.db.models import Job
from activities.errors import NotFound
from activities.jobs import events
from api import sse
from api.deps import PrincipalDep, StateDep
from api.event_hub import EventHub
from api.schemas.media import event_stream

router = APIRouter(tags=["events"])


@router.get("/api/events/stream", response_class=sse.EventStreamResponse,
            responses=event_stream("job, approval and quota events; each `data:` line is one event (id, event_type, "
                                   "job_id, status, data, created_at), its `id:` resumes the stream as Last-Event-ID"))
async def stream_events(state: StateDep, principal: PrincipalDep, request: Request,
                        last_event_id: Annotated[int | None, Query(ge=0, le=sse.MAX_EVENT_ID)] = None, job_id: str | None = None):
    owner = None if principal.has("job.view.all") else principal.user_id  # own jobs only
    hub: EventHub = request.app.state.event_hub
    if job_id is not None:  # one job's stream: a job the caller cannot see is a 404, not a silent stream
        def visible() -> bool:
            with state.db.read_session() as session:
                job = session.get(Job, job_id)
                return job is not None and principal.may_see(job.owner_id)
        if not await asyncio.to_thread(visible):
            raise NotFound(f"job {job_id!r} not found")

    def backlog(cursor: int) -> list[tuple[int, str]]:
        with state.db.read_session() as session:
            rows = events.after(session, cursor, job_id=job_id, owner_id=owner)
        return [(e.id, sse.frame(events.to_dict(e), e.event_type, e.id)) for e in rows]

    start = sse.last_event_id(request, last_event_id)  # a bad Last-Event-ID is a 422, before the stream
    if job_id is None and last_event_id is None and not request.headers.get("last-event-id", "").strip():
        def latest() -> int:  # the feed of every job starts now (last_event_id=0 replays the history)
            with state.db.read_session() as session:
                return events.latest_id(session)
        start = await asyncio.to_thread(latest)

    async def stream():
        cursor = start
        hub.join()
        try:
            while not await request.is_disconnected():
                held = hub.since(cursor)
                if held is None:  # further back than the hub remembers (or it is starting): the database
                    floor = hub.floor if hub.live else cursor  # every event up to it had committed already
                    frames = await asyncio.to_thread(backlog, cursor)
                    for frame_id, text in frames:
                        cursor = frame_id
                        yield text
                    if len(frames) < events.PAGE:
                        cursor = max(cursor, floor)
                        if not hub.live:
                            await asyncio.sleep(sse.POLL_SECONDS)
                    continue
                for event in held:
                    cursor = event.id
                    if (owner is None or event.owner_id == owner) and (job_id is None or event.job_id == job_id):
                        yield event.text
                if not await hub.wait(cursor, sse.KEEPALIVE_SECONDS):
                    yield ": keepalive\n\n"
        finally:
            hub.leave()

    return sse.response(stream())
