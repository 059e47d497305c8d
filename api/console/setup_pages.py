"""The console's guided set-up: sign-in methods → organizations → teams → quotas → credentials.

Each step shows what exists, a form for the usual first entry, and complete / skip / reopen; the
progress is kept on the server (``activities.identity.setup_guide``). Every change goes through the
domain function its REST route uses, with that route's permission. The sign-in step offers an OIDC
provider and an LDAP directory with the forms of ``/admin/sso`` (``api.console.sso_forms``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from activities.capacity.admission_signals import pass_and_notify
from activities.db.models_orgs import Team
from activities.errors import DomainError, InvalidInput
from activities.governance import quotas
from activities.governance.quota_limits import ACTIONS
from activities.governance.usage import QUOTA_TYPES
from activities.identity import orgs, setup_guide
from activities.identity.external_identity import LEVELS
from activities.identity.principals import Principal
from activities.identity.sso import providers as sso
from activities.secrets import credentials
from api.console import sections, sso_forms
from api.console.pages import _blank, _db, _see_other, _write, page, posted, render, signed_in, validation_messages
from api.deps import client_ip, get_state

router = APIRouter(include_in_schema=False)
sections.section("/setup", "Guided set-up", "Sign-in methods, organizations, teams, quotas and credentials, step by step.",
                 setup_guide.PERMISSION)


def _admin(request: Request) -> Principal:
    principal = signed_in(request)
    principal.require(setup_guide.PERMISSION)
    return principal


def _existing(session, key: str, principal: Principal) -> dict[str, Any]:
    """What the step has so far, and the choices its form needs."""
    if key == "auth":
        return {"items": [f"{r.name} ({r.provider_type}{'' if r.enabled else ', disabled'})" for r in sso.list_all(session)]}
    org_rows = orgs.list_orgs(session, principal)
    if key == "orgs":
        return {"items": [f"{o.name} ({o.slug})" for o in org_rows]}
    teams = [(o, t) for o in org_rows for t in orgs.list_teams(session, o)]
    if key == "teams":
        return {"items": [f"{t.name} ({o.slug}/{t.slug})" for o, t in teams], "orgs": org_rows}
    if key == "quotas":
        scopes = [(f"org:{o.id}", f"organization {o.name}") for o in org_rows]
        scopes += [(f"team:{t.id}", f"team {o.slug}/{t.slug}") for o, t in teams]
        items = [f"{q['scope']} {q['scope_name'] or q['scope_id']}: {q['quota_type']} ≤ {q['limit']} ({q['action']})"
                 for q in (quotas.quota_dict(session, q) for q in quotas.list_quotas(session))]
        return {"items": items, "scopes": scopes, "quota_types": QUOTA_TYPES, "actions": ACTIONS}
    return {"items": [f"{c['provider']}/{c['credential_name']} (fingerprint {c['fingerprint']})"
                      for c in credentials.list_for(session, principal.user_id)]}


async def _render(request: Request, principal: Principal, key: str, status: int = 200,
                  errors: list[str] | None = None, values: dict[str, str] | None = None) -> Response:
    step = setup_guide.step(key)

    def load(session):
        return setup_guide.progress(session), _existing(session, key, principal)
    steps, existing = await _db(request, load)
    this = next(s for s in steps if s["key"] == key)
    if key == "auth":
        existing.update(_auth_forms(request, values or {}))
    return render(request, principal, "setup.html", status=status, steps=steps, step=step, this=this,
                  finished=setup_guide.current(steps) is None, errors=errors or [], values=values or {}, **existing)


def _auth_forms(request: Request, values: dict[str, str]) -> dict[str, Any]:
    """The sign-in step's two forms: each starts from the defaults, or the values it was posted with."""
    callback = sso_forms.callback_url(str(request.base_url))
    forms = {kind: values if values.get("provider_type") == kind else sso_forms.defaults(kind, callback)
             for kind in sso_forms.TYPES}
    return {"oidc_values": forms["oidc"], "ldap_values": forms["ldap"], "levels": LEVELS, "callback": callback}


@router.get("/setup")
@page
async def setup_start(request: Request) -> Response:
    _admin(request)
    steps = await _db(request, setup_guide.progress)
    return _see_other(f"/setup/{setup_guide.current(steps) or setup_guide.KEYS[0]}")


@router.get("/setup/{key}")
@page
async def setup_step(request: Request, key: str) -> Response:
    return await _render(request, _admin(request), key)


@router.post("/setup/{key}/mark")
@page
async def setup_mark(request: Request, key: str) -> Response:
    principal, form = await posted(request, setup_guide.PERMISSION)
    state = form.get("state", "")

    def store(session) -> list[dict[str, Any]]:
        setup_guide.mark(session, key, state, principal, client_ip(request))
        session.flush()
        return setup_guide.progress(session)
    steps = await _write(request, store)
    following = setup_guide.current(steps)
    return _see_other(f"/setup/{key if state == 'todo' or following is None else following}")


def _create(session, key: str, form: dict[str, str], principal: Principal, ip: str | None) -> None:
    """The step's usual first entry, as its REST route makes it."""
    if key == "auth":
        principal.require("admin.users")
        sso.create(session, sso_forms.create_body(form), principal, ip)
    elif key == "orgs":
        principal.require("org.create")
        orgs.create_org(session, orgs.OrgCreate(name=form.get("name", ""), slug=form.get("slug", "").strip(),
                                                description=_blank(form.get("description"))), principal, ip)
    elif key == "teams":
        principal.require("team.create")
        org = orgs.visible_org(session, principal, form.get("org", ""))
        orgs.create_team(session, org, orgs.TeamCreate(name=form.get("name", ""), slug=form.get("slug", "").strip()),
                         principal, ip)
    elif key == "quotas":
        principal.require("admin.config")
        scope, _, scope_id = form.get("scope", "").partition(":")
        if scope not in ("org", "team") or not scope_id:
            raise InvalidInput("choose an organization or a team")
        try:
            limit = float(form.get("limit", ""))
        except ValueError:
            raise InvalidInput("limit: must be a number") from None
        body = quotas.QuotaBody(quota_type=form.get("quota_type", ""), limit=limit, action=form.get("action", "block"))
        quotas.set_quota(session, scope, _scope_id(session, scope, scope_id), body, principal, ip)
    else:
        body = credentials.CredentialValue(provider=form.get("provider", "").strip(),
                                           credential_name=form.get("credential_name", "").strip(),
                                           value=form.get("value", ""))
        credentials.set_value(session, principal.user_id, body, principal, ip)


def _scope_id(session, scope: str, ref: str) -> str:
    if scope == "org":
        return orgs.get_org(session, ref).id
    team = session.get(Team, ref)
    if team is None:
        raise InvalidInput(f"team {ref!r} not found")
    return team.id


@router.post("/setup/{key}/create")
@page
async def setup_create(request: Request, key: str) -> Response:
    principal, form = await posted(request, setup_guide.PERMISSION)
    setup_guide.step(key)
    state = get_state(request)
    try:
        await _write(request, _create, key, form, principal, client_ip(request))
    except ValidationError as exc:
        return await _render(request, principal, key, 422, validation_messages(exc), _without_secrets(form))
    except DomainError as exc:
        return await _render(request, principal, key, exc.status_code, [exc.detail], _without_secrets(form))
    if key == "quotas":  # a raised concurrent_jobs quota admits waiting jobs at once
        await pass_and_notify(state.db.session, state.temporal)
    return _see_other(f"/setup/{quote(key, safe='')}")


def _without_secrets(form: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in sso_forms.without_secrets(form).items() if k != "value"}
