"""Console page of the providers (permission ``admin.config``): each provider a job can run on, with its
spend in the current period against its cost limit and the form that sets the limit; and each cloud
provider of the registry (Replicate) with its state (configured or what is missing, circuit breaker,
webhooks or polling), its settings form and a credential check. Writes go through
``activities.governance.cost_limits.put`` like ``PUT /api/cloud/providers/{provider}/config`` (its refusals
are shown with their reason), the check through ``api.provider_checks`` like
``POST /api/cloud/providers/{provider}/validate``. None of these REST routes has a rate-limit rule of its
own: these forms count against the same default rule."""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from activities.db.models_providers import ProviderConfig
from activities.errors import DomainError, InvalidInput
from activities.governance import cost_limits
from activities.governance.cost_limits import PROVIDER_RE, ProviderConfigBody
from activities.outbound_http.masking import masked_url
from activities.providers import registry
from activities.providers import settings as provider_settings
from api import provider_checks
from api.console import sections
from api.console.pages import TARGETS, _blank, _db, _see_other, _write, page, posted, render, signed_in
from api.console.pages import validation_messages
from api.deps import client_ip, get_state
from api.routers.providers import provider_rows

router = APIRouter(include_in_schema=False)
PERMISSION = "admin.config"
BASE = "/admin/providers"
BUILT_IN = tuple(t for t in TARGETS if t != "auto")  # where a job runs; "auto" picks one of these
PERIODS = ("daily", "weekly", "monthly")
ACTIONS = ("warn", "block")
SSL_CHOICES = {"default": None, "on": True, "off": False}
TEXT_SETTINGS = ("version", "destination", "webhook_url", "api_base_url", "ca_bundle_path", "proxy_url")
NUMBER_SETTINGS = ("polling_interval_seconds", "http_timeout")
LABELS = {"version": "Trainer version", "destination": "Destination", "webhook_url": "Webhook URL",
          "webhook_allowed_ips": "Allowed webhook IP ranges", "polling_interval_seconds": "Polling interval",
          "api_base_url": "API base URL", "ssl_verify": "Certificate verification",
          "ca_bundle_path": "CA bundle path", "proxy_url": "Proxy URL", "http_timeout": "Timeout"}
sections.section(BASE, "Providers and cost limits", "Spend per provider in the current period, the limits that "
                 "warn about or block submissions, and the cloud providers' settings, state and credential "
                 "check.", PERMISSION)


def _load(session) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    rows = {r["provider"]: r for r in cost_limits.all_status(session)}
    for name in BUILT_IN:
        rows.setdefault(name, cost_limits.status(session, cost_limits.get(session, name)))
    configs = {name: cost_limits.to_dict(provider_settings.config(session, name)) for name in registry.names()}
    return [rows[name] for name in sorted(rows)], configs


def _cloud(request: Request, configs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each cloud provider's state (what ``GET /api/cloud/providers`` answers) and its settings."""
    return [{**state, "config": configs[state["name"]]} for state in provider_rows(get_state(request))
            if state["name"] in configs]


async def _render(request: Request, principal, status: int = 200, errors: list[str] | None = None,
                  notice: str | None = None, failed: str | None = None, values: dict[str, str] | None = None,
                  failed_settings: str | None = None, validation: dict[str, Any] | None = None):
    providers, configs = await _db(request, _load)
    cloud = await asyncio.to_thread(_cloud, request, configs)
    return render(request, principal, "admin_providers.html", status=status, providers=providers, cloud=cloud,
                  errors=errors or [], notice=notice, failed=failed, values=values or {}, periods=PERIODS,
                  actions=ACTIONS, failed_settings=failed_settings, validation=validation)


@router.get(BASE)
@page
async def providers(request: Request, saved: str | None = None, settings: str | None = None,
                    unchanged: str | None = None) -> Response:
    principal = signed_in(request)
    principal.require(PERMISSION)
    notice = f"Cost limit of {saved} saved." if saved and re.match(PROVIDER_RE, saved) else None
    if settings and registry.is_provider(settings):
        notice = f"Settings of {settings} saved."
    elif unchanged and registry.is_provider(unchanged):
        notice = f"Settings of {unchanged}: nothing changed."
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


def _number(form: dict[str, str], name: str) -> float | None:
    value = _blank(form.get(name))
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        raise InvalidInput(f"{LABELS[name]}: must be a number") from None


def settings_changes(form: dict[str, str], row: ProviderConfig) -> dict[str, Any]:
    """The settings the form changes, as ``ProviderConfigBody`` fields: only what differs from ``row``
    is sent (``put`` changes only the fields sent), so an unchanged masked proxy URL keeps its password
    and verification left off needs no new acknowledgement. An emptied field clears its setting."""
    changes: dict[str, Any] = {}
    for name in TEXT_SETTINGS:
        value = _blank(form.get(name))
        if name == "proxy_url" and value is not None and row.proxy_url and value == masked_url(row.proxy_url):
            continue  # shown masked and left as it was
        if value != getattr(row, name):
            changes[name] = value
    for name in NUMBER_SETTINGS:
        value = _number(form, name)
        if value != getattr(row, name):
            changes[name] = value
    networks = [line.strip() for line in (form.get("webhook_allowed_ips") or "").splitlines() if line.strip()]
    if (networks or None) != (row.webhook_allowed_ips or None):
        changes["webhook_allowed_ips"] = networks or None
    choice = form.get("ssl_verify", "default")
    if choice not in SSL_CHOICES:
        raise InvalidInput(f"{LABELS['ssl_verify']}: choose the process default, on or off")
    if SSL_CHOICES[choice] != row.ssl_verify:
        changes["ssl_verify"] = SSL_CHOICES[choice]
    if form.get("ssl_verify_acknowledged") == "yes":
        changes["ssl_verify_acknowledged"] = True
    return changes


def _save_settings(session, provider: str, form: dict[str, str], actor: str, ip: str | None) -> bool:
    """True when something changed (and was saved)."""
    changes = settings_changes(form, provider_settings.config(session, provider))
    if not set(changes) - {"ssl_verify_acknowledged"}:
        return False
    cost_limits.put(session, provider, ProviderConfigBody.model_validate(changes), actor, ip)
    return True


def _labelled(exc: ValidationError) -> list[str]:
    """Pydantic's messages under the form's labels (``Allowed webhook IP ranges: '…' is not …``)."""
    out = []
    for error, line in zip(exc.errors(), validation_messages(exc)):
        field = str(error["loc"][0]) if error["loc"] else ""
        message = str(error["msg"]).removeprefix("Value error, ")
        out.append(f"{LABELS[field]}: {message}" if field in LABELS else line)
    return out


@router.post(BASE + "/{provider}/settings")
@page
async def provider_settings_save(request: Request, provider: str) -> Response:
    principal, form = await posted(request, PERMISSION)
    registry.get(provider)  # 404 page for an unknown cloud provider
    try:
        changed = await _write(request, _save_settings, provider, form, principal.username, client_ip(request))
    except ValidationError as exc:
        return await _render(request, principal, 422, _labelled(exc), failed_settings=provider, values=form)
    except DomainError as exc:
        return await _render(request, principal, exc.status_code, [exc.detail], failed_settings=provider,
                             values=form)
    key = "settings" if changed else "unchanged"
    return _see_other(f"{BASE}?{urlencode({key: provider})}#cloud-{quote(provider, safe='')}")


@router.post(BASE + "/{provider}/validate")
@page
async def provider_validate(request: Request, provider: str) -> Response:
    """The real call, with the credential the admin's own jobs would use; the answer is shown on the page."""
    principal, _ = await posted(request, PERMISSION)
    registry.get(provider)
    result = await provider_checks.validate(get_state(request), provider, principal.user_id)
    return await _render(request, principal, validation=result)
