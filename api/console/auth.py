"""Who is using the console, and checks on its form posts.

The console signs people in with the API's own login session (the ``st_session`` cookie made by
``activities.identity.logins.open_session``) and checks every form post's hidden ``csrf`` field
against that session's CSRF token, as ``api.deps.current_principal`` checks the ``X-CSRF-Token``
header. It uses no other credential (no bearer keys, no network bypass), except single-user mode's
local user.
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

from fastapi import Request

from activities.errors import Forbidden, InvalidInput, Unauthorized
from activities.identity import principals
from activities.identity.principals import Principal
from api.deps import SESSION_COOKIE, get_state, single_user_request

MAX_FORM_BYTES = 64 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"


def session_principal(request: Request) -> Principal | None:
    """The signed-in user of this browser, or None (no cookie, an expired or revoked session, a
    disabled account). In single-user mode a browser on this machine without a session is the first
    active admin, its forms checked against a token of this API process."""
    state = get_state(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    single_user = single_user_request(state.settings, request)
    if not cookie and not single_user:
        return None  # nobody to look up: no database session for a signed-out visitor
    with state.db.read_session() as session:
        if cookie:
            try:
                return principals.authenticate_session(session, cookie)
            except Unauthorized:
                pass
        if single_user:
            try:
                return replace(principals.single_user_principal(session), csrf_token=state.single_user_csrf)
            except Unauthorized:
                return None
    return None


def check_same_origin(request: Request) -> None:
    """A console form must come from a console page: refuse cross-site posts (login CSRF included)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise Forbidden("cross-site form posts are refused")
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        here = urlsplit(str(request.base_url))
        there = urlsplit(origin)
        if (there.scheme, there.netloc) != (here.scheme, here.netloc):
            raise Forbidden("cross-site form posts are refused")
    elif origin == "null":
        raise Forbidden("cross-site form posts are refused")


def check_csrf(principal: Principal, form: dict[str, str]) -> None:
    sent = form.get("csrf", "")
    if not sent or not secrets.compare_digest(sent, principal.csrf_token or ""):
        raise Forbidden("the form's security token is missing or out of date; reload the page and try again")


async def read_form(request: Request) -> dict[str, str]:
    """A urlencoded form body (first value of each field)."""
    return {k: v[0] for k, v in (await read_form_lists(request)).items()}


async def read_form_lists(request: Request) -> dict[str, list[str]]:
    """A urlencoded form body, every value of each field (check boxes of one name)."""
    check_same_origin(request)
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != FORM_TYPE:
        raise InvalidInput(f"a console form must be sent as {FORM_TYPE}")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise InvalidInput("form too large")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=200)
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput("malformed form") from None
    return fields


def local_path(value: str | None, default: str = "/jobs") -> str:
    """A redirect target on this site only."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value and len(value) < 2000:
        return value
    return default
