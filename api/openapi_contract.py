"""The OpenAPI document declares every answer a route can give, with the body it really has.

FastAPI documents each route's success and a 422 in its own validation-error shape. The handlers
here answer errors in one shape (``api/errors.py``): ``{"detail": "..."}``, plus ``errors`` (each
with ``loc``, ``msg``, ``type``) for a request that failed validation. This module replaces the
default 422 with that model and adds the statuses every route of a kind can answer:

- 401 (no or bad credentials) and 403 (no permission, a disabled account, or a browser session's
  write without its CSRF header) everywhere but health; on the sign-in routes also 400 (a bad or
  replayed OAuth state), 404 (unknown provider), 409 (the account belongs to another identity) and
  429 (too many failed attempts);
- 404 where the path names something; 409 on writes (the thing is in another state);
- 400 (a body that is not JSON), 413 (too large) and 422 where a body is read; 422 wherever a
  parameter is;
- 410 on an agent's job routes (the job no longer needs running);
- 429 (too many requests from one address, with ``Retry-After``) on every route the rate limits count
  (``api/rate_limit.py``: all but the excluded paths, when rate limiting is on);
- 503 wherever the database or Temporal is needed (all but the liveness probe).

A status a route declares with its own model keeps it (the health report answers 503 in its own
shape); success bodies are the routes' response models (``api/schemas``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_SCHEMA: dict[str, Any] = {
    "title": "ErrorResponse", "type": "object", "required": ["detail"],
    "properties": {
        "detail": {"type": "string", "description": "what went wrong, for people"},
        "errors": {"type": "array", "description": "422 only: each invalid input", "items": {
            "type": "object", "required": ["loc", "msg", "type"],
            "properties": {"loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
                           "msg": {"type": "string"}, "type": {"type": "string"}}}},
    },
}
_REF = {"$ref": "#/components/schemas/ErrorResponse"}
_WHY = {400: "Malformed request body", 401: "Not signed in, or the credentials are not valid",
        403: "Signed in, but not allowed (or a session's write without its CSRF header)",
        404: "Not found (or not visible to this caller)", 409: "Conflict with the current state",
        410: "The job no longer needs running", 413: "Request body too large",
        429: "Too many requests (from this address, or failed sign-ins); wait `Retry-After` seconds",
        422: "Invalid input: `errors` names each field", 503: "The database or Temporal is unavailable"}
_LIVENESS = "/api/cloud/health/live"
_HEALTH = "/api/cloud/health"
_SIGN_IN = ("/api/auth/login", "/api/auth/external/")
_WRITES = {"post", "put", "patch", "delete"}
_FASTAPI_422 = "#/components/schemas/HTTPValidationError"


def statuses(path: str, method: str, operation: dict[str, Any]) -> set[int]:
    """The error statuses an operation can answer, from its kind (see the module docstring)."""
    found: set[int] = set()
    if path.startswith(_HEALTH):
        return set() if path == _LIVENESS else {503}
    found |= {401, 403, 503}
    if path.startswith(_SIGN_IN):  # a bad or replayed state, an unknown provider, an account taken, too many tries
        found |= {400, 404, 409, 429}
    if "{" in path:
        found.add(404)
    if method in _WRITES:
        found |= {409, 422}
    if "requestBody" in operation:
        found |= {400, 413, 422}
    if operation.get("parameters"):
        found.add(422)
    if path.startswith("/api/workers/job/"):
        found.add(410)
    return found


def _own_body(response: dict[str, Any] | None) -> bool:
    """The route declared this status with a model of its own (FastAPI's default 422 is not one)."""
    schema = (response or {}).get("content", {}).get("application/json", {}).get("schema")
    return bool(schema) and schema.get("$ref") != _FASTAPI_422


_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer", "minimum": 1}}}


def document(app: FastAPI, limited: Callable[[str], bool] = lambda _path: False) -> dict[str, Any]:
    """``limited``: whether the rate limits count requests to a route path (they can then answer 429)."""
    spec = get_openapi(title=app.title, version=app.version, routes=app.routes, description=app.description)
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas["ErrorResponse"] = ERROR_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for path, operations in spec.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            found = statuses(path, method, operation) | ({429} if limited(path) else set())
            for code in found | {int(c) for c in responses if c.startswith(("4", "5"))}:
                if _own_body(responses.get(str(code))):
                    continue
                responses[str(code)] = {"description": _WHY.get(code, "Error"),
                                        "content": {"application/json": {"schema": _REF}}}
                if code == 429:
                    responses[str(code)]["headers"] = _RETRY_AFTER
    return spec


def install(app: FastAPI, limited: Callable[[str], bool] = lambda _path: False) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app, limited)
        return app.openapi_schema
    app.openapi = openapi  # type: ignore[method-assign]
