"""Every console form post, walked from the app's own routes: signed out it goes to the sign-in page;
signed in without the form's token, or from another site, it is refused with the 403 page; and it
never answers 5xx. New page modules are covered without being listed here."""

from __future__ import annotations

import importlib
import pkgutil
import re

import httpx
import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute

import api.console
from tests.e2e.test_users_and_auth import make_user

pytestmark = pytest.mark.e2e
SIGN_IN = {"/sign-in", "/sign-in/key", "/sign-in/ldap"}  # answered before anyone is signed in
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def console_posts() -> list[str]:
    """The POST paths of every router in the console package (path parameters filled with ``x``)."""
    paths = set()
    for info in pkgutil.iter_modules(api.console.__path__):
        router = getattr(importlib.import_module(f"api.console.{info.name}"), "router", None)
        if isinstance(router, APIRouter):
            paths |= {re.sub(r"\{[^}]+\}", "x", r.path) for r in router.routes
                      if isinstance(r, APIRoute) and "POST" in r.methods}
    return sorted(paths - SIGN_IN)


def test_the_walk_finds_the_console_forms():
    posts = console_posts()
    assert len(posts) > 40 and "/admin/users/new" in posts and "/workers/new" in posts, posts


def test_every_form_post_needs_a_session_its_token_and_this_site(shared_api):
    stack = shared_api
    make_user(stack, "fiona", "researcher")
    browser = httpx.Client(base_url=stack.api_url, trust_env=False, timeout=15, follow_redirects=False)
    login = browser.post("/api/auth/login", json={"username": "fiona", "password": "Sturdy-Passw0rd-9"})
    assert login.status_code == 200, login.text
    token = login.json()["csrf_token"]
    anonymous = httpx.Client(base_url=stack.api_url, trust_env=False, timeout=15, follow_redirects=False)
    for path in console_posts():
        signed_out = anonymous.post(path, content="csrf=x", headers=FORM)
        assert signed_out.status_code == 303 and signed_out.headers["location"].startswith("/sign-in"), \
            (path, signed_out.status_code)
        no_token = browser.post(path, content="name=x", headers=FORM)
        assert no_token.status_code == 403 and "security token" in no_token.text, (path, no_token.status_code)
        cross_site = browser.post(path, content=f"csrf={token}", headers={**FORM, "Origin": "https://evil.test"})
        assert cross_site.status_code == 403 and "cross-site" in cross_site.text, (path, cross_site.status_code)
        as_json = browser.post(path, json={"csrf": token})  # a console form is urlencoded, nothing else
        assert as_json.status_code in (403, 422) and as_json.status_code < 500, (path, as_json.status_code)
