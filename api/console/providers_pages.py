"""Console page for providers' cost limits (permission ``admin.config``): each provider a job can run
on, with its spend in the current period against its limit, and the form that sets the limit,
through ``activities.governance.cost_limits`` like ``PUT /api/cloud/providers/{provider}/config``."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from activities.errors import DomainError, InvalidInput
from activities.governance import cost_limits
from activities.governance.cost_limits import PROVIDER_RE, ProviderConfigBody
from api.console import sections
from api.console.pages import TARGETS, _blank, _db, _see_other, _write, page, posted, render, signed_in
from api.console.pages import validation_messages
from api.deps import client_ip

router = APIRouter(include_in_schema=False)
PERMISSION = "admin.config"
BASE = "/admin/providers"
BUILT_IN = tuple(t for t in TARGETS if t != "auto")  # where a job runs; "auto" picks one of these
PERIODS = ("daily", "weekly", "monthly")
ACTIONS = ("warn", "block")
sections.section(BASE, "Providers and cost limits", "Spend per provider in the current period, and the limits that "
                 "warn about or block submissions.", PERMISSION)


def _load(session) -> list[dict[str, Any]]:
    rows = {r["provider"]: r for r in cost_limits.all_status(session)}
    for name in BUILT_IN:
        rows.setdefault(name, cost_limits.status(session, cost_limits.get(session, name)))
    return [rows[name] for name in sorted(rows)]


async def _render(request: Request, principal, status: int = 200, errors: list[str] | None = None,
                  notice: str | None = None, failed: str | None = None, values: dict[str, str] | None = None):
    providers = await _db(request, _load)
    return render(request, principal, "admin_providers.html", status=status, providers=providers,
                  errors=errors or [], notice=notice, failed=failed, values=values or {}, periods=PERIODS,
                  actions=ACTIONS)


@router.get(BASE)
@page
async def providers(request: Request, saved: str | None = None) -> Response:
    principal = signed_in(request)
    principal.require(PERMISSION)
    notice = f"Cost limit of {saved} saved." if saved and re.match(PROVIDER_RE, saved) else None
    return await _render(request, principal, notice=notice)


@router.post(BASE)
@page
async def provider_save(request: Request) -> Response:
    principal, form = await posted(request, PERMISSION)
    provider = (form.get("provider") or "").strip()
    try:
        if not re.match(PROVIDER_RE, provider):
            raise InvalidInput("Provider: 1-64 lowercase letters, digits, '_' or '-'")
        amount = _blank(form.get("cost_limit_amount"))
        try:
            number = float(amount) if amount is not None else None
        except ValueError:
            raise InvalidInput("Limit (USD): must be a number") from None
        body = ProviderConfigBody.model_validate({
            "cost_limit_enabled": form.get("cost_limit_enabled") == "yes", "cost_limit_amount": number,
            "cost_limit_period": form.get("cost_limit_period", ""), "cost_limit_action": form.get("cost_limit_action", "")})
        await _write(request, cost_limits.put, provider, body, principal.username, client_ip(request))
    except ValidationError as exc:
        return await _render(request, principal, 422, validation_messages(exc), failed=provider, values=form)
    except DomainError as exc:
        return await _render(request, principal, exc.status_code, [exc.detail], failed=provider, values=form)
    return _see_other(f"{BASE}?{urlencode({'saved': provider})}#{quote(provider, safe='')}")
