"""Approval rules over REST: CRUD with audit, validation answers, who may read and change rules."""

from __future__ import annotations

import json

import pytest

from tests.e2e.test_users_and_auth import audit_rows, bearer_for, make_user

pytestmark = pytest.mark.e2e

HIGH_COST = {"name": "high_cost", "condition": "cost_exceeds", "threshold": "50", "required_approver_level": "lead",
             "exempt_levels": ["admin"]}


def test_rule_crud(stack):
    conditions = stack.expect(stack.client.get("/api/approvals/conditions"), 200)["conditions"]
    assert [c["name"] for c in conditions] == ["cost_exceeds", "hardware_type", "daily_jobs_exceed", "first_job",
                                               "config_pattern", "provider"]
    made = stack.expect(stack.client.post("/api/approvals/rules", json=HIGH_COST), 201)
    assert {k: made[k] for k in HIGH_COST} == HIGH_COST
    assert (made["priority"], made["enabled"], made["applies_to_provider"], made["created_by"]) == \
        (0, True, None, "admin")
    gpu = stack.expect(stack.client.post("/api/approvals/rules", json={
        "name": "big_gpu", "condition": "hardware_type", "threshold": "a100*", "priority": 5, "enabled": False,
        "applies_to_level": "researcher", "description": "A100s need a lead"}), 201)

    listed = stack.expect(stack.client.get("/api/approvals/rules"), 200)["rules"]
    assert [r["name"] for r in listed] == ["big_gpu", "high_cost"]  # higher priority first
    assert [r["name"] for r in stack.expect(stack.client.get("/api/approvals/rules", params={"enabled": "true"}),
                                            200)["rules"]] == ["high_cost"]
    assert [r["name"] for r in stack.expect(stack.client.get("/api/approvals/rules?enabled=false"),
                                            200)["rules"]] == ["big_gpu"]
    assert stack.expect(stack.client.get(f"/api/approvals/rules/{made['id']}"), 200) == made

    patched = stack.expect(stack.client.patch(f"/api/approvals/rules/{made['id']}",
                                              json={"threshold": 75.5, "priority": 10}), 200)
    assert (patched["threshold"], patched["priority"], patched["name"]) == ("75.5", 10, "high_cost")
    assert patched["updated_at"] >= made["updated_at"]
    assert stack.expect(stack.client.get(f"/api/approvals/rules/{made['id']}"), 200)["threshold"] == "75.5"
    refused = stack.client.patch(f"/api/approvals/rules/{gpu['id']}", json={"condition": "cost_exceeds"})
    assert refused.status_code == 422 and "threshold must be a number" in refused.json()["detail"], refused.text
    assert stack.client.get(f"/api/approvals/rules/{gpu['id']}").json()["condition"] == "hardware_type"
    renamed = stack.client.patch(f"/api/approvals/rules/{gpu['id']}", json={"name": "high_cost"})
    assert renamed.status_code == 409 and "high_cost" in renamed.json()["detail"], renamed.text

    assert stack.expect(stack.client.delete(f"/api/approvals/rules/{gpu['id']}"), 200) == {"deleted": gpu["id"]}
    assert stack.client.get(f"/api/approvals/rules/{gpu['id']}").status_code == 404
    assert [r["name"] for r in stack.client.get("/api/approvals/rules").json()["rules"]] == ["high_cost"]

    created = audit_rows(stack, "approval_rule.created")
    assert [(actor, target) for actor, target, _, _ in created] == [("admin", made["id"]), ("admin", gpu["id"])]
    updated = audit_rows(stack, "approval_rule.updated")
    assert len(updated) == 1 and json.loads(updated[0][3])["changes"] == {"threshold": "75.5", "priority": 10}
    assert [target for _, target, _, _ in audit_rows(stack, "approval_rule.deleted")] == [gpu["id"]]


def test_duplicate_name_and_unknown_id(stack):
    stack.expect(stack.client.post("/api/approvals/rules", json=HIGH_COST), 201)
    again = stack.client.post("/api/approvals/rules", json={**HIGH_COST, "threshold": 10})
    assert again.status_code == 409 and "high_cost" in again.json()["detail"], again.text
    for call in (stack.client.get, stack.client.delete):
        missing = call("/api/approvals/rules/ar_nope")
        assert missing.status_code == 404 and "ar_nope" in missing.json()["detail"], missing.text
    missing = stack.client.patch("/api/approvals/rules/ar_nope", json={"enabled": False})
    assert missing.status_code == 404, missing.text
    assert len(stack.client.get("/api/approvals/rules").json()["rules"]) == 1


@pytest.mark.parametrize("change, needle", [
    ({"condition": "moon_phase"}, "unknown condition 'moon_phase'; one of cost_exceeds"),
    ({"threshold": "fifty"}, "threshold must be a number"),
    ({"threshold": None}, "threshold must be a number"),
    ({"condition": "daily_jobs_exceed", "threshold": "2.5"}, "whole number"),
    ({"condition": "hardware_type", "threshold": ""}, "non-empty glob"),
    ({"required_approver_level": "wizard"}, "unknown level 'wizard'"),
    ({"exempt_levels": ["admin", "boss"]}, "unknown level 'boss'"),
    ({"applies_to_level": "boss"}, "unknown level 'boss'"),
    ({"colour": "red"}, "colour"),
    ({"name": ""}, "name"),
    ({"priority": "high"}, "priority"),
])
def test_bad_rules_are_refused(shared_stack, change, needle):
    stack = shared_stack
    answer = stack.client.post("/api/approvals/rules", json={**HIGH_COST, **change})
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert isinstance(detail, str) and needle in detail, answer.text
    assert stack.client.get("/api/approvals/rules").json()["rules"] == []


def test_who_may_read_and_change_rules(stack):
    made = stack.expect(stack.client.post("/api/approvals/rules", json=HIGH_COST), 201)
    make_user(stack, "rae", "researcher")
    make_user(stack, "lee", "lead")
    rae, lee = bearer_for(stack, "rae"), bearer_for(stack, "lee")
    assert rae.get("/api/approvals/conditions").status_code == 200
    assert rae.post("/api/approvals/rules", json={**HIGH_COST, "name": "mine"}).status_code == 403
    assert rae.get("/api/approvals/rules").status_code == 403
    assert rae.get(f"/api/approvals/rules/{made['id']}").status_code == 403
    assert lee.get(f"/api/approvals/rules/{made['id']}").json()["name"] == "high_cost"
    assert [r["id"] for r in lee.get("/api/approvals/rules").json()["rules"]] == [made["id"]]
    assert lee.patch(f"/api/approvals/rules/{made['id']}", json={"enabled": False}).status_code == 403
    assert lee.delete(f"/api/approvals/rules/{made['id']}").status_code == 403
    assert stack.anon.get("/api/approvals/conditions").status_code == 401
    assert stack.client.get(f"/api/approvals/rules/{made['id']}").json()["enabled"] is True
