"""The HTTP metrics middleware labels answers by method and route template, never by raw path: ids,
unknown paths and made-up methods cannot add series. Errors are counted by status, also when the
handler raises or another middleware answers before routing, and a middleware that hands on a copy
of the scope does not hide the route."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from activities.observability import process_metrics
from api.http_metrics import HttpMetricsMiddleware, RouteSpotter


class ScopeCopier:
    """Hands the app a copy of the scope (as the JSON-body middleware does when it rewrites headers)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        await self.app({**scope}, receive, send)


class EarlyRefusal:
    """Answers 413 itself for /too-big, before any routing (as the body limit does)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"] == "/too-big":
            await send({"type": "http.response.start", "status": 413, "headers": []})
            return await send({"type": "http.response.body", "body": b""})
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> FastAPI:
    static = tmp_path_factory.mktemp("static")
    (static / "site.css").write_text("body {}")
    made = FastAPI()

    @made.get("/api/things/{thing_id}")
    def thing(thing_id: str) -> dict:
        if thing_id == "missing":
            from fastapi import HTTPException
            raise HTTPException(404, "no such thing")
        return {"id": thing_id}

    @made.post("/api/things/{thing_id}/boom")
    def boom(thing_id: str) -> dict:
        raise RuntimeError("handler failed")

    made.mount("/assets", StaticFiles(directory=static), name="assets")
    made.add_middleware(RouteSpotter)
    made.add_middleware(ScopeCopier)
    made.add_middleware(EarlyRefusal)
    made.add_middleware(HttpMetricsMiddleware)
    return made


def _figures() -> tuple[dict[tuple[str, str], float], dict[str, float]]:
    """Requests per (method, route) from the histogram's counts, and errors per endpoint_status."""
    found = {f.name: f for f in process_metrics.families()}
    counts = {(s.labels["method"], s.labels["route"]): s.value for s in found[process_metrics.HTTP_DURATION].samples
              if s.name.endswith("_count")}
    errors = {s.labels["endpoint_status"]: s.value for s in found["simpletuner_http_errors"].samples}
    return counts, errors


def _send(app: FastAPI, calls: list[tuple[str, str]]) -> None:
    async def go():
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            for method, path in calls:
                await client.request(method, path)
    asyncio.run(go())


def _delta(before: dict, after: dict) -> dict:
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


def test_ids_share_one_series_per_route_template(app):
    counts, errors = _figures()
    _send(app, [("GET", f"/api/things/t-{n}") for n in range(40)] + [("GET", "/api/things/missing")])
    new_counts, new_errors = _figures()
    assert _delta(counts, new_counts) == {("GET", "/api/things/{thing_id}"): 41}
    assert _delta(errors, new_errors) == {"GET_/api/things/{thing_id}_404": 1}
    assert not any("t-1" in route for _, route in new_counts)


def test_unknown_paths_and_methods_share_one_label(app):
    counts, errors = _figures()
    _send(app, [("GET", f"/nowhere/{n}") for n in range(25)] + [("BREW", "/api/things/x"), ("DELETE", "/api/things/x")])
    new_counts, new_errors = _figures()
    assert _delta(counts, new_counts) == {("GET", "<unmatched>"): 25, ("OTHER", "/api/things/{thing_id}"): 1,
                                          ("DELETE", "/api/things/{thing_id}"): 1}
    assert _delta(errors, new_errors) == {"GET_<unmatched>_404": 25, "OTHER_/api/things/{thing_id}_405": 1,
                                          "DELETE_/api/things/{thing_id}_405": 1}


def test_a_raising_handler_counts_as_500_and_an_early_refusal_as_unmatched(app):
    counts, errors = _figures()
    _send(app, [("POST", "/api/things/a/boom"), ("POST", "/too-big")])
    new_counts, new_errors = _figures()
    assert _delta(counts, new_counts) == {("POST", "/api/things/{thing_id}/boom"): 1, ("POST", "<unmatched>"): 1}
    assert _delta(errors, new_errors) == {"POST_/api/things/{thing_id}/boom_500": 1, "POST_<unmatched>_413": 1}


def test_mounted_files_are_labelled_by_the_mount(app):
    counts, _ = _figures()
    _send(app, [("GET", "/assets/site.css"), ("GET", "/assets/other.css")])
    new_counts, _ = _figures()
    assert _delta(counts, new_counts) == {("GET", "/assets/{path}"): 2}


def test_every_request_is_timed_in_the_histogram(app):
    _send(app, [("GET", "/api/things/timed")])
    found = {f.name: f for f in process_metrics.families()}
    buckets = [s for s in found[process_metrics.HTTP_DURATION].samples
               if s.name.endswith("_bucket") and s.labels["route"] == "/api/things/{thing_id}" and s.labels["method"] == "GET"]
    assert [s.labels["le"] for s in buckets][-1] == "+Inf"
    assert buckets[-1].value >= 1 and all(a.value <= b.value for a, b in zip(buckets, buckets[1:]))
