"""Success answers that are not a JSON body: event streams and file downloads declare their media
type instead of a model (a route passes these as ``responses=`` with its ``response_class``)."""

from __future__ import annotations

from typing import Any

Responses = dict[int | str, dict[str, Any]]


def event_stream(what: str) -> Responses:
    """A ``text/event-stream`` answer (``response_class=sse.EventStreamResponse``): frames of ``id:``,
    ``event:`` and one JSON ``data:`` line, and ``: keepalive`` comments."""
    return {200: {"description": f"Server-Sent Events: {what}",
                  "content": {"text/event-stream": {"schema": {"type": "string"}}}}}


DOWNLOAD: Responses = {  # with response_class=FileResponse
    200: {"description": "The file's bytes; its Content-Type follows its name (application/octet-stream when "
                         "unknown)",
          "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}}}

REDIRECT: Responses = {302: {"description": "A redirect (Location header), no body"}}
