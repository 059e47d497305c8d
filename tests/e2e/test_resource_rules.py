"""Resource rules: allow/deny globs per level, most permissive wins, enforced at submission."""

from __future__ import annotations

import pytest

from tests.e2e.test_users_and_auth import bearer_for, make_user

pytestmark = pytest.mark.e2e


def rule(stack, level, resource_type, pattern, action):
    made = stack.client.post("/api/users/resource-rules", json={"level": level, "resource_type": resource_type,
                                                                 "pattern": pattern, "action": action})
    return stack.expect(made, 201)


def test_team_isolation_and_hardware_restriction(stack):
    make_user(stack, "rae", "researcher")
    rae = bearer_for(stack, "rae")
    allow = rule(stack, "researcher", "config", "team-x-*", "allow")
    deny = rule(stack, "researcher", "config", "*", "deny")
    rule(stack, "researcher", "hardware", "gpu-t4*", "allow")
    hw_deny = rule(stack, "researcher", "hardware", "*", "deny")
    stack.client.put("/api/configs/team-x-small", json={"command": ["true"], "hardware_type": "gpu-t4"})
    stack.client.put("/api/configs/team-x-big", json={"command": ["true"], "hardware_type": "gpu-a100-80gb"})
    stack.client.put("/api/configs/prod-run", json={"command": ["true"], "hardware_type": "gpu-t4"})
    jobs_before = stack.job_count()

    ok = rae.post("/api/queue/submit", json={"config_name": "team-x-small", "target": "local"})
    assert ok.status_code == 201, ok.text
    refused = rae.post("/api/queue/submit", json={"config_name": "prod-run", "target": "local"})
    assert refused.status_code == 403 and deny["id"] in refused.json()["detail"], refused.text
    refused = rae.post("/api/queue/submit", json={"config_name": "team-x-big", "target": "local"})
    assert refused.status_code == 403 and hw_deny["id"] in refused.json()["detail"], refused.text
    assert stack.job_count() == jobs_before + 1  # refused submissions wrote nothing
    # other levels are untouched by researcher rules
    assert stack.client.post("/api/queue/submit", json={"config_name": "prod-run", "target": "local"}).status_code == 201
    # removing the allow rule leaves only the deny: the team config is refused too
    stack.expect(stack.client.delete(f"/api/users/resource-rules/{allow['id']}"), 200)
    assert rae.post("/api/queue/submit", json={"config_name": "team-x-small", "target": "local"}).status_code == 403


@pytest.mark.parametrize("body, needle", [
    ({"level": "wizard", "resource_type": "config", "pattern": "*", "action": "deny"}, "unknown level"),
    ({"level": "viewer", "resource_type": "gpu", "pattern": "*", "action": "deny"}, "resource_type"),
    ({"level": "viewer", "resource_type": "config", "pattern": "*", "action": "maybe"}, "action"),
    ({"level": "viewer", "resource_type": "config", "pattern": "", "action": "deny"}, "pattern"),
])
def test_bad_rules_are_refused(shared_stack, body, needle):
    stack = shared_stack
    answer = stack.client.post("/api/users/resource-rules", json=body)
    assert answer.status_code == 422 and needle in answer.json()["detail"], answer.text
    assert stack.client.get("/api/users/resource-rules").json()["rules"] == []
