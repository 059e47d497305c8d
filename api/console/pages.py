"""The console's pages: sign-in, jobs (list, new, detail, cancel), the Administration index, and the error
pages; the helpers every page module uses. A job may run on GPU agents or on a cloud provider (its
target); the detail page of a provider job shows the provider's training.

Every page resolves the caller from the login session (``api.console.auth``) and reads through the
domain functions the REST routes use, with the same permission checks; templates only show what a
handler decided. Domain errors become pages: 403 and 404 pages, a signed-out visitor goes to
``/sign-in``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import ValidationError

from activities.db.models import User
from activities.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound, Unauthorized
from activities.governance import approvals
from activities.identity import logins, principals
from activities.identity.principals import Principal
from activities.identity.sso import providers as sso
from activities.jobs import configs, events, jobs
from activities.paging import PageRequest
from activities.providers import registry, trainings
from activities.providers import settings as provider_settings
from api.console import sections
from api.console.auth import check_csrf, local_path, read_form, session_principal
from api.deps import SESSION_COOKIE, client_ip, get_state, set_session_cookie
from api.job_cancel import cancel_job
from api.routers import auth as auth_routes
from api.routers import external_auth
from api.routers.jobs import visible_job
from api.submission import CloudSubmitBody, SubmitBody, submit
from workflows.contracts import AGENT_TARGETS, ALL_STATUSES, TERMINAL_STATUSES

STATIC_PREFIX = "/static"
TARGETS = (*AGENT_TARGETS, *registry.names())  # what a submission may name: GPU agents or a cloud provider
PAGE_SIZES = (25, 50, 100, 200)
LOG_LINES_RENDERED = 1000

_env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                   autoescape=select_autoescape(default=True, default_for_string=True))
templates = Jinja2Templates(env=_env)
router = APIRouter(include_in_schema=False)


class SignInRequired(Exception):
    """A console page was asked for without a (valid) login session."""


# ---- rendering -------------------------------------------------------------------------------------

def render(request: Request, principal: Principal | None, template: str, status: int = 200,
           **context: Any) -> HTMLResponse:
    def may(permission: str) -> bool:
        return bool(principal and principal.has(permission))
    nav = {"admin": bool(sections.visible(principal)), "submit": may("job.submit"),
           "approvals": principal is not None, "queue": principal is not None, "workers": may("admin.workers"),
           "setup": may("admin.config")}
    response = templates.TemplateResponse(request, template, {
        "principal": principal, "csrf": principal.csrf_token if principal else "", "nav": nav,
        "static": STATIC_PREFIX, "path": request.url.path, **context}, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    return response


def render_error(request: Request, principal: Principal | None, status: int, title: str,
                 message: str) -> HTMLResponse:
    if principal is None:
        principal = session_principal(request)
    return render(request, principal, "error.html", status=status, title=title, message=message,
                  status_code=status)


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _sign_in_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return _see_other("/sign-in" + ("" if target in ("/", "/jobs") else "?" + urlencode({"next": target})))


def page(handler):
    """Domain errors of a page handler become pages: signed out → /sign-in, 403 and 404 pages, and
    any other refusal a page with its status and message."""
    @functools.wraps(handler)
    async def wrapper(*args, **kwargs):
        request: Request = kwargs["request"]
        try:
            return await handler(*args, **kwargs)
        except (SignInRequired, Unauthorized):
            return _sign_in_redirect(request)
        except Forbidden as exc:
            return render_error(request, None, 403, "Not allowed", exc.detail)
        except NotFound as exc:
            return render_error(request, None, 404, "Not found", exc.detail)
        except DomainError as exc:
            return render_error(request, None, exc.status_code, "Request refused", exc.detail)
    return wrapper


def signed_in(request: Request) -> Principal:
    principal = session_principal(request)
    if principal is None:
        raise SignInRequired()
    return principal


async def posted(request: Request, permission: str | None = None) -> tuple[Principal, dict[str, str]]:
    """The signed-in caller of a form post and its fields, after the CSRF check and, when named, the
    permission check."""
    principal = signed_in(request)
    form = await read_form(request)
    check_csrf(principal, form)
    if permission is not None:
        principal.require(permission)
    return principal, form


def _copy_cookies(source: Response, target: Response) -> Response:
    target.raw_headers.extend(h for h in source.raw_headers if h[0] == b"set-cookie")
    return target


def _db(request: Request, fn, *args):
    """``fn(session, *args)`` in a thread with a read-only session."""
    def run():
        with get_state(request).db.read_session() as session:
            return fn(session, *args)
    return asyncio.to_thread(run)


def _int(value: str | None, default: int | None, low: int, high: int, name: str) -> int | None:
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise InvalidInput(f"{name}: must be a whole number") from None
    if not low <= number <= high:
        raise InvalidInput(f"{name}: must be between {low} and {high}")
    return number


def validation_messages(exc: ValidationError) -> list[str]:
    """A form's pydantic errors as lines to show: ``field: message``."""
    return [f"{'.'.join(str(p) for p in e['loc']) or 'form'}: {e['msg']}" for e in exc.errors()]


def _write(request: Request, fn, *args):
    """``fn(session, *args)`` in a thread with a read-write session, committed."""
    def run():
        with get_state(request).db.session() as session:
            result = fn(session, *args)
            session.commit()
            return result
    return asyncio.to_thread(run)


def pager(base: str, found, cursor: str | None, keep: dict[str, Any] | None = None) -> dict[str, Any]:
    """What ``_pager.html`` needs for one page of a cursor-paged list at ``base`` (``keep``: the
    filters every page link carries)."""
    keep = {k: v for k, v in (keep or {}).items() if v is not None}
    first_url = f"{base}?{urlencode(keep)}" if keep else base
    next_url = f"{base}?{urlencode({**keep, 'cursor': found.next_cursor})}" if found.next_cursor else None
    return {"total": found.total, "next_url": next_url, "first_url": first_url, "paged": bool(cursor)}


def _blank(value: str | None) -> str | None:
    return value.strip() if value and value.strip() else None


# ---- sign-in ---------------------------------------------------------------------------------------

@router.get("/")
async def index(request: Request) -> RedirectResponse:
    return _see_other("/jobs" if session_principal(request) else "/sign-in")


def _providers(session) -> list[dict[str, str]]:
    return [{"name": row.name, "provider_type": row.provider_type} for row in sso.list_all(session) if row.enabled]


SIGN_IN_NOTICES = {"password": "Your password was changed and every session ended: sign in with the new one."}


async def _sign_in_page(request: Request, status: int = 200, error: str | None = None, form: str | None = None,
                        next_url: str = "/jobs", notice: str | None = None) -> HTMLResponse:
    providers = await _db(request, _providers)
    callback = str(request.base_url).rstrip("/") + "/sign-in/oidc"
    for p in providers:
        if p["provider_type"] == "oidc":
            p["start_url"] = "/api/auth/external/oidc/start?" + urlencode(
                {"provider": p["name"], "redirect_uri": callback, "return_to": next_url})
    return render(request, None, "sign_in.html", status=status, error=error, failed_form=form,
                  providers=providers, next_url=next_url, notice=notice)


@router.get("/sign-in")
async def sign_in_form(request: Request, next: str | None = None, done: str | None = None) -> Response:
    if session_principal(request) is not None:
        return _see_other(local_path(next))
    return await _sign_in_page(request, next_url=local_path(next), notice=SIGN_IN_NOTICES.get(done or ""))


async def _sign_in_post(request: Request, kind: str, attempt) -> Response:
    try:
        form = await read_form(request)
    except DomainError as exc:
        return await _sign_in_page(request, exc.status_code, exc.detail, kind)
    next_url = local_path(form.get("next"))
    try:
        token_response = await attempt(form)
    except ValidationError:
        return await _sign_in_page(request, 422, "Fill in every field.", kind, next_url)
    except DomainError as exc:
        return await _sign_in_page(request, exc.status_code, exc.detail, kind, next_url)
    return _copy_cookies(token_response, _see_other(next_url))


@router.post("/sign-in")
async def sign_in_password(request: Request) -> Response:
    """The REST password login itself (rate limits, audit, session), answered with a redirect."""
    async def attempt(form: dict[str, str]) -> Response:
        body = auth_routes.LoginBody(username=form.get("username", ""), password=form.get("password", ""))
        response = Response()

        def run() -> None:
            with get_state(request).db.session() as session:
                auth_routes.login(body, session, request, response)
        await asyncio.to_thread(run)
        return response
    return await _sign_in_post(request, "password", attempt)


@router.post("/sign-in/key")
async def sign_in_key(request: Request) -> Response:
    """Exchange an API key (such as the bootstrap admin's ``admin.token``) for a login session, opened
    and audited like a password login (method ``api_key``). Failures count toward the IP's limit."""
    ip, agent = client_ip(request), request.headers.get("user-agent")

    async def attempt(form: dict[str, str]) -> Response:
        key = form.get("api_key", "").strip()
        if not key or len(key) > 1024:
            raise InvalidInput("Enter an API key.")
        account = f"api-key@{ip or 'unknown'}"

        def run() -> str:
            with get_state(request).db.session() as session:
                logins.check_rate(session, account, ip)
                try:
                    principal = principals.authenticate_key(session, key)
                except Unauthorized as exc:
                    logins.record_failure(session, account, ip, exc.detail, method="api_key")
                    session.commit()
                    raise Unauthorized("invalid API key") from None
                principals.ensure_may_hold_credentials(principal)
                user = session.get(User, principal.user_id)
                token, _ = logins.open_session(session, user, ip, agent, method="api_key")
                session.commit()
                return token
        response = Response()
        set_session_cookie(request, response, await asyncio.to_thread(run))
        return response
    return await _sign_in_post(request, "api_key", attempt)


@router.post("/sign-in/ldap")
async def sign_in_ldap(request: Request) -> Response:
    """The REST LDAP login itself, answered with a redirect."""
    async def attempt(form: dict[str, str]) -> Response:
        body = external_auth.LdapLoginBody(provider=form.get("provider", ""), username=form.get("username", ""),
                                           password=form.get("password", ""))
        response = Response()
        await external_auth.ldap_login(body, get_state(request), request, response)
        return response
    return await _sign_in_post(request, "ldap", attempt)


@router.get("/sign-in/oidc")
async def sign_in_oidc_return(request: Request) -> HTMLResponse:
    """Where an OIDC provider sends the browser back: console/static/oidc.js hands the code and state
    to ``/api/auth/external/oidc/callback`` (which needs this browser's binding cookie)."""
    return render(request, None, "oidc_return.html")


@router.post("/sign-out")
@page
async def sign_out(request: Request) -> Response:
    principal, _ = await posted(request)
    if principal.session_id is None:  # single-user mode: nobody to sign out
        return _see_other("/jobs")

    def run() -> None:
        with get_state(request).db.session() as session:
            logins.close_session(session, principal, client_ip(request))
            session.commit()
    await asyncio.to_thread(run)
    response = _see_other("/sign-in")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# ---- jobs ------------------------------------------------------------------------------------------

@router.get("/jobs")
@page
async def jobs_list(request: Request, status: str | None = None, user: str | None = None,
                    config: str | None = None, target: str | None = None, cursor: str | None = None,
                    limit: str | None = None) -> Response:
    principal = signed_in(request)
    filters = {"status": _blank(status), "user": _blank(user), "config": _blank(config), "target": _blank(target)}
    if filters["target"] is not None and filters["target"] not in TARGETS:
        raise InvalidInput(f"unknown target {filters['target']!r}")
    size = _int(limit, 50, 1, max(PAGE_SIZES), "limit")
    page_request = PageRequest(limit=size, cursor=_blank(cursor))

    def load(session):
        found = jobs.visible_jobs(session, principal, filters["status"], filters["user"], filters["config"],
                                  filters["target"], page_request)
        return [jobs.to_dict(j) for j in found.rows], found, events.latest_id(session)
    rows, found, last_event = await _db(request, load)
    events_url = "/api/events/stream?" + urlencode({"last_event_id": last_event})
    return render(request, principal, "jobs.html", jobs=rows, filters=filters, statuses=ALL_STATUSES,
                  targets=TARGETS, events_url=events_url, limit=size, page_sizes=PAGE_SIZES,
                  **pager("/jobs", found, cursor, {**filters, "limit": None if size == 50 else size}),
                  may_filter_user=principal.has("job.view.all"))


def _new_job_context(session, principal: Principal) -> dict[str, Any]:
    names = [c.name for c in configs.list_all(session)] if principal.has("config.view") else []
    cloud = [{"name": name, "missing": provider_settings.configured(provider_settings.config(session, name))}
             for name in registry.names()]
    return {"configs": names, "targets": AGENT_TARGETS, "cloud": cloud,
            "may_prioritize": principal.has("job.priority.high"), "idempotency_key": secrets.token_urlsafe(16),
            "may_configure": principal.has("admin.config")}


@router.get("/jobs/new")
@page
async def new_job_form(request: Request) -> Response:
    principal = signed_in(request)
    principal.require("job.submit")
    context = await _db(request, _new_job_context, principal)
    return render(request, principal, "job_new.html", values={"target": "auto"}, errors=[], **context)


def _labels(text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"worker labels, line {n}: write key=value")
        labels[key.strip()] = value.strip()
    return labels


@router.post("/jobs/new")
@page
async def new_job_submit(request: Request) -> Response:
    principal, form = await posted(request, "job.submit")
    state = get_state(request)
    errors: list[str] = []
    try:
        target = form.get("target", "auto")
        data: dict[str, Any] = {"config_name": form.get("config_name", ""),
                                "worker_labels": _labels(form.get("worker_labels", "")),
                                "gpu_count": _int(form.get("gpu_count"), None, 1, 1024, "GPU count"),
                                "idempotency_key": _blank(form.get("idempotency_key"))}
        if principal.has("job.priority.high"):
            data["priority"] = _int(form.get("priority"), None, 0, 1000, "priority")
        if registry.is_provider(target):  # as POST /api/cloud/jobs/submit with "provider"
            body = CloudSubmitBody.model_validate({**data, "provider": target}).as_submission()
        else:
            body = SubmitBody.model_validate({**data, "target": target})
        job, _ = await submit(body, principal, state.db, state.temporal, state.settings, client_ip(request))
        return _see_other(f"/jobs/{quote(job['job_id'], safe='')}")
    except ValidationError as exc:
        errors = validation_messages(exc)
        status = 422
    except (InvalidInput, Conflict, Forbidden) as exc:
        errors, status = [exc.detail], exc.status_code
    context = await _db(request, _new_job_context, principal)
    return render(request, principal, "job_new.html", status=status, values=form, errors=errors, **context)


def _link(value: Any) -> str | None:
    """``value`` when it is an absolute http(s) URL (shown as a link), else None (shown as text)."""
    if not isinstance(value, str):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    return value if parts.scheme in ("http", "https") and parts.hostname else None


def _output_items(output: Any) -> list[dict[str, Any]]:
    """A provider training's output as name/text/link rows (Replicate: ``version`` and ``weights``)."""
    if output is None:
        return []
    entries = output.items() if isinstance(output, dict) else [(None, output)]
    return [{"name": None if name is None else str(name),
             "text": value if isinstance(value, str) else json.dumps(value, default=str),
             "url": _link(value)} for name, value in entries]


def _provider_training(session, job_id: str) -> dict[str, Any] | None:
    row = trainings.find(session, job_id)
    if row is None:
        return None
    return {**trainings.to_dict(row), "output_items": _output_items(row.output)}


def _job_view(session, principal: Principal, job_id: str, settings) -> dict[str, Any]:
    job = visible_job(session, principal, job_id)
    view = jobs.to_dict(job)  # output URLs relative to this site, encoded
    approval = None
    try:
        req = approvals.for_job(session, job_id)
        if approvals.visible(principal, req):
            approval = approvals.to_dict(req)
    except NotFound:
        pass
    lines = jobs.read_logs(session, job_id, 0, LOG_LINES_RENDERED)
    temporal_url = None
    if settings.temporal_ui_url:
        temporal_url = (f"{settings.temporal_ui_url.rstrip('/')}/namespaces/"
                        f"{quote(settings.temporal.namespace, safe='')}/workflows/{quote(job.id, safe='')}")
    return {"job": view, "approval": approval, "log_lines": [r.line for r in lines],
            "training": _provider_training(session, job.id), "on_provider": registry.is_provider(job.target),
            "last_log_id": lines[-1].id if lines else 0, "last_event": events.latest_id(session),
            "terminal": job.status in TERMINAL_STATUSES, "temporal_url": temporal_url,
            "may_cancel": job.status not in TERMINAL_STATUSES and principal.may_see(job.owner_id, "job.cancel")}


@router.get("/jobs/{job_id}")
@page
async def job_detail(request: Request, job_id: str) -> Response:
    principal = signed_in(request)
    view = await _db(request, _job_view, principal, job_id, get_state(request).settings)
    quoted = quote(job_id, safe="")
    return render(request, principal, "job.html", **view,
                  logs_url=f"/api/cloud/jobs/{quoted}/logs/stream?after={view['last_log_id']}",
                  events_url="/api/events/stream?" + urlencode({"job_id": job_id, "last_event_id": view["last_event"]}))


@router.post("/jobs/{job_id}/cancel")
@page
async def job_cancel(request: Request, job_id: str) -> Response:
    principal, _ = await posted(request)
    try:
        await cancel_job(get_state(request), principal, job_id, client_ip(request))
    except Conflict:  # it finished meanwhile: the page shows how
        pass
    return _see_other(f"/jobs/{quote(job_id, safe='')}")


# ---- administration --------------------------------------------------------------------------------

@router.get("/admin")
@page
async def admin_index(request: Request) -> Response:
    principal = signed_in(request)
    shown = sections.visible(principal)
    if not shown:
        raise Forbidden("no administration section is open to you")
    return render(request, principal, "admin_index.html", sections=shown)
