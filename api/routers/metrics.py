"""Prometheus metrics: the scrape endpoint and the export's configuration (``admin.config``).

``GET /api/cloud/metrics/prometheus`` answers 404 while the export is disabled. It needs
``admin.config``, unless the path is listed in ``auth.bypass_paths``: then a scraper without
credentials may read it."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import PlainTextResponse, Response

from activities.errors import Forbidden, NotFound
from activities.identity.principals import Principal
from activities.observability import metrics_catalog as catalog
from activities.observability import metrics_config, metrics_export
from activities.observability.metrics_config import MetricsConfigBody
from api import rate_limit
from api.deps import ANONYMOUS, PrincipalDep, SessionDep, StateDep, client_ip, get_state, require
from api.schemas.metrics import (PROMETHEUS_TEXT, CategoryList, MetricsConfig, MetricsPreview, TemplateList)

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/cloud/metrics", tags=["metrics"])
PERMISSION = "admin.config"
ConfigAdminDep = Annotated[Principal, Depends(require(PERMISSION))]
TemplateName = Annotated[str, Path(min_length=1, max_length=64)]
DISABLED = ("Prometheus export is disabled: enable it with PUT /api/cloud/metrics/config {\"enabled\": true} "
            "or on the console's Metrics page")


async def _tracked_clients(request: Request, config: metrics_config.Current) -> int | None:
    """Asked only when the rate_limits category is exported; None (no series) when the store fails."""
    if "rate_limits" not in config.categories:
        return None
    try:
        return await rate_limit.tracked_clients(request.app)
    except Exception as exc:  # a shared counter store may be down: the rest of the scrape still answers
        log.warning("cannot count the rate limiter's tracked clients: %s", exc.__class__.__name__)
        return None


def read_config(state) -> metrics_config.Current:
    with state.db.read_session() as session:
        return metrics_config.get(session)


async def exported(request: Request, config: metrics_config.Current) -> metrics_export.Export:
    """What ``config`` exports now (the route and the console's page share it); read-only sessions."""
    state = get_state(request)
    clients = await _tracked_clients(request, config)

    def run() -> metrics_export.Export:
        with state.db.read_session() as session:
            return metrics_export.export(session, config, time.monotonic() - state.started_at, clients)
    return await asyncio.to_thread(run)


@router.get("/prometheus", response_class=PlainTextResponse, responses={
    **PROMETHEUS_TEXT, 404: {"description": "The export is disabled"}})
async def prometheus(request: Request, state: StateDep, principal: PrincipalDep) -> Response:
    if principal is not ANONYMOUS and not principal.has(PERMISSION):  # ANONYMOUS: the path is in bypass_paths
        raise Forbidden(f"reading the metrics needs the {PERMISSION} permission (or list the path in "
                        "auth.bypass_paths for scrapers without credentials)")
    config = await asyncio.to_thread(read_config, state)
    if not config.enabled:
        raise NotFound(DISABLED)
    return Response((await exported(request, config)).text, media_type=metrics_export.CONTENT_TYPE)


@router.get("/config", response_model=MetricsConfig)
def get_config(session: SessionDep, _: ConfigAdminDep) -> dict:
    return metrics_config.to_dict(metrics_config.get(session))


@router.put("/config", response_model=MetricsConfig)
def put_config(body: MetricsConfigBody, session: SessionDep, principal: ConfigAdminDep, request: Request) -> dict:
    saved = metrics_config.put(session, body, principal.username, client_ip(request))
    session.commit()
    return metrics_config.to_dict(saved)


@router.post("/config/apply-template/{template_id}", response_model=MetricsConfig)
def apply_template(template_id: TemplateName, session: SessionDep, principal: ConfigAdminDep,
                   request: Request) -> dict:
    saved = metrics_config.apply_template(session, template_id, principal.username, client_ip(request))
    session.commit()
    return metrics_config.to_dict(saved)


@router.get("/config/templates", response_model=TemplateList)
def templates(_: ConfigAdminDep) -> dict:
    return {"templates": catalog.describe_templates()}


@router.get("/config/categories", response_model=CategoryList)
def categories(_: ConfigAdminDep) -> dict:
    return {"categories": catalog.describe_categories()}


async def _preview(request: Request, config: metrics_config.Current) -> dict:
    return metrics_export.preview(config, await exported(request, config))


@router.get("/preview", response_model=MetricsPreview)
async def preview(request: Request, state: StateDep, _: ConfigAdminDep) -> dict:
    """What the scrape endpoint exports with the saved configuration (also while it is disabled)."""
    return await _preview(request, await asyncio.to_thread(read_config, state))


@router.post("/config/preview", response_model=MetricsPreview)
async def preview_proposed(body: MetricsConfigBody, request: Request, state: StateDep, _: ConfigAdminDep) -> dict:
    """What it would export with ``body`` applied to the saved configuration; nothing is saved (read-only
    sessions: a preview never takes the write lock)."""
    current = await asyncio.to_thread(read_config, state)
    return await _preview(request, metrics_config.proposed(current, body))
