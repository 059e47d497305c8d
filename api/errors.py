"""The one place domain errors and request validation errors become HTTP answers."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from temporalio.service import RPCError

from activities.errors import DomainError
from api.json_body import MALFORMED

log = logging.getLogger(__name__)


def _loc(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else {}
        if getattr(exc, "retry_after", None):
            headers["Retry-After"] = str(exc.retry_after)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        malformed = getattr(request.state, MALFORMED, None)  # api/json_body.py: judged after authentication
        if malformed is not None:
            return JSONResponse({"detail": f"malformed JSON body: {malformed}"}, status_code=400)
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            first = next(e for e in errors if e.get("type") == "json_invalid")
            msg = first.get("ctx", {}).get("error", "malformed JSON")
            return JSONResponse({"detail": f"malformed JSON body: {msg}"}, status_code=400)
        messages = [f"{_loc(tuple(e['loc']))}: {e['msg']}" for e in errors]
        return JSONResponse({"detail": "; ".join(messages), "errors": [
            {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in errors]}, status_code=422)

    @app.exception_handler(RuntimeError)
    async def _runtime(request: Request, exc: RuntimeError) -> JSONResponse:
        if str(exc).startswith("Failed client connect"):  # the lazy Temporal client could not dial
            log.warning("Temporal unreachable: %s", exc)
            return JSONResponse({"detail": "Temporal is unreachable; try again shortly"}, status_code=503)
        raise exc

    @app.exception_handler(RPCError)
    async def _temporal(_: Request, exc: RPCError) -> JSONResponse:
        log.warning("Temporal call failed: %s", exc)
        return JSONResponse({"detail": f"Temporal is unavailable: {exc.message}"}, status_code=503)
