"""Server-Sent Events helpers: framing and a DB-tailing generator that stops on disconnect."""

from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator, Awaitable, Callable

from fastapi import Request
from fastapi.responses import StreamingResponse

from activities.errors import InvalidInput

POLL_SECONDS = 0.25
KEEPALIVE_SECONDS = 15.0


def frame(data: Any, event: str | None = None, event_id: int | None = None) -> str:
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if event:
        lines.append(f"event: {event}")
    lines.append("data: " + json.dumps(data, default=str))
    return "\n".join(lines) + "\n\n"


class EventStreamResponse(StreamingResponse):
    """A stream of frames; routes also name it as their ``response_class`` (the documented media type)."""
    media_type = "text/event-stream"


def response(stream: AsyncIterator[str]) -> StreamingResponse:
    return EventStreamResponse(stream, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def tail(request: Request, fetch: Callable[[int], Awaitable[tuple[list[tuple[int, str]], bool]]],
               after: int) -> AsyncIterator[str]:
    """Repeatedly ``fetch(after)`` -> (frames as (id, text), finished); yields frames until finished."""
    idle = 0.0
    while not await request.is_disconnected():
        frames, finished = await fetch(after)
        for frame_id, text in frames:
            after = max(after, frame_id)
            yield text
        if finished:
            return
        if frames:
            idle = 0.0
        else:
            idle += POLL_SECONDS
            if idle >= KEEPALIVE_SECONDS:
                idle = 0.0
                yield ": keepalive\n\n"
        await asyncio.sleep(POLL_SECONDS)


MAX_EVENT_ID = 2**53  # ids the API hands out stay far below; larger ones are not ours


def last_event_id(request: Request, query_value: int | None) -> int:
    """Where a stream resumes: the ``Last-Event-ID`` header (an id this API sent), else the query."""
    header = request.headers.get("last-event-id", "").strip()
    if header.isdigit():
        if int(header) > MAX_EVENT_ID:
            raise InvalidInput(f"Last-Event-ID must be an event id (at most {MAX_EVENT_ID})")
        return int(header)
    return query_value or 0
