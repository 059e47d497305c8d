"""Approval requests over REST without any e-mail channel: bulk decisions, visibility, bad input."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from tests.e2e.test_users_and_auth import audit_rows, bearer_for, make_user

pytestmark = pytest.mark.e2e


@pytest.fixture
def gated(stack):
    """Every researcher job of config 'gated-*' needs a lead's approval."""
    _, token = stack.create_worker("local-1", {"host": "local"}, local=True)
    stack.start_agent(token, name="local-1")
    stack.put_config("gated-a", steps=1)
    stack.expect(stack.client.post("/api/approvals/rules", json={
        "name": "gate", "condition": "config_pattern", "threshold": "gated-*", "required_approver_level": "lead"}), 201)
    for name, level in (("rae", "researcher"), ("ray", "researcher"), ("lena", "lead")):
        make_user(stack, name, level)
    return stack


def pending(stack, who) -> dict:
    job_id = stack.expect(who.post("/api/queue/submit", json={"config_name": "gated-a", "target": "local"}), 201)["job_id"]
    stack.wait_job(job_id, "pending_approval", timeout=30)
    return stack.expect(stack.client.get(f"/api/approvals/requests/job/{job_id}"), 200)


def test_bulk_decisions_and_visibility(gated):
    stack = gated
    rae, ray, lena = bearer_for(stack, "rae"), bearer_for(stack, "ray"), bearer_for(stack, "lena")
    a, b, c = pending(stack, rae), pending(stack, rae), pending(stack, ray)

    # researchers see only their own requests; the lead sees all
    assert {r["id"] for r in stack.expect(rae.get("/api/approvals/requests"), 200)["requests"]} == {a["id"], b["id"]}
    assert ray.get(f"/api/approvals/requests/{a['id']}").status_code == 404
    assert ray.get(f"/api/approvals/requests/job/{a['job_id']}").status_code == 404
    assert stack.expect(ray.get("/api/approvals/requests/pending/count"), 200)["count"] == 1
    listed = stack.expect(lena.get("/api/approvals/requests", params={"status": "pending", "user": "rae"}), 200)
    assert listed["total"] == 2

    done = stack.expect(lena.post("/api/approvals/requests/bulk-approve",
                                  json={"request_ids": [a["id"], "apr_missing"], "comment": "batch"}), 200)
    assert done["succeeded"] == 1 and done["failed"] == 1
    assert {r["request_id"]: r.get("status_code") for r in done["results"]} == {a["id"]: None, "apr_missing": 404}
    rejected = stack.expect(lena.post("/api/approvals/requests/bulk-reject", json={"request_ids": [b["id"], a["id"]]}),
                            200)
    assert [r["ok"] for r in rejected["results"]] == [True, False]  # a was already approved: 409
    assert rejected["results"][1]["status_code"] == 409

    # the submitter withdraws c; nobody else but admins/leads (job.cancel.all) may
    assert rae.post(f"/api/approvals/requests/{c['id']}/cancel").status_code == 404  # not visible to rae
    cancelled = stack.expect(ray.post(f"/api/approvals/requests/{c['id']}/cancel", json={"comment": "oops"}), 200)
    assert cancelled["status"] == "cancelled"

    stack.wait_job(a["job_id"], "completed", timeout=60)
    assert stack.wait_job(b["job_id"], "cancelled", timeout=30)["error"].startswith("rejected by lena")
    assert stack.wait_job(c["job_id"], "cancelled", timeout=30)["error"] == "approval request cancelled by ray"
    granted = [row for row in audit_rows(stack, "approval.granted") if row[1] == a["id"]]
    assert granted and granted[0][0] == "lena" and '"channel": "rest"' in granted[0][3] and "batch" in granted[0][3]


@pytest.mark.parametrize("method, path, body, code, needle", [
    ("post", "/api/approvals/requests/apr_missing/approve", None, 404, "not found"),
    ("post", "/api/approvals/requests/apr_missing/reject", {"comment": "x", "extra": 1}, 422, "extra"),
    ("post", "/api/approvals/requests/apr_missing/approve", {"comment": "x" * 2001}, 422, "comment"),
    ("post", "/api/approvals/requests/bulk-approve", {"request_ids": []}, 422, "request_ids"),
    ("post", "/api/approvals/requests/bulk-reject", {}, 422, "request_ids"),
    ("get", "/api/approvals/requests?status=maybe", None, 422, "status"),
    ("get", "/api/approvals/requests?limit=0", None, 422, "limit"),
    ("get", "/api/approvals/requests/job/job-missing", None, 404, "no approval request"),
])
def test_bad_input(shared_stack, method, path, body, code, needle):
    stack = shared_stack
    kwargs = {"json": body} if body is not None else {}
    answer = getattr(stack.client, method)(path, **kwargs)
    assert answer.status_code == code and needle in answer.json()["detail"], answer.text


def test_admins_skip_approval_and_exempt_levels_skip_their_rule(gated):
    stack = gated
    admin_job = stack.submit(config_name="gated-a", target="local")["job_id"]
    stack.wait_job(admin_job, "completed", timeout=60)  # job.bypass.approval
    rules = stack.expect(stack.client.get("/api/approvals/rules"), 200)["rules"]
    stack.expect(stack.client.patch(f"/api/approvals/rules/{rules[0]['id']}", json={"exempt_levels": ["researcher"]}),
                 200)
    job = stack.expect(bearer_for(stack, "rae").post("/api/queue/submit",
                                                    json={"config_name": "gated-a", "target": "local"}), 201)
    stack.wait_job(job["job_id"], "completed", timeout=60)
    assert stack.client.get(f"/api/approvals/requests/job/{job['job_id']}").status_code == 404


def test_queue_routes_decide_with_queue_approve_and_the_audit_log_needs_admin_audit(gated):
    """The seeds' POST /api/queue/{job_id}/approve|reject need queue.approve and go through the same
    checked decision; GET /api/audit needs admin.audit (a lead's, not a researcher's)."""
    stack = gated
    rae, lena = bearer_for(stack, "rae"), bearer_for(stack, "lena")
    a, b = pending(stack, rae), pending(stack, rae)
    refused = rae.post(f"/api/queue/{a['job_id']}/approve")
    assert refused.status_code == 403 and "queue.approve" in refused.json()["detail"], refused.text
    approved = stack.expect(lena.post(f"/api/queue/{a['job_id']}/approve", json={"comment": "from the queue"}), 200)
    assert (approved["status"], approved["decided_by"], approved["channel"]) == ("approved", "lena", "queue")
    rejected = stack.expect(lena.post(f"/api/queue/{b['job_id']}/reject", json={"reason": "not now"}), 200)
    assert rejected["status"] == "rejected" and rejected["comment"] == "not now"
    assert lena.post(f"/api/queue/{b['job_id']}/approve").status_code == 409
    assert lena.post("/api/queue/job-unknown/approve").status_code == 404
    stack.wait_job(a["job_id"], "completed", timeout=60)
    assert stack.wait_job(b["job_id"], "cancelled", timeout=30)["error"] == "rejected by lena: not now"

    assert rae.get("/api/audit").status_code == 403
    entries = stack.expect(lena.get("/api/audit", params={"action": "approval.granted"}), 200)
    assert entries["total"] >= 1 and entries["entries"][0]["target_id"] == a["id"]
    assert entries["entries"][0]["details"]["channel"] == "queue"


def test_my_approvals_and_expire_now(gated):
    """``GET /api/approvals/me`` for a submitter and an approver; ``POST /api/approvals/expire`` ends
    the listed requests at once and, without a body, the ones whose time is up."""
    stack = gated
    rae, lena = bearer_for(stack, "rae"), bearer_for(stack, "lena")
    a, b, c = pending(stack, rae), pending(stack, rae), pending(stack, rae)
    mine = stack.expect(rae.get("/api/approvals/me", params={"limit": 2}), 200)
    assert (mine["username"], mine["can_approve"], mine["my_pending"], mine["total"]) == ("rae", False, 3, 3)
    assert len(mine["requests"]) == 2 and mine["next_cursor"]
    rest = stack.expect(rae.get("/api/approvals/me", params={"limit": 2, "cursor": mine["next_cursor"]}), 200)
    assert {r["id"] for r in mine["requests"] + rest["requests"]} == {a["id"], b["id"], c["id"]}
    lead = stack.expect(lena.get("/api/approvals/me"), 200)
    assert (lead["can_approve"], lead["awaiting_my_decision"], lead["total"]) == (True, 3, 0)

    assert rae.post("/api/approvals/expire", json={"request_ids": [a["id"]]}).status_code == 403
    done = stack.expect(lena.post("/api/approvals/expire", json={"request_ids": [a["id"]], "comment": "stale"}), 200)
    assert (done["succeeded"], done["failed"]) == (1, 0), done
    job = stack.wait_job(a["job_id"], "cancelled", timeout=30)
    assert "expired early by lena: stale" in (job.get("error") or job.get("status_message") or str(job)), job
    assert stack.expect(rae.get(f"/api/approvals/requests/{a['id']}"), 200)["status"] == "expired"

    # A request whose time is up but still pending (its workflow's timer left it behind):
    assert stack.sql_write("UPDATE approvalrequest SET expires_at = :t WHERE id = :i",
                           t=datetime(2020, 1, 1, tzinfo=timezone.utc), i=b["id"]) == 1
    swept = stack.expect(lena.post("/api/approvals/expire"), 200)
    assert [r["request_id"] for r in swept["results"] if r["ok"]] == [b["id"]], swept
    stack.wait_job(b["job_id"], "cancelled", timeout=30)
    assert stack.expect(lena.get("/api/approvals/me"), 200)["awaiting_my_decision"] == 1  # c only
    assert stack.expect(lena.post("/api/approvals/expire"), 200) == {"results": [], "succeeded": 0, "failed": 0}


def test_quota_types_and_a_users_quotas(gated):
    stack = gated
    rae, ray = bearer_for(stack, "rae"), bearer_for(stack, "ray")
    types = stack.expect(rae.get("/api/quotas/types"), 200)
    assert [t["quota_type"] for t in types["types"]] == ["concurrent_jobs", "daily_jobs", "monthly_cost_usd",
                                                         "gpu_hours_monthly"]
    assert set(types["actions"]) == {"warn", "block", "notify"}
    rae_id = stack.expect(rae.get("/api/users/me"), 200)["id"]
    stack.expect(stack.client.post("/api/quotas", json={"scope": "user", "user_id": rae_id,
                                                        "quota_type": "daily_jobs", "limit": 7}), 201)
    seen = stack.expect(stack.client.get(f"/api/quotas/user/{rae_id}"), 200)
    assert seen["username"] == "rae" and [(q["quota_type"], q["limit"]) for q in seen["limits"]] == [("daily_jobs", 7)]
    assert stack.expect(rae.get(f"/api/quotas/user/{rae_id}"), 200) == stack.expect(rae.get("/api/quotas/me"), 200)
    assert ray.get(f"/api/quotas/user/{rae_id}").status_code == 403
    assert stack.client.get("/api/quotas/user/nobody").status_code == 404
