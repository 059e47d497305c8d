"""Console page for the Prometheus export (permission ``admin.config``): whether it is on, the
categories it exports, the templates, and a preview of the text a scrape gets. Saving goes through
``activities.observability.metrics_config`` like ``PUT /api/cloud/metrics/config`` and
``POST /api/cloud/metrics/config/apply-template/{template_id}``; the preview is what
``GET /api/cloud/metrics/preview`` (or, for unsaved choices, ``POST .../config/preview``) answers."""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response

from activities.errors import DomainError, InvalidInput
from activities.observability import metrics_catalog as catalog
from activities.observability import metrics_config
from activities.observability.metrics_config import Current, MetricsConfigBody
from api.console import sections
from api.console.auth import check_csrf, read_form_lists
from api.console.pages import _see_other, _write, page, render, signed_in
from api.deps import client_ip, get_state
from api.routers.metrics import exported, read_config

router = APIRouter(include_in_schema=False)
PERMISSION = "admin.config"
BASE = "/admin/metrics"
SCRAPE_PATH = "/api/cloud/metrics/prometheus"
NOTICES = {"saved": "Metrics settings saved.", "template": "Template applied."}
sections.section(BASE, "Metrics", "The Prometheus export: on or off, its categories and templates, and a preview of "
                 "what a scrape gets.", PERMISSION)


async def _render(request: Request, principal, shown: Current | None = None, status: int = 200,
                  errors: list[str] | None = None, notice: str | None = None, previewing: bool = False):
    saved = await asyncio.to_thread(read_config, get_state(request))
    shown = shown or saved
    preview = await exported(request, shown)
    return render(request, principal, "admin_metrics.html", status=status, saved=saved, shown=shown,
                  categories=catalog.CATEGORIES, templates=catalog.TEMPLATES, preview=preview,
                  errors=errors or [], notice=notice, previewing=previewing, scrape_path=SCRAPE_PATH,
                  bypassed=any(SCRAPE_PATH.startswith(p) for p in get_state(request).settings.auth.bypass_paths))


async def _form(request: Request) -> tuple:
    principal = signed_in(request)
    form = await read_form_lists(request)
    check_csrf(principal, {k: v[0] for k, v in form.items()})
    principal.require(PERMISSION)
    return principal, form


@router.get(BASE)
@page
async def metrics_page(request: Request, done: str | None = None) -> Response:
    principal = signed_in(request)
    principal.require(PERMISSION)
    return await _render(request, principal, notice=NOTICES.get(done or ""))


@router.post(BASE)
@page
async def metrics_save(request: Request) -> Response:
    """Save the form, or (the Preview button) show what it would export without saving."""
    principal, form = await _form(request)
    chosen = form.get("category", [])
    enabled = form.get("enabled", [""])[0] == "yes"
    try:
        unknown = sorted(set(chosen) - set(catalog.CATEGORY_IDS))
        if unknown:
            catalog.ordered(unknown)  # raises, naming them
        if not chosen:
            raise InvalidInput("Categories: choose at least one")
        body = MetricsConfigBody(enabled=enabled, categories=chosen)
        if form.get("action", [""])[0] == "preview":
            current = await asyncio.to_thread(read_config, get_state(request))
            return await _render(request, principal, metrics_config.proposed(current, body), previewing=True)
        await _write(request, metrics_config.put, body, principal.username, client_ip(request))
    except DomainError as exc:
        shown = Current(enabled, tuple(c for c in catalog.CATEGORY_IDS if c in chosen))
        return await _render(request, principal, shown, exc.status_code, [exc.detail])
    return _see_other(f"{BASE}?{urlencode({'done': 'saved'})}")


@router.post(f"{BASE}/template")
@page
async def metrics_template(request: Request) -> Response:
    principal, form = await _form(request)
    try:
        await _write(request, metrics_config.apply_template, form.get("template", [""])[0], principal.username,
                     client_ip(request))
    except DomainError as exc:
        return await _render(request, principal, status=exc.status_code, errors=[exc.detail])
    return _see_other(f"{BASE}?{urlencode({'done': 'template'})}")
