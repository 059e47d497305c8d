"""Request bodies as the guides send them, and authentication before the body is judged.

1. ``curl -d '{…}'`` without ``-H 'Content-Type: application/json'`` sends curl's default form type.
   Such a body that is a JSON document is read as JSON when the request carries a token
   (``Authorization``, ``X-API-Key`` or an agent's ``X-Worker-Token``) or does not come from a
   browser at all (no cookie, no ``Origin``, no ``Sec-Fetch-*``: browsers send those with every
   cross-site post, scripts and curl send none; this covers single-user mode's callers without a
   key). A browser gets no such help: its writes must be JSON (with the CSRF header for a session),
   so a cross-site form post can never pass for one.
2. FastAPI parses a JSON body before it runs the route's dependencies, so a malformed body was
   answered 400 even to a caller without credentials. Here a malformed JSON body is replaced by a
   value no body model accepts and marked in the request state: the dependencies (authentication,
   permissions) run first, and only then does the validation handler answer 400 naming the JSON error.
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException

from api.body_limit import STORAGE_PATH, UPLOAD_PATH

MALFORMED = "malformed_json"  # request.state key: the parser's message
_SENTINEL = b'"\\u0000malformed JSON body"'  # a JSON string: no body model (all objects) accepts it
_FORM = b"application/x-www-form-urlencoded"
_TOKEN_HEADERS = (b"authorization", b"x-api-key", b"x-worker-token")
_BROWSER_HEADERS = (b"cookie", b"origin")
_WITH_BODY = {"POST", "PUT", "PATCH", "DELETE"}


def _is_json_type(value: bytes) -> bool:
    kind = value.split(b";", 1)[0].strip().lower()
    return kind == b"application/json" or kind.endswith(b"+json")


class JsonBodyMiddleware:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in _WITH_BODY or not scope["path"].startswith("/api/") \
                or UPLOAD_PATH.match(scope["path"]) or STORAGE_PATH.match(scope["path"]):  # S3 bodies: never buffered
            return await self.app(scope, receive, send)
        headers = [(k.lower(), v) for k, v in scope["headers"]]
        names = {k for k, _ in headers}
        content_type = next((v for k, v in headers if k == b"content-type"), None)
        browser = any(h in names for h in _BROWSER_HEADERS) or any(h.startswith(b"sec-fetch-") for h in names)
        scripted = any(h in names for h in _TOKEN_HEADERS) or not browser
        as_form = content_type is None or content_type.split(b";", 1)[0].strip().lower() == _FORM
        if not ((scripted and as_form) or (content_type is not None and _is_json_type(content_type))):
            return await self.app(scope, receive, send)

        body, more, messages = b"", True, []
        try:
            while more:
                message = await receive()
                messages.append(message)
                if message["type"] != "http.request":
                    break
                body += message.get("body", b"")
                more = message.get("more_body", False)
        except HTTPException as exc:  # the body limit stopped reading (413): answer it here, as the handlers would
            return await _answer(send, exc.status_code, exc.detail)
        if messages and messages[-1]["type"] != "http.request":  # the client went away
            return await self.app(scope, _replay(messages, receive), send)

        state = scope.setdefault("state", {})
        if body.strip():
            if scripted and as_form and body.lstrip()[:1] not in (b"{", b"["):
                return await self.app(scope, _replay([{"type": "http.request", "body": body}], receive), send)
            try:
                json.loads(body)
            except (ValueError, UnicodeDecodeError) as exc:
                state[MALFORMED] = str(exc)
                body = _SENTINEL
            if as_form:
                scope = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k.lower() != b"content-type"]
                         + [(b"content-type", b"application/json")]}
        return await self.app(scope, _replay([{"type": "http.request", "body": body}], receive), send)


async def _answer(send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _replay(messages, then):
    """The messages already read, then the connection's own (its disconnect, when it comes)."""
    pending = list(messages)

    async def receive():
        if pending:
            return pending.pop(0)
        return await then()
    return receive
