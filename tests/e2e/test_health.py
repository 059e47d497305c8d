"""Liveness and readiness probes, with all parts up and with Temporal down; what anonymous callers see."""

from __future__ import annotations

import pytest

from tests.e2e.test_users_and_auth import bearer_for, make_user

pytestmark = pytest.mark.e2e

INTERNALS = ("127.0.0.1", "localhost", "://", "Error", "Exception", "namespace")


def assert_tells_nothing_inside(stack, text: str) -> None:
    """No address (host:port, URL), file path, namespace or exception text in an answer."""
    port = stack.temporal.address.rsplit(":", 1)[-1]
    leaked = [needle for needle in (*INTERNALS, stack.temporal.address, f":{port}", stack.namespace,
                                    str(stack.root), str(stack.data_dir)) if needle in text]
    assert not leaked, (leaked, text)


def test_live_ready_and_component_report(stack):
    assert stack.anon.get("/api/cloud/health/live").status_code == 200
    ready = stack.anon.get("/api/cloud/health/ready")
    assert ready.status_code == 200, (ready.status_code, ready.text)

    report = stack.expect(stack.client.get("/api/cloud/health"), 200)
    assert report["status"], report
    components = report["components"]
    assert components and all({"name", "status"} <= set(c) for c in components), components
    temporal = [c for c in components if "temporal" in c["name"].lower()]
    database = [c for c in components if any(w in c["name"].lower() for w in ("database", "db", "sqlite", "postgres"))]
    assert temporal and database, components
    for component in temporal + database:  # the probes that make a call report how long it took
        assert isinstance(component.get("latency_ms"), (int, float)), component
    assert stack.temporal.address in temporal[0]["message"]  # admin.config sees where Temporal is
    secrets = [c for c in components if c["name"] == "secrets"]  # which secrets providers answer, no values
    assert secrets and secrets[0]["status"] == "healthy" and secrets[0]["providers"] == [
        {"name": "env", "status": "healthy"}], components

    # anonymous callers and signed-in users without admin.config get the same report without details
    make_user(stack, "rex", "lead")
    for client in (stack.anon, bearer_for(stack, "rex")):
        public = stack.expect(client.get("/api/cloud/health"), 200)
        assert [(c["name"], c["status"]) for c in public["components"]] == [(c["name"], c["status"])
                                                                          for c in components]
        assert_tells_nothing_inside(stack, client.get("/api/cloud/health").text)


def test_ready_is_503_while_temporal_is_down(own_temporal, stack_factory):
    # API only: readiness is about the API's own dependencies (database, Temporal).
    stack = stack_factory(start=False, temporal_server=own_temporal)
    stack.start_api()
    stack.wait_for(lambda: stack.anon.get("/api/cloud/health/ready").status_code, 30, "ready to be 200",
                   until=lambda code: code == 200)

    healthy = stack.expect(stack.client.get("/api/cloud/health"), 200)

    own_temporal.stop()
    down = stack.wait_for(lambda: stack.anon.get("/api/cloud/health/ready"), 30,
                          "ready to be 503 with Temporal stopped", until=lambda r: r.status_code == 503)
    assert down.json()["detail"] == "Temporal unreachable", down.text
    assert_tells_nothing_inside(stack, down.text)
    assert stack.anon.get("/api/cloud/health/live").status_code == 200, "liveness does not depend on Temporal"
    anonymous = stack.anon.get("/api/cloud/health")
    assert anonymous.status_code == 503 and anonymous.json()["status"] == "unhealthy"
    assert_tells_nothing_inside(stack, anonymous.text)
    report = stack.client.get("/api/cloud/health").json()
    before = {c["name"]: c["status"] for c in healthy["components"]}
    temporal = [c for c in report["components"] if "temporal" in c["name"].lower()]
    assert temporal and temporal[0]["status"] != before.get(temporal[0]["name"]), (healthy, report)
    assert own_temporal.address in temporal[0]["message"]  # the admin still sees what failed and where
    assert own_temporal.address in stack.client.get("/api/cloud/health/ready").json()["detail"]

    own_temporal.start()  # same port, same database
    stack.wait_for(lambda: stack.anon.get("/api/cloud/health/ready").status_code, 60,
                   "ready to be 200 again after Temporal came back", until=lambda code: code == 200)
