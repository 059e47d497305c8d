"""Organizations, teams, members and quotas over REST: the full walk (with /api/quotas/me), who may
see and change what, and clear answers to bad input."""

from __future__ import annotations

import pytest

from tests.e2e.test_users_and_auth import audit_rows, bearer_for, make_user

pytestmark = pytest.mark.e2e


def _quota(stack, path: str, code: int = 201, **body) -> dict:
    return stack.expect(stack.client.post(path, json=body), code)


def _me(client) -> dict:
    answer = client.get("/api/quotas/me")
    assert answer.status_code == 200, answer.text
    return {x["quota_type"]: x for x in answer.json()["limits"]} | {"_": answer.json()}


def test_orgs_teams_members_and_quotas_walk(stack):
    jsmith, lee = make_user(stack, "jsmith", "researcher"), make_user(stack, "lee", "lead")
    make_user(stack, "vic", "viewer")
    make_user(stack, "out", "researcher")
    js, le, vi, ou = (bearer_for(stack, n) for n in ("jsmith", "lee", "vic", "out"))
    assert _me(js)["_"] == {"user_id": jsmith["id"], "username": "jsmith", "levels": ["researcher"], "team": None,
                            "org": None, "limits": []}

    acme = stack.expect(stack.client.post("/api/orgs", json={"name": "Acme Corp", "slug": "acme"}), 201)
    assert (acme["slug"], acme["member_count"], acme["team_count"]) == ("acme", 0, 0)
    org = f"/api/orgs/{acme['id']}"
    ml = stack.expect(stack.client.post(f"{org}/teams", json={"name": "ML Research", "slug": "ml-research"}), 201)
    team = f"{org}/teams/{ml['id']}"
    added = stack.expect(stack.client.post(f"{team}/members", json={"username": "jsmith"}), 201)
    assert (added["user_id"], added["role"]) == (jsmith["id"], "member")
    stack.expect(stack.client.post(f"{team}/members", json={"user_id": lee["id"], "role": "lead"}), 201)
    stack.expect(stack.client.post(f"{org}/members", json={"username": "vic", "role": "admin"}), 201)
    role = stack.expect(stack.client.patch(f"{org}/members/{lee['id']}", json={"role": "admin"}), 200)["role"]
    assert role == "admin"
    role = stack.expect(stack.client.patch(f"{team}/members/{jsmith['id']}", json={"role": "lead"}), 200)["role"]
    assert role == "lead"
    members = stack.expect(stack.client.get(f"{org}/members"), 200)["members"]
    assert [(m["username"], m["role"]) for m in members] == [("jsmith", "member"), ("lee", "admin"), ("vic", "admin")]
    assert [(m["username"], m["role"]) for m in stack.expect(stack.client.get(f"{team}/members"), 200)["members"]] == \
        [("jsmith", "lead"), ("lee", "lead")]
    got = stack.expect(stack.client.get("/api/orgs/acme"), 200)  # by slug too
    assert (got["id"], got["member_count"], got["team_count"]) == (acme["id"], 3, 1)
    patched = stack.expect(stack.client.patch(org, json={"name": "Acme Inc", "description": "us"}), 200)
    assert (patched["name"], patched["slug"], patched["description"]) == ("Acme Inc", "acme", "us")
    assert stack.expect(stack.client.patch(team, json={"description": "NLP"}), 200)["member_count"] == 2
    assert [t["slug"] for t in stack.expect(stack.client.get(f"{org}/teams"), 200)["teams"]] == ["ml-research"]

    # visibility and permissions
    assert [o["slug"] for o in stack.expect(vi.get("/api/orgs"), 200)["orgs"]] == ["acme"]
    assert stack.expect(ou.get("/api/orgs"), 200)["orgs"] == []
    for path in (org, f"{org}/members", f"{org}/teams", team, f"{team}/members", f"{org}/quotas", f"{team}/quotas"):
        hidden = ou.get(path)
        assert hidden.status_code == 404 and "not found" in hidden.json()["detail"], (path, hidden.text)
        assert vi.get(path).status_code == 200, path
    assert js.post(f"{team}/members", json={"username": "out"}).status_code == 403  # researcher
    assert le.post(f"{org}/members", json={"username": "out"}).status_code == 403  # org members need org.create
    assert le.post(f"{org}/teams", json={"name": "x", "slug": "x"}).status_code == 403
    assert stack.expect(le.post(f"{team}/members", json={"username": "out"}), 201)["role"] == "member"
    assert [o["slug"] for o in stack.expect(ou.get("/api/orgs"), 200)["orgs"]] == ["acme"]  # joined via the team
    stack.expect(le.delete(f"{team}/members/{make_user(stack, 'tmp', 'viewer')['id']}"), 404)

    # quotas at every scope
    org_q = _quota(stack, f"{org}/quotas", quota_type="concurrent_jobs", limit_value=100)  # the guide's spelling
    assert (org_q["scope"], org_q["scope_name"], org_q["limit"], org_q["action"]) == ("org", "acme", 100, "block")
    team_q = _quota(stack, f"{team}/quotas", quota_type="concurrent_jobs", limit=20)
    user_q = _quota(stack, "/api/quotas", scope="user", username="jsmith", quota_type="concurrent_jobs", limit=50)
    _quota(stack, "/api/quotas", scope="level", level="researcher", quota_type="daily_jobs", limit=10, action="warn")
    daily = _quota(stack, "/api/quotas", scope="user", user_id=jsmith["id"], quota_type="daily_jobs", limit=5)
    _quota(stack, f"{team}/quotas", quota_type="monthly_cost_usd", limit=250.5, action="notify")
    again = _quota(stack, f"{team}/quotas", 200, quota_type="concurrent_jobs", limit=15)  # upsert
    assert (again["id"], again["limit"]) == (team_q["id"], 15)
    assert [q["quota_type"] for q in stack.expect(vi.get(f"{team}/quotas"), 200)["quotas"]] == \
        ["concurrent_jobs", "monthly_cost_usd"]
    assert len(stack.expect(stack.client.get("/api/quotas"), 200)["quotas"]) == 6
    assert [q["id"] for q in stack.expect(stack.client.get("/api/quotas?scope=org"), 200)["quotas"]] == [org_q["id"]]
    assert le.get("/api/quotas").status_code == 403
    assert le.post(f"{org}/quotas", json={"quota_type": "daily_jobs", "limit": 1}).status_code == 403

    me = _me(js)
    assert (me["_"]["team"], me["_"]["org"]) == ("ml-research", "acme")
    pick = lambda x: (x["limit"], x["source"], x["action"], x["usage"], x["remaining"])  # noqa: E731
    assert pick(me["concurrent_jobs"]) == (15, "team ml-research", "block", 0, 15)
    assert pick(me["daily_jobs"]) == (5, "user jsmith", "block", 0, 5)
    assert pick(me["monthly_cost_usd"]) == (250.5, "team ml-research", "notify", 0.0, 250.5)
    stack.put_config("quota-cfg", steps=1)
    stack.expect(js.post("/api/queue/submit", json={"config_name": "quota-cfg", "target": "local"}), 201)
    assert pick(_me(js)["daily_jobs"]) == (5, "user jsmith", "block", 1, 4)
    stack.expect(stack.client.delete(f"/api/quotas/{daily['id']}"), 200)
    assert pick(_me(js)["daily_jobs"]) == (10, "level researcher", "warn", 1, 9)
    assert _me(le)["concurrent_jobs"]["source"] == "team ml-research"  # the lead's own quota: none
    stack.expect(stack.client.delete(f"/api/quotas/{user_q['id']}"), 200)
    assert stack.client.delete(f"/api/quotas/{user_q['id']}").status_code == 404

    # removals and cascades
    stack.expect(stack.client.delete(f"{team}/members/{lee['id']}"), 200)
    stack.expect(stack.client.delete(f"{org}/members/{jsmith['id']}"), 200)  # leaves the team too
    assert [m["username"] for m in stack.expect(stack.client.get(f"{team}/members"), 200)["members"]] == ["out"]
    assert _me(js)["_"]["team"] is None
    stack.expect(stack.client.delete(team), 200)
    assert stack.client.get(team).status_code == 404
    assert [q["scope"] for q in stack.expect(stack.client.get("/api/quotas"), 200)["quotas"]] == ["level", "org"]
    stack.expect(stack.client.delete(org), 200)
    assert stack.client.get(org).status_code == 404 and stack.expect(stack.client.get("/api/orgs"), 200)["orgs"] == []
    assert [q["scope"] for q in stack.expect(stack.client.get("/api/quotas"), 200)["quotas"]] == ["level"]
    for action in ("org.created", "org.updated", "org.member_added", "org.member_updated", "org.member_removed",
                   "team.created", "team.updated", "team.member_added", "team.member_updated", "team.member_removed",
                   "team.deleted", "quota.set", "quota.deleted", "org.deleted"):
        assert audit_rows(stack, action), action
    assert [a for a, t, _, _ in audit_rows(stack, "org.deleted")] == ["admin"]


@pytest.fixture(scope="module")
def acme(shared_stack) -> dict[str, str]:
    stack = shared_stack
    org = stack.expect(stack.client.post("/api/orgs", json={"name": "Acme", "slug": "acme"}), 201)
    other = stack.expect(stack.client.post("/api/orgs", json={"name": "Other", "slug": "other"}), 201)
    team = stack.expect(stack.client.post(f"/api/orgs/{org['id']}/teams", json={"name": "NLP", "slug": "nlp"}), 201)
    stack.expect(stack.client.post(f"/api/orgs/{org['id']}/quotas", json={"quota_type": "concurrent_jobs",
                                                                          "limit": 10}), 201)
    return {"org": org["id"], "other": other["id"], "team": team["id"]}


ORG_Q, TEAM_Q = "/api/orgs/{org}/quotas", "/api/orgs/{org}/teams/{team}/quotas"
DAILY = {"quota_type": "daily_jobs", "limit": 5}


@pytest.mark.parametrize("path, body, status, needle", [
    (ORG_Q, {**DAILY, "limit": -1}, 422, "limit: Input should be greater than or equal to 0"),
    (ORG_Q, {**DAILY, "limit": "lots"}, 422, "limit: Value error, must be a number, not a string"),
    (ORG_Q, {**DAILY, "limit": True}, 422, "limit must be a number"),
    (ORG_Q, {**DAILY, "limit": None}, 422, "limit must be a number"),
    (ORG_Q, {"quota_type": "concurrent_jobs", "limit": 2.5}, 422, "whole number of jobs for concurrent_jobs"),
    (ORG_Q, {"quota_type": "gpu_count", "limit": 1}, 422, "unknown quota type 'gpu_count'; one of concurrent_jobs"),
    (ORG_Q, {**DAILY, "action": "explode"}, 422, "unknown action 'explode'; one of warn, block, notify"),
    (ORG_Q, {**DAILY, "colour": "red"}, 422, "colour"),
    (ORG_Q, {"quota_type": "daily_jobs"}, 422, "limit: Field required"),
    ("/api/orgs/org_nope/quotas", DAILY, 404, "organization 'org_nope' not found"),
    ("/api/orgs/{org}/teams/team_nope/quotas", DAILY, 404, "team 'team_nope' not found in organization 'acme'"),
    ("/api/orgs/{other}/teams/{team}/quotas", DAILY, 404, "not found in organization 'other'"),
    (TEAM_Q, {"quota_type": "concurrent_jobs", "limit": 11}, 400,
     "'nlp' concurrent_jobs quota of 11 exceeds the ceiling of organization 'acme': 10"),
    ("/api/quotas", {**DAILY, "scope": "user", "username": "ghost"}, 404, "user 'ghost' not found"),
    ("/api/quotas", {**DAILY, "scope": "user", "user_id": "u_ghost"}, 404, "user 'u_ghost' not found"),
    ("/api/quotas", {**DAILY, "scope": "user"}, 422, "exactly one of user_id and username"),
    ("/api/quotas", {**DAILY, "scope": "level", "level": "boss"}, 422, "a level quota needs level"),
    ("/api/quotas", {**DAILY, "scope": "org"}, 422, "scope: Input should be 'user' or 'level'"),
    ("/api/orgs", {"name": "X", "slug": "Bad Slug"}, 422, "invalid slug 'Bad Slug'"),
    ("/api/orgs", {"name": "X", "slug": "-x"}, 422, "invalid slug '-x'"),
    ("/api/orgs", {"name": "", "slug": "x"}, 422, "name"),
    ("/api/orgs", {"name": "X" * 201, "slug": "x"}, 422, "at most 200 characters"),
    ("/api/orgs", {"name": "Again", "slug": "acme"}, 409, "an organization with slug 'acme' already exists"),
    ("/api/orgs/{org}/teams", {"name": "Again", "slug": "nlp"}, 409, "'acme' already has a team with slug 'nlp'"),
    ("/api/orgs/org_nope/teams", {"name": "T", "slug": "t"}, 404, "organization 'org_nope' not found"),
    ("/api/orgs/{org}/members", {"username": "ghost"}, 404, "user 'ghost' not found"),
    ("/api/orgs/{org}/members", {"username": "admin", "role": "owner"}, 422,
     "unknown role 'owner'; one of member, admin"),
    ("/api/orgs/{org}/teams/{team}/members", {"user_id": "u_ghost"}, 404, "user 'u_ghost' not found"),
    ("/api/orgs/{org}/teams/{team}/members", {}, 422, "exactly one of user_id and username"),
])
def test_bad_input_is_refused_clearly(shared_stack, acme, path, body, status, needle):
    stack = shared_stack
    before = stack.expect(stack.client.get("/api/quotas"), 200)["quotas"]
    orgs_before = stack.expect(stack.client.get("/api/orgs"), 200)["orgs"]
    answer = stack.client.post(path.format(**acme), json=body)
    assert answer.status_code == status, answer.text
    detail = answer.json()["detail"]
    assert isinstance(detail, str) and needle in detail, answer.text
    assert stack.expect(stack.client.get("/api/quotas"), 200)["quotas"] == before
    assert stack.expect(stack.client.get("/api/orgs"), 200)["orgs"] == orgs_before


def test_unknown_targets_of_member_and_team_routes(shared_stack, acme):
    stack = shared_stack
    org, team = f"/api/orgs/{acme['org']}", f"/api/orgs/{acme['org']}/teams/{acme['team']}"
    for method, path, body, needle in [
        ("PATCH", f"{org}/members/u_ghost", {"role": "admin"}, "user 'u_ghost' not found"),
        ("PATCH", f"{org}/members/admin", {"role": "admin"}, "'admin' is not a member of organization 'acme'"),
        ("DELETE", f"{team}/members/admin", None, "'admin' is not a member of team 'nlp'"),
        ("GET", f"/api/orgs/{acme['other']}/teams/{acme['team']}", None, "not found in organization 'other'"),
        ("DELETE", "/api/orgs/org_nope", None, "organization 'org_nope' not found"),
        ("PATCH", f"{org}/teams/team_nope", {"name": "x"}, "team 'team_nope' not found"),
        ("DELETE", "/api/quotas/q_nope", None, "quota 'q_nope' not found"),
    ]:
        answer = stack.client.request(method, path, json=body)
        assert answer.status_code == 404 and needle in answer.json()["detail"], (method, path, answer.text)
    answer = stack.client.patch(org, json={"slug": "other"})
    assert answer.status_code == 409 and "'other' already exists" in answer.json()["detail"], answer.text
    answer = stack.client.patch(org, json={"name": None})
    assert answer.status_code == 422 and "name must not be null" in answer.json()["detail"], answer.text
