"""ASGI middleware timing every HTTP answer for the metrics, labelled by method and route template
(``/api/cloud/jobs/{job_id}``), never by the raw path, so ids cannot multiply the series.

Two layers: ``HttpMetricsMiddleware`` is outermost (it times everything, also the answers other
middleware give before routing, such as a 413), and ``RouteSpotter`` sits next to the router, where
the scope is the one routing fills in; it passes the matched route out through a box in the scope
(a middleware in between may hand on a copy of the scope, never a copy of the box)."""

from __future__ import annotations

import time

from activities.observability.process_metrics import observe_http

BOX = "simpletuner.http_route"
UNMATCHED = "<unmatched>"  # no route: unknown paths, and answers given before routing
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_label(scope) -> str | None:
    """The template of the route that matched (a mount: its prefix and ``{path}``), else None."""
    route = scope.get("route")
    if route is not None:
        return getattr(route, "path", None) or UNMATCHED
    if "app_root_path" in scope and scope.get("root_path"):  # a mounted app (static files)
        return scope["root_path"].rstrip("/") + "/{path}"
    return None


class RouteSpotter:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        box = scope.get(BOX)
        if box is None:
            return await self.app(scope, receive, send)

        async def spotting_send(message):
            if message["type"] == "http.response.start":
                box[0] = route_label(scope)
            await send(message)

        try:
            await self.app(scope, receive, spotting_send)
        finally:
            if box[0] is None:
                box[0] = route_label(scope)


class HttpMetricsMiddleware:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        box: list[str | None] = [None]
        status = [500]  # what the client gets when the app raises before answering
        scope[BOX] = box

        async def status_send(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, status_send)
        finally:
            method = scope["method"] if scope["method"] in METHODS else "OTHER"
            observe_http(method, box[0] or UNMATCHED, status[0], time.perf_counter() - started)
