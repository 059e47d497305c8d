"""Console page of how this API runs (permission ``admin.config``; read-only: these settings come from
the environment and the config file, so they are shown, not edited): rate limits (backend, the rules
in effect, addresses counted now, recent refusals from the audit log), outbound HTTP (proxies, CA
bundle, verification, timeout), the secrets providers and whether each answers, logging and the
correlation id, and where the Temporal SDK's metrics are served. No secret value is ever shown; a
proxy URL's user and password are masked."""

from __future__ import annotations

import asyncio
import os

from fastapi import APIRouter, Request, Response

from activities.audit import reads
from activities.outbound_http.masking import masked_url
from activities.observability import correlation
from activities.paging import PageRequest
from activities.ratelimit.defaults import EXCLUDED_PATHS, EXCLUDED_PREFIXES
from activities.ratelimit.rules import RuleSet
from activities.ratelimit.violations import ACTION as RATE_LIMIT_ACTION
from api.console import sections
from api.console.pages import _db, page, render, signed_in
from api.deps import get_state
from api.rate_limit import tracked_clients

router = APIRouter(include_in_schema=False)
PERMISSION = "admin.config"
BASE = "/admin/operations"
PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY")
sections.section(BASE, "Operations", "How this API runs: rate limits and recent refusals, outbound HTTP, secrets "
                 "providers, logging and the correlation id.", PERMISSION)


def _proxies() -> list[tuple[str, str | None]]:
    shown = []
    for name in PROXY_VARIABLES:
        value = os.environ.get(name) or os.environ.get(name.lower())
        shown.append((name, None if value is None else (value if name == "NO_PROXY" else masked_url(value))))
    return shown


def _rules(settings) -> list[dict]:
    ruleset = RuleSet.from_settings(settings.rate_limit)
    return [{"name": r.name, "pattern": r.pattern.pattern if r.pattern else "(every other path)", "calls": r.calls,
             "period": r.period, "methods": ", ".join(sorted(r.methods)) if r.methods else "all"}
            for r in [*ruleset.rules, ruleset.default]]


def _refusals(session) -> list[dict]:
    found = reads.list_entries(session, action=RATE_LIMIT_ACTION, page=PageRequest(limit=20))
    return [reads.to_dict(e) for e in found.rows]


@router.get(BASE)
@page
async def operations_page(request: Request) -> Response:
    principal = signed_in(request)
    principal.require(PERMISSION)
    state = get_state(request)
    settings = state.settings
    limiter = getattr(request.app.state, "rate_limiter", None)
    counted = await tracked_clients(request.app) if limiter is not None else None
    refusals = await _db(request, _refusals)
    secrets = await asyncio.to_thread(settings.secret_resolver.states)
    return render(request, principal, "admin_operations.html", settings=settings, limiter=limiter,
                  rules=_rules(settings), excluded=sorted(EXCLUDED_PATHS), excluded_prefixes=EXCLUDED_PREFIXES,
                  counted=counted, refusals=refusals, proxies=_proxies(), secrets=secrets,
                  correlation_header=correlation.HEADER, correlation_env=correlation.ENV_VAR)
