"""What the organization, team and quota pages share: their URLs, notices, the quota rows with
their current usage (``quota_limits.current_usage``, as admission and ``GET /api/quotas/me`` count
it), the quota form's reading, and the admission pass after a quota change (as the REST routes do
after answering)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request, Response
from pydantic import ValidationError
from starlette.background import BackgroundTask

from activities.capacity.admission_signals import pass_and_notify
from activities.db.models_orgs import Quota, Team
from activities.errors import DomainError, InvalidInput, NotFound
from activities.governance import quotas
from activities.governance.quota_limits import EffectiveLimit, current_usage, number
from activities.identity.principals import Principal
from api.console.pages import _see_other, signed_in, validation_messages
from api.deps import get_state

QUOTA_ADMIN = "admin.config"
NOTICES = {"org": "Organization created.", "team": "Team created.", "member": "Member added.", "role": "Role changed.", "removed": "Member removed.",
           "quota": "Quota saved.", "quota-deleted": "Quota deleted.", "limits": "Queue limits saved."}
PICKER_MAX = 500  # usernames offered in the member picker (admin.users only)


def _viewer(request: Request, permission: str = "org.view") -> Principal:
    principal = signed_in(request)
    principal.require(permission)
    return principal


def _url(*parts: str) -> str:
    return "/admin/orgs" + "".join("/" + quote(p, safe="") for p in parts)


def _team_url(org_id: str, team_id: str) -> str:
    return _url(org_id, "teams", team_id)


def _done(url: str, what: str) -> str:
    return f"{url}?{urlencode({'done': what})}"


def _notice(done: str | None) -> str | None:
    return NOTICES.get(done or "")


def _errors(exc: Exception) -> tuple[list[str], int]:
    if isinstance(exc, ValidationError):
        return validation_messages(exc), 422
    assert isinstance(exc, DomainError)
    return [exc.detail], exc.status_code


def _without_csrf(form: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in form.items() if k != "csrf"}


def _admission_pass(request: Request) -> BackgroundTask:
    """A quota change can admit waiting jobs (a raised ``concurrent_jobs``): pass the line at once,
    as the REST routes do after answering."""
    state = get_state(request)
    return BackgroundTask(pass_and_notify, state.db.session, state.temporal)


def _redirect_passing(request: Request, url: str) -> Response:
    response = _see_other(url)
    response.background = _admission_pass(request)
    return response


def _usage(session, quota: Quota) -> float | int | None:
    """The current usage the quota's limit is checked against: of its organization, team or user;
    a level quota binds each user of the level on their own usage (no single figure)."""
    if quota.scope not in ("org", "team", "user"):
        return None
    limit = EffectiveLimit(quota.quota_type, number(quota.quota_type, quota.limit_value), quota.action,
                           f"{quota.scope} {quota.scope_id}", quota.scope, quota.scope_id, quota.id,
                           quota.scope, quota.scope_id)
    return current_usage(session, limit)


def _shown(value: float | int | None) -> str:
    if value is None:
        return ""
    return str(value) if isinstance(value, int) else f"{round(float(value), 4):,.4f}".rstrip("0").rstrip(".")


def _quota_rows(session, rows: list[Quota]) -> list[dict[str, Any]]:
    out = []
    for quota in rows:
        row = quotas.quota_dict(session, quota)
        used = _usage(session, quota)
        row.update(usage=used, usage_text=_shown(used), limit_text=_shown(row["limit"]),
                   unit=quotas.TYPE_INFO[quota.quota_type][1], whole=quota.quota_type in quotas.WHOLE_TYPES,
                   over=used is not None and used >= row["limit"], href=_scope_href(session, quota))
        out.append(row)
    return out


def _scope_href(session, quota: Quota) -> str | None:
    if quota.scope == "org":
        return _url(quota.scope_id)
    if quota.scope == "team":
        team = session.get(Team, quota.scope_id)
        return _team_url(team.org_id, team.id) if team else None
    return None


def _quota_context(principal: Principal) -> dict[str, Any]:
    """What every quota form needs."""
    return {"quota_types": quotas.quota_types()["types"], "actions": quotas.ACTIONS,
            "may_set_quotas": principal.has(QUOTA_ADMIN)}


def _limit(form: dict[str, str]) -> float:
    text = (form.get("limit") or "").strip()
    if not text:
        raise InvalidInput("limit: enter a number")
    try:
        return float(text)
    except ValueError:
        raise InvalidInput(f"limit: {text!r} is not a number") from None


def _quota_body(form: dict[str, str]) -> quotas.QuotaBody:
    return quotas.QuotaBody.model_validate({"quota_type": form.get("quota_type", ""), "limit": _limit(form),
                                            "action": form.get("action") or "block"})


def _owned_quota(session, quota_id: str, scope: str, scope_id: str) -> Quota:
    """A quota of this organization or team (another's is reported as missing)."""
    quota = quotas.get(session, quota_id)
    if quota.scope != scope or quota.scope_id != scope_id:
        raise NotFound(f"quota {quota_id!r} not found")
    return quota
