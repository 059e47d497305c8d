"""Console pages for sign-in providers, OIDC and LDAP (``/admin/sso``, permission ``admin.users`` as
the REST routes under ``/api/cloud/external-auth/providers``): the list, a new provider, a provider's
edit page, enable / disable, delete, and a test of the connection. Writes go through the domain
functions the REST routes use (``activities.identity.sso.providers``), which validate, encrypt the
secrets and write the audit entries.

Secrets are write-only: pages say only whether one is set. A provider of the enterprise config file
is read-only here (it is changed in the file), but can be tested. The test is the REST test's check
(LDAP: service bind + base DN search; OIDC: fresh discovery + JWKS), and its answer, ok or the
reason, is shown on the list.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import ValidationError

from activities.errors import Conflict, DomainError, InvalidInput, NotFound
from activities.identity.external_identity import LEVELS
from activities.identity.principals import Principal
from activities.identity.sso import providers as sso
from api import sso_check
from api.console import sections, sso_forms
from api.console.pages import _db, _see_other, _write, page, posted, render, signed_in, validation_messages
from api.deps import client_ip, get_state

router = APIRouter(include_in_schema=False)
PERMISSION = "admin.users"  # the REST provider routes' permission
sections.section("/admin/sso", "Sign-in providers", "OIDC identity providers and LDAP directories people sign in "
                 "with: add, edit, test, enable or disable.", PERMISSION)


def _admin(request: Request) -> Principal:
    principal = signed_in(request)
    principal.require(PERMISSION)
    return principal


def _callback(request: Request) -> str:
    return sso_forms.callback_url(str(request.base_url))


# ---- list and test ---------------------------------------------------------------------------------

async def _list_page(request: Request, principal: Principal, tested: dict[str, Any] | None = None) -> Response:
    rows = await _db(request, lambda s: [sso_forms.summary(r) for r in sso.list_all(s)])
    return render(request, principal, "admin_sso.html", providers=rows, tested=tested, callback=_callback(request))


@router.get("/admin/sso")
@page
async def sso_list(request: Request) -> Response:
    return await _list_page(request, _admin(request))


def _ok_message(provider_type: str, result: dict[str, Any]) -> str:
    if provider_type == "ldap":
        return str(result.get("message", "ok"))
    unsupported = result.get("unsupported_scopes") or []
    return (f"issuer {result.get('issuer')}, {result.get('jwks_keys')} signing key(s), PKCE S256 "
            f"{'supported' if result.get('pkce_s256') else 'not announced'}"
            + (f"; scopes the provider does not list: {', '.join(unsupported)}" if unsupported else ""))


async def test_connection(request: Request, name: str) -> dict[str, Any]:
    """The REST test's check of one provider (also a disabled one): ``{"ok": bool, "message": str}``.
    NotFound when there is no such provider; any other refusal is the answer's reason."""
    try:
        state = get_state(request)
        provider_type, result = await sso_check.check(state.db, name, state.settings.outbound_http)
    except NotFound:
        raise
    except DomainError as exc:  # the provider's refusals, an unreadable secret, an unforeseen failure
        return {"ok": False, "message": exc.detail}
    return {"ok": bool(result.get("ok")), "message": _ok_message(provider_type, result)}


test_connection.__test__ = False  # not a pytest test when imported by name


@router.post("/admin/sso/{name}/test")
@page
async def sso_test(request: Request, name: str) -> Response:
    """Runs the test and shows its answer on the list (the test's own failure is an answer: 200)."""
    principal, _ = await posted(request, PERMISSION)
    answer = await test_connection(request, name)
    return await _list_page(request, principal, tested={"name": name, **answer})


# ---- new provider ----------------------------------------------------------------------------------

def _new_form(request: Request, principal: Principal, values: dict[str, str], errors: list[str],
              status: int = 200) -> Response:
    return render(request, principal, "admin_sso_form.html", status=status, values=values, errors=errors,
                  editing=False, provider=None, levels=LEVELS, callback=_callback(request))


@router.get("/admin/sso/new")
@page
async def sso_new_form(request: Request, provider_type: str = Query("oidc", alias="type")) -> Response:
    principal = _admin(request)
    if provider_type not in sso_forms.TYPES:
        raise InvalidInput("type: must be oidc or ldap")
    return _new_form(request, principal, sso_forms.defaults(provider_type, _callback(request)), [])


@router.post("/admin/sso/new")
@page
async def sso_create(request: Request) -> Response:
    principal, form = await posted(request, PERMISSION)
    if form.get("provider_type") not in sso_forms.TYPES:
        raise InvalidInput("provider_type: must be oidc or ldap")
    try:
        body = sso_forms.create_body(form)
        await _write(request, sso.create, body, principal, client_ip(request))
    except ValidationError as exc:
        return _new_form(request, principal, sso_forms.without_secrets(form), validation_messages(exc), 422)
    except (InvalidInput, Conflict) as exc:
        return _new_form(request, principal, sso_forms.without_secrets(form), [exc.detail], exc.status_code)
    return _see_other("/admin/sso")


# ---- one provider: edit, enable / disable, delete --------------------------------------------------

async def _edit_page(request: Request, principal: Principal, name: str, values: dict[str, str] | None = None,
                     errors: list[str] | None = None, status: int = 200) -> Response:
    def load(session):
        row = sso.get(session, name)
        return sso_forms.summary(row), sso_forms.form_values(row)
    provider, stored = await _db(request, load)
    return render(request, principal, "admin_sso_form.html", status=status, provider=provider, editing=True,
                  values=stored if values is None else {**values, "provider_type": provider["provider_type"]},
                  errors=errors or [], levels=LEVELS, callback=_callback(request))


@router.get("/admin/sso/{name}/edit")
@page
async def sso_edit_form(request: Request, name: str) -> Response:
    return await _edit_page(request, _admin(request), name)


def _save(session, name: str, form: dict[str, str], principal: Principal, ip: str | None) -> None:
    row = sso.get(session, name)
    sso.update(session, name, sso_forms.patch_body(form, row), principal, ip)


@router.post("/admin/sso/{name}/edit")
@page
async def sso_edit(request: Request, name: str) -> Response:
    principal, form = await posted(request, PERMISSION)
    try:
        await _write(request, _save, name, form, principal, client_ip(request))
    except ValidationError as exc:
        return await _edit_page(request, principal, name, sso_forms.without_secrets(form),
                                validation_messages(exc), 422)
    except (InvalidInput, Conflict) as exc:
        return await _edit_page(request, principal, name, sso_forms.without_secrets(form), [exc.detail],
                                exc.status_code)
    return _see_other("/admin/sso")


async def _set_enabled(request: Request, name: str, enabled: bool) -> Response:
    principal, _ = await posted(request, PERMISSION)
    await _write(request, sso.update, name, sso.ProviderPatch(enabled=enabled), principal, client_ip(request))
    return _see_other("/admin/sso")


@router.post("/admin/sso/{name}/enable")
@page
async def sso_enable(request: Request, name: str) -> Response:
    return await _set_enabled(request, name, True)


@router.post("/admin/sso/{name}/disable")
@page
async def sso_disable(request: Request, name: str) -> Response:
    return await _set_enabled(request, name, False)


@router.post("/admin/sso/{name}/delete")
@page
async def sso_delete(request: Request, name: str) -> Response:
    principal, form = await posted(request, PERMISSION)
    try:
        if form.get("confirm") != "yes":
            raise InvalidInput("tick the box to confirm the deletion")
        await _write(request, sso.delete_provider, name, principal, client_ip(request))
    except (InvalidInput, Conflict) as exc:
        return await _edit_page(request, principal, name, errors=[exc.detail], status=exc.status_code)
    return _see_other("/admin/sso")
