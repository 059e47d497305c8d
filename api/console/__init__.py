"""The browser console: server-rendered pages (Jinja2, autoescaped) with small same-origin scripts
for live updates. Its pages are not part of the REST API (``include_in_schema=False``); it reads and
writes through the same domain functions and permission checks the REST routes use.

``install(app)`` adds the page router, the static files under ``/console-static``, the
Content-Security-Policy on console answers and the HTML 404 page for paths outside ``/api``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.console import (account_pages, approvals_pages, audit_pages, channels_pages, credentials_pages, metrics_pages,
                         operations_pages, orgs_pages, providers_pages, queue_page, quotas_pages, resource_rules_pages, rules_pages,
                         setup_pages, sso_pages, users_pages, workers_pages)
from api.console.headers import ConsoleHeadersMiddleware, is_console_path
from api.console.pages import STATIC_PREFIX, render_error, router

STATIC_DIR = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    app.include_router(router)
    for pages in (account_pages, approvals_pages, audit_pages, channels_pages, credentials_pages, metrics_pages,
                  operations_pages, orgs_pages, providers_pages, queue_page, quotas_pages, resource_rules_pages, rules_pages, setup_pages, sso_pages,
                  users_pages, workers_pages):
        app.include_router(pages.router)
    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="console-static")
    app.add_middleware(ConsoleHeadersMiddleware)

    @app.exception_handler(StarletteHTTPException)
    async def _not_found(request: Request, exc: StarletteHTTPException):
        """Unknown pages outside the API get the console's 404 page; the API keeps its JSON answer."""
        if exc.status_code == 404 and is_console_path(request.url.path) and request.method in ("GET", "HEAD"):
            return render_error(request, None, 404, "Page not found",
                                "There is no page at this address.")
        return await http_exception_handler(request, exc)
