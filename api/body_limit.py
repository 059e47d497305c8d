"""ASGI middleware refusing oversized request bodies with 413 before a handler reads them all."""

from __future__ import annotations

import json
import re

from starlette.exceptions import HTTPException

UPLOAD_PATH = re.compile(r"^/api/workers/job/[^/]+/outputs/")
# The S3-compatible storage endpoint limits its own bodies (Settings.max_upload_bytes per object or part)
# and must answer S3's XML EntityTooLarge, not this middleware's JSON 413.
STORAGE_PATH = re.compile(r"^/api/cloud/storage(/|$)")


class BodyLimitMiddleware:
    def __init__(self, app, max_body_bytes: int, max_upload_bytes: int) -> None:
        self.app, self.max_body, self.max_upload = app, max_body_bytes, max_upload_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or STORAGE_PATH.match(scope["path"]):
            return await self.app(scope, receive, send)
        limit = self.max_upload if UPLOAD_PATH.match(scope["path"]) else self.max_body
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            body = json.dumps({"detail": f"request body too large (limit {limit} bytes)"}).encode()
            await send({"type": "http.response.start", "status": 413, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
            return await send({"type": "http.response.body", "body": body})
        seen = 0

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:  # chunked body without a length: stop reading, answer 413
                    raise HTTPException(413, detail=f"request body too large (limit {limit} bytes)")
            return message

        await self.app(scope, limited_receive, send)
