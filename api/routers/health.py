"""Health: /api/cloud/health/live, /ready (503 when DB or Temporal is down) and the full report.

These answer everyone, so what they say is the same for everyone but a caller holding
``admin.config``: the status of each part and a plain message, never an exception text, an address
(host:port, URL) or a file path. A caller authenticated by a credential (API key, login session)
that holds ``admin.config`` also gets the details.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from activities.capacity import workers
from activities.db.engine import ping
from api import provider_health
from api.deps import OptionalPrincipalDep, StateDep
from api.schemas.health import HealthReport, Live, NotReady, Ready
from api.state import AppState

router = APIRouter(prefix="/api/cloud/health", tags=["health"])
VERSION = "0.1.0"


AUTHENTICATED = frozenset({"api_key", "session", "bearer_session"})  # not a network bypass or single-user mode


def _sees_details(principal: OptionalPrincipalDep) -> bool:
    return principal is not None and principal.via in AUTHENTICATED and principal.has("admin.config")


DetailsDep = Annotated[bool, Depends(_sees_details)]


def _check_db(state: AppState) -> dict:
    started = time.perf_counter()
    try:
        with state.db.read_session() as session:
            ping(session)
            agents = workers.list_all(session)
        latency = (time.perf_counter() - started) * 1000
        timeout = state.settings.heartbeat_timeout_seconds
        online = sum(1 for w in agents if workers.status_of(w, timeout) not in ("offline", "connecting"))
        return {"name": "database", "status": "healthy", "latency_ms": round(latency, 2),
                "message": f"{state.db.engine.dialect.name} database accessible", "_agents": (online, len(agents))}
    except Exception as exc:  # any driver error means the database is unusable
        return {"name": "database", "status": "unhealthy", "message": "database unavailable",
                "_detail": f"database error: {exc.__class__.__name__}: {exc}"}


async def _check_temporal(state: AppState) -> dict:
    started = time.perf_counter()
    where = f"{state.settings.temporal.address} namespace {state.settings.temporal.namespace}"
    try:
        await asyncio.wait_for(state.temporal.service_client.check_health(timeout=timedelta(seconds=2)), 3)
        return {"name": "temporal", "status": "healthy", "latency_ms": round((time.perf_counter() - started) * 1000, 2),
                "message": "Temporal reachable", "_detail": where}
    except Exception as exc:  # unreachable, timed out or refusing
        return {"name": "temporal", "status": "unhealthy", "message": "Temporal unreachable",
                "_detail": f"{where} unreachable: {exc.__class__.__name__}: {exc}"}


def _check_secrets(state: AppState) -> dict:
    """Which secrets providers are configured and whether each answers (never a value)."""
    states = state.settings.secret_resolver.states()
    failing = [s.name for s in states if not s.answers]
    names = ", ".join(s.name for s in states)
    message = (f"secrets provider(s) not answering: {', '.join(failing)}" if failing
               else f"secrets providers answering: {names}")
    return {"name": "secrets", "status": "unhealthy" if failing else "healthy", "message": message,
            "providers": [{"name": s.name, "status": "healthy" if s.answers else "unhealthy"} for s in states],
            "_detail": "; ".join(f"{s.name}: {s.detail}" for s in states)}


def _shown(component: dict, details: bool) -> dict:
    """The component as this caller may see it: the detailed message only with ``admin.config``."""
    shown = {k: v for k, v in component.items() if not k.startswith("_")}
    if details and "_detail" in component:
        shown["message"] = component["_detail"]
    return shown


@router.head("/live", operation_id="health_live_head", response_model=Live)
@router.get("/live", response_model=Live)
def live() -> dict:
    return {"status": "ok"}


NOT_READY = {503: {"model": NotReady, "description": "The database or Temporal is unavailable"}}


@router.head("/ready", operation_id="health_ready_head", response_model=Ready, responses=NOT_READY)
@router.get("/ready", response_model=Ready, responses=NOT_READY)
async def ready(state: StateDep, details: DetailsDep) -> JSONResponse:
    db, temporal = await asyncio.to_thread(_check_db, state), await _check_temporal(state)
    failing = [_shown(c, details) for c in (db, temporal) if c["status"] != "healthy"]
    if failing:
        return JSONResponse({"status": "not_ready", "detail": "; ".join(c["message"] for c in failing)},
                            status_code=503)
    return JSONResponse({"status": "ready"})


UNHEALTHY = {503: {"model": HealthReport, "description": "The same report, when a component is unhealthy"}}


@router.head("", operation_id="health_head", response_model=HealthReport, responses=UNHEALTHY)
@router.get("", response_model=HealthReport, responses=UNHEALTHY)
async def health(state: StateDep, details: DetailsDep, include_providers: bool = False) -> JSONResponse:
    """``include_providers=true`` also calls each configured cloud provider (adds its latency)."""
    db, temporal = await asyncio.to_thread(_check_db, state), await _check_temporal(state)
    secrets = await asyncio.to_thread(_check_secrets, state)
    providers = await provider_health.check(state, live=include_providers)
    online, total = db.pop("_agents", (0, 0))
    agents = {"name": "agents", "status": "healthy" if online else "degraded",
              "message": f"{online} of {total} agent(s) online", "online": online, "total": total}
    components = [_shown(c, details) for c in (db, temporal, agents, secrets, *providers)]
    status = ("unhealthy" if any(c["status"] == "unhealthy" for c in components)
              else "degraded" if any(c["status"] == "degraded" for c in components) else "healthy")
    return JSONResponse({"status": status, "version": VERSION,
                         "uptime_seconds": round(time.monotonic() - state.started_at, 1),
                         "timestamp": datetime.now(timezone.utc).isoformat(), "components": components},
                        status_code=503 if status == "unhealthy" else 200)
