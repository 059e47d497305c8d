"""Scale-out on one PostgreSQL and one Temporal: two API replicas, two worker hosts and three agents.

Jobs submitted through either API complete; a job submitted through one replica is approved through
the other; an OIDC login started on one finishes on the other; one worker host and one API are
SIGKILLed while jobs run and nothing is lost (the agents listed both replicas and move to the live
one); every job's outputs read the same through every replica (they share the data directory).
"""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.test_postgres import pg_env, pg_stack_factory  # noqa: F401  (fixtures)
from tests.e2e.test_sso import CALLBACK, PROVIDERS, idp, oidc_provider  # noqa: F401  (idp: a fixture)
from tests.e2e.test_users_and_auth import bearer_for, make_user
from tests.servers.oidc_server import login_through_browser_forms

pytestmark = pytest.mark.e2e


def on(url: str, like: httpx.Client) -> httpx.Client:
    """The same caller (same credentials) talking to another replica."""
    return httpx.Client(base_url=url, trust_env=False, timeout=15,
                        headers={"Authorization": like.headers["Authorization"]})


def held_command(go) -> list[str]:
    """Runs until the test creates ``go``, then writes its job id as its output."""
    return ["/bin/sh", "-c", f'while [ ! -e "{go}" ]; do sleep 0.02; done; '
                             'echo "$SIMPLETUNER_JOB_ID" > "$SIMPLETUNER_OUTPUT_DIR/result.txt"']


@pytest.mark.slow  # a long scenario: make slow (CI runs it after make test)
def test_two_apis_two_worker_hosts_three_agents(pg_stack_factory, idp):  # noqa: F811
    stack = pg_stack_factory(start=False)
    stack.start_api()
    host_a = stack.start_worker_host()
    api_b, b_url = stack.start_api_replica()
    stack.start_worker_host_replica()
    a, b = stack.client, on(b_url, stack.client)
    both = {"a": stack.api_url, "b": b_url}
    for i, first in enumerate("aab"):
        _, token = stack.create_worker(f"gpu-{i}", {"host": "local"}, local=True)
        second = "b" if first == "a" else "a"
        stack.start_agent(token, name=f"gpu-{i}", orchestrator_url=f"{both[first]},{both[second]}")
    assert {w["status"] for w in stack.expect(b.get("/api/admin/workers"), 200)["workers"]} == {"idle"}

    go = stack.root / "go"
    for name in ("held", "gated-held"):  # written through A, read through B
        stack.expect(a.put(f"/api/configs/{name}", json={"command": held_command(go), "gpu_count": 1}), 200, 201)
    stack.expect(b.post("/api/approvals/rules", json={
        "name": "gate", "condition": "config_pattern", "threshold": "gated-*", "required_approver_level": "lead"}),
        201)
    make_user(stack, "rae", "researcher")
    make_user(stack, "lena", "lead")
    rae = {"a": bearer_for(stack, "rae")}
    rae["b"] = on(b_url, rae["a"])
    lena_b = on(b_url, bearer_for(stack, "lena"))

    jobs = [stack.expect(rae["ab"[i % 2]].post("/api/queue/submit", json={"config_name": "held", "target": "local"}),
                         201)["job_id"] for i in range(4)]
    gated = stack.expect(rae["a"].post("/api/queue/submit", json={"config_name": "gated-held", "target": "local"}),
                         201)["job_id"]
    stack.wait_job(gated, "pending_approval", timeout=30)
    request = stack.expect(lena_b.get(f"/api/approvals/requests/job/{gated}"), 200)
    decided = stack.expect(lena_b.post(f"/api/approvals/requests/{request['id']}/approve", json={"comment": "ok"}), 200)
    assert (decided["status"], decided["decided_by"]) == ("approved", "lena")
    jobs.append(gated)
    stack.wait_for(lambda: stack.jobs(status="running")["total"] == 3, 60, "three jobs to run, one per agent")

    # Mid-run: one worker host and one API die without a word.
    for proc in (host_a, api_b):
        proc.kill()
        proc.wait_exit(10)
    jobs.append(stack.expect(rae["a"].post("/api/queue/submit", json={"config_name": "held", "target": "local"}),
                             201)["job_id"])
    go.touch()
    for job_id in jobs:
        stack.wait_job(job_id, "completed", timeout=120)
    stats = stack.expect(a.get("/api/queue/stats"), 200)
    assert (stats["running"], stats["waiting"]) == (0, 0)
    assert stack.expect(a.get(f"/api/approvals/requests/{request['id']}"), 200)["status"] == "approved"

    # The killed API comes back where the agents expect it; every replica serves every job's outputs.
    stack.start_api_replica(port=httpx.URL(b_url).port)
    for job_id in jobs:
        for client in (rae["a"], rae["b"]):
            job = stack.expect(client.get(f"/api/cloud/jobs/{job_id}"), 200)
            assert [o["name"] for o in job["outputs"]] == ["result.txt"], job
            output = client.get(f"/api/cloud/jobs/{job_id}/outputs/result.txt")
            assert output.status_code == 200 and output.text.strip() == job_id
    assert stack.sql("SELECT count(*) AS n FROM admission WHERE released_at IS NULL") == [{"n": 0}]

    # An OIDC login started on A finishes on B; the session it opens works on A.
    stack.expect(a.post(PROVIDERS, json=oidc_provider(idp.issuer)), 201)
    with httpx.Client(base_url=stack.api_url, trust_env=False, timeout=15) as web:
        start = web.get("/api/auth/external/oidc/start", params={"provider": "corp-sso", "redirect_uri": CALLBACK})
        assert start.status_code == 302, start.text
        with httpx.Client(timeout=15, trust_env=False) as idp_browser:
            final = login_through_browser_forms(idp_browser, start.headers["location"], "alice", CALLBACK)
        with httpx.Client(base_url=b_url, trust_env=False, timeout=15, cookies=web.cookies) as web_b:
            done = stack.expect(web_b.get("/api/auth/external/oidc/callback", params=dict(httpx.URL(final).params)),
                                200)
            web.cookies.update(web_b.cookies)
        assert done["user"]["username"] == "alice"
        assert stack.expect(web.get("/api/users/me"), 200)["id"] == done["user"]["id"]
