"""The health report's component per configured cloud provider: its circuit breaker, and with
``include_providers=true`` a live call with the global credential (its answer's latency)."""

from __future__ import annotations

import asyncio
import time

from activities.providers import circuit, registry
from activities.providers import settings as provider_settings
from activities.providers.base import ProviderCallError, ProviderRefused
from api.state import AppState


def _configured(state: AppState) -> list[tuple[object, dict]]:
    with state.db.read_session() as session:
        out = []
        for name in registry.names():
            row = provider_settings.config(session, name)
            if provider_settings.configured(row):
                continue  # not configured: not part of this deployment
            out.append((row, circuit.state(session, name)))
        return out


def _token(state: AppState, provider: str) -> str | None:
    with state.db.read_session() as session:
        try:
            return provider_settings.token(session, provider, None, state.settings.secret_resolver)[0]
        except ProviderRefused:
            return None


async def check(state: AppState, live: bool) -> list[dict]:
    components = []
    for row, breaker in await asyncio.to_thread(_configured, state):
        name = row.provider
        component = {"name": name, "kind": "provider", "circuit": breaker["state"], "status": "healthy",
                     "message": f"{name}: circuit {breaker['state'].replace('_', '-')}"}
        if breaker["state"] == "open":
            component.update(status="degraded", message=f"{name} unavailable: circuit open after repeated failures",
                             _detail=f"{name} circuit open: {breaker['last_error']}")
        elif live:
            component.update(await _live(state, row, name))
        components.append(component)
    return components


async def _live(state: AppState, row, name: str) -> dict:
    token = await asyncio.to_thread(_token, state, name)
    if token is None:
        return {"status": "degraded", "message": f"{name}: no global API token to check with"}
    started = time.perf_counter()
    try:
        async with provider_settings.connection(row, state.settings.outbound_http, token) as conn:
            await registry.get(name).validate(conn)
    except (ProviderCallError, ProviderRefused) as exc:
        return {"status": "degraded", "message": f"{name} API not answering as expected", "_detail": exc.detail}
    return {"latency_ms": round((time.perf_counter() - started) * 1000, 2), "message": f"{name} API reachable"}
