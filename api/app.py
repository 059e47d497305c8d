"""The FastAPI application factory. Nothing connects at import time."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from activities.runtime import load_config_dir, open_database
from activities.identity.bootstrap import backfill_levels, bootstrap_admin, ensure_service_identity
from activities.settings import Settings
from activities.temporal.client import connect, ensure_search_attributes
from api import console, errors, openapi_contract, rate_limit
from api.event_hub import EventHub
from api.body_limit import BodyLimitMiddleware
from api.correlation import CorrelationIdMiddleware
from api.http_metrics import HttpMetricsMiddleware, RouteSpotter
from api.json_body import JsonBodyMiddleware
from api.routers import all_routers
from api.routers.health import VERSION
from api.state import AppState

log = logging.getLogger("simpletuner.api")


async def _register_search_attributes(client) -> None:
    """Workflows are started with search attributes, so the namespace must know them; Temporal
    may come up after the API, hence the retries."""
    delay = 0.5
    while True:
        try:
            await ensure_search_attributes(client)
            return
        except Exception as exc:  # unreachable or still starting
            log.warning("cannot register search attributes yet (%s); retrying in %.0fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(30.0, delay * 2)


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        db = open_database(settings)
        bootstrap_admin(db.session, settings.admin_token_path, settings.admin_token)
        backfill_levels(db.session)
        if settings.network.bypass_auth_for_internal:
            ensure_service_identity(db.session, settings.network.bypass_identity, settings.network.bypass_level)
        loaded = load_config_dir(settings, db)
        if loaded:
            log.info("loaded %d config(s) from %s", len(loaded), settings.config_dir)
        client = await connect(settings.temporal, lazy=True)
        app.state.core = AppState(settings=settings, db=db, temporal=client)
        registering = asyncio.create_task(_register_search_attributes(client))
        app.state.event_hub = EventHub(db)
        app.state.event_hub.start()
        try:
            yield
        finally:  # also when a later start-up step (a router's lifespan) fails
            registering.cancel()
            await app.state.event_hub.stop()
            if app.state.rate_limiter is not None:
                await app.state.rate_limiter.close()
            db.engine.dispose()

    # FastAPIOffline: /docs and /redoc load Swagger UI and ReDoc from the API itself, not a CDN.
    app = FastAPIOffline(title="SimpleTuner control plane", version=VERSION, lifespan=lifespan)
    app.add_middleware(RouteSpotter)  # next to the router: tells HttpMetricsMiddleware the matched route
    app.add_middleware(JsonBodyMiddleware)  # inside the body limit: it reads bodies the limit has let through
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes,
                       max_upload_bytes=settings.max_upload_bytes)
    # per-address limits: only metrics and the correlation id see a refused request, nothing else runs for it
    limited = rate_limit.install(app, settings)
    app.add_middleware(HttpMetricsMiddleware)  # times every answer, also the body limit's 413
    app.add_middleware(CorrelationIdMiddleware)  # outermost: everything the request does runs under its id
    errors.install(app)
    openapi_contract.install(app, limited)
    for router in all_routers():
        app.include_router(router)
    console.install(app)  # the browser console at / (pages, static files, CSP): api/console
    return app
