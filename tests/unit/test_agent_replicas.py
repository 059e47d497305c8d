"""An agent given several API replicas moves to the next one when the current one is down."""

from __future__ import annotations

import httpx
import pytest

from gpu_agent.orchestrator import OrchestratorClient, OrchestratorUnavailable, split_urls


def client(down: set[str], seen: list[str], broken: set[str] = frozenset()) -> OrchestratorClient:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.host)
        if request.url.host in down:
            raise httpx.ConnectError("refused", request=request)
        if request.url.host in broken:
            raise httpx.ReadTimeout("no answer", request=request)
        return httpx.Response(200, json={"ok": request.url.host})
    return OrchestratorClient("http://a:8001, http://b:8001/", "t", transport=httpx.MockTransport(handle))


def test_urls_are_split_and_trimmed():
    assert split_urls("http://a:1/,http://b:2") == ["http://a:1", "http://b:2"]
    with pytest.raises(ValueError):
        split_urls(" , ")


async def test_a_refused_connection_goes_to_the_next_replica_at_once():
    seen: list[str] = []
    api = client({"a"}, seen)
    assert (await api.heartbeat("idle", None))["ok"] == "b"
    assert (await api.heartbeat("idle", None))["ok"] == "b"  # stays on the one that answers
    assert seen == ["a", "b", "b"]
    await api.aclose()


async def test_every_replica_down_is_unavailable():
    api = client({"a", "b"}, [])
    with pytest.raises(OrchestratorUnavailable):
        await api.heartbeat("idle", None)
    await api.aclose()


async def test_a_request_that_may_have_arrived_is_not_resent_but_the_retry_goes_elsewhere():
    seen: list[str] = []
    api = client(set(), seen, broken={"a"})
    with pytest.raises(OrchestratorUnavailable):
        await api.claim("job-1", 1)
    assert seen == ["a"]
    assert (await api.claim("job-1", 1))["ok"] == "b"
    await api.aclose()
