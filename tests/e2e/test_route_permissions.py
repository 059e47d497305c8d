"""Every route of the app, for every kind of caller, answers as the permission matrix says.

The route list comes from the app's own route table, so a new route without a policy entry here
fails this test. Allowed callers must not get 401/403 (nor a 500); denied ones get exactly the
refusal below; anonymous callers never get data.
"""

from __future__ import annotations

import itertools
import httpx
import pytest

from activities.settings import load_settings
from api.app import create_app

pytestmark = pytest.mark.e2e

# rule per route: "public", "login", "worker", "any" (any signed-in user), a permission name,
# "job.view" / "job.cancel" (own-vs-all on someone else's job: 404 when hidden),
# "config.edit" (someone else's config), "self-or-admin" (another user's account).
POLICY: dict[tuple[str, str], str] = {
    ("GET", "/api/cloud/health/live"): "public",
    ("GET", "/api/cloud/health/ready"): "public",
    ("GET", "/api/cloud/health"): "public",
    ("HEAD", "/api/cloud/health/live"): "public",
    ("HEAD", "/api/cloud/health/ready"): "public",
    ("HEAD", "/api/cloud/health"): "public",
    ("POST", "/api/auth/login"): "login",
    ("POST", "/api/auth/logout"): "any",
    ("GET", "/api/auth/api-keys"): "any",
    ("POST", "/api/auth/api-keys"): "any",
    ("DELETE", "/api/auth/api-keys/{key_id}"): "any",
    ("GET", "/api/users"): "admin.users",
    ("POST", "/api/users"): "admin.users",
    ("GET", "/api/users/me"): "any",
    ("GET", "/api/users/meta/levels"): "any",
    ("GET", "/api/users/meta/permissions"): "any",
    ("GET", "/api/users/{user_id}"): "self-or-admin",
    ("PATCH", "/api/users/{user_id}"): "self-or-admin",
    ("DELETE", "/api/users/{user_id}"): "admin.users",
    ("POST", "/api/users/{user_id}/activate"): "admin.users",
    ("POST", "/api/users/{user_id}/deactivate"): "admin.users",
    ("POST", "/api/users/{user_id}/levels"): "admin.users",
    ("DELETE", "/api/users/{user_id}/levels/{level_name}"): "admin.users",
    ("POST", "/api/users/{user_id}/permissions"): "admin.users",
    ("DELETE", "/api/users/{user_id}/permissions/{permission_name}"): "admin.users",
    ("GET", "/api/users/resource-rules"): "admin.users",
    ("POST", "/api/users/resource-rules"): "admin.users",
    ("GET", "/api/users/resource-rules/{rule_id}"): "admin.users",
    ("PUT", "/api/users/resource-rules/{rule_id}"): "admin.users",
    ("DELETE", "/api/users/resource-rules/{rule_id}"): "admin.users",
    ("GET", "/api/users/me/credentials"): "any",
    ("POST", "/api/users/me/credentials"): "any",
    ("POST", "/api/users/me/credentials/rotate"): "any",
    ("POST", "/api/users/me/credentials/validate"): "any",
    ("DELETE", "/api/users/me/credentials/{provider}/{credential_name}"): "any",
    ("POST", "/api/users/credentials/check-stale"): "admin.users",
    ("GET", "/api/users/{user_id}/credentials"): "admin.users",
    ("POST", "/api/users/{user_id}/credentials"): "admin.users",
    ("POST", "/api/users/{user_id}/credentials/rotate"): "admin.users",
    ("GET", "/api/users/{user_id}/credentials/stale"): "admin.users",
    ("DELETE", "/api/users/{user_id}/credentials/{provider}/{credential_name}"): "admin.users",
    ("GET", "/api/cloud/external-auth/providers"): "admin.users",
    ("POST", "/api/cloud/external-auth/providers"): "admin.users",
    ("GET", "/api/cloud/external-auth/providers/{name}"): "admin.users",
    ("PATCH", "/api/cloud/external-auth/providers/{name}"): "admin.users",
    ("DELETE", "/api/cloud/external-auth/providers/{name}"): "admin.users",
    ("POST", "/api/cloud/external-auth/providers/{name}/test"): "admin.users",
    ("GET", "/api/auth/external/providers"): "public",
    ("POST", "/api/auth/external/ldap/login"): "public",
    ("GET", "/api/auth/external/oidc/start"): "public",
    ("GET", "/api/auth/external/oidc/callback"): "public",
    ("GET", "/api/configs"): "config.view",
    ("GET", "/api/configs/{name}"): "config.view",
    ("PUT", "/api/configs/{name}"): "config.edit",
    ("DELETE", "/api/configs/{name}"): "config.edit",
    ("POST", "/api/queue/submit"): "job.submit",
    ("GET", "/api/cloud/jobs"): "job.view.own",
    ("GET", "/api/cloud/jobs/{job_id}"): "job.view",
    ("POST", "/api/cloud/jobs/{job_id}/cancel"): "job.cancel",
    ("GET", "/api/cloud/jobs/{job_id}/logs"): "job.view",
    ("GET", "/api/cloud/jobs/{job_id}/logs/stream"): "job.view",
    ("GET", "/api/cloud/jobs/{job_id}/outputs/{name}"): "job.view",
    ("GET", "/api/events/stream"): "any",
    ("GET", "/api/admin/workers"): "admin.workers",
    ("POST", "/api/admin/workers"): "admin.workers",
    ("POST", "/api/admin/workers/{worker_id}/drain"): "admin.workers",
    ("POST", "/api/admin/workers/{worker_id}/undrain"): "admin.workers",
    ("PATCH", "/api/admin/workers/{worker_id}"): "admin.workers",
    ("POST", "/api/workers/job/{job_id}/claim"): "worker",
    ("GET", "/api/audit"): "admin.audit",
    ("POST", "/api/queue/{job_id}/approve"): "queue.approve",
    ("POST", "/api/queue/{job_id}/reject"): "queue.approve",
    ("POST", "/api/admin/workers/{worker_id}/token"): "admin.workers",
    ("DELETE", "/api/admin/workers/{worker_id}"): "admin.workers",
    ("POST", "/api/workers/register"): "worker",
    ("POST", "/api/workers/heartbeat"): "worker",
    ("POST", "/api/workers/job/{job_id}/status"): "worker",
    ("PUT", "/api/workers/job/{job_id}/outputs/{name}"): "worker",
    ("POST", "/api/workers/disconnect"): "worker",
    ("GET", "/api/approvals/conditions"): "any",
    ("GET", "/api/approvals/rules"): "admin.approve",
    ("POST", "/api/approvals/rules"): "admin.config",
    ("GET", "/api/approvals/rules/{rule_id}"): "admin.approve",
    ("PATCH", "/api/approvals/rules/{rule_id}"): "admin.config",
    ("DELETE", "/api/approvals/rules/{rule_id}"): "admin.config",
    ("GET", "/api/approvals/requests"): "any",
    ("GET", "/api/approvals/requests/pending/count"): "any",
    ("GET", "/api/approvals/requests/job/{job_id}"): "any",
    ("GET", "/api/approvals/requests/{request_id}"): "any",
    ("POST", "/api/approvals/requests/{request_id}/approve"): "admin.approve",
    ("POST", "/api/approvals/requests/{request_id}/reject"): "admin.approve",
    ("POST", "/api/approvals/requests/{request_id}/cancel"): "job.cancel.own",
    ("POST", "/api/approvals/requests/bulk-approve"): "admin.approve",
    ("POST", "/api/approvals/requests/bulk-reject"): "admin.approve",
    ("GET", "/api/cloud/notifications/channels"): "admin.config",
    ("POST", "/api/cloud/notifications/channels"): "admin.config",
    ("GET", "/api/cloud/notifications/channels/{channel_id}"): "admin.config",
    ("PATCH", "/api/cloud/notifications/channels/{channel_id}"): "admin.config",
    ("DELETE", "/api/cloud/notifications/channels/{channel_id}"): "admin.config",
    ("POST", "/api/cloud/notifications/channels/{channel_id}/test"): "admin.config",
    ("GET", "/api/queue"): "any",
    ("GET", "/api/queue/me"): "any",
    ("GET", "/api/queue/stats"): "any",
    ("GET", "/api/queue/concurrency"): "any",
    ("POST", "/api/queue/concurrency"): "queue.manage",
    ("GET", "/api/queue/position/{job_id}"): "job.view",
    ("POST", "/api/queue/{job_id}/priority"): "queue.manage",
    ("POST", "/api/queue/{job_id}/cancel"): "job.cancel",
    ("GET", "/api/cloud/providers"): "any",
    ("POST", "/api/cloud/providers/{provider}/validate"): "admin.config",
    ("POST", "/api/cloud/{provider}/submit"): "job.submit",
    ("POST", "/api/cloud/jobs/submit"): "job.submit",
    ("POST", "/api/webhooks/{provider}"): "public",  # the provider's signature is the authentication
    ("GET", "/api/cloud/providers/{provider}/config"): "admin.config",
    ("PUT", "/api/cloud/providers/{provider}/config"): "admin.config",
    ("GET", "/api/cloud/metrics/cost-limit-status"): "job.view.all",
    ("GET", "/api/cloud/metrics/prometheus"): "admin.config",  # without credentials only via auth.bypass_paths
    ("GET", "/api/cloud/metrics/config"): "admin.config",
    ("PUT", "/api/cloud/metrics/config"): "admin.config",
    ("POST", "/api/cloud/metrics/config/apply-template/{template_id}"): "admin.config",
    ("GET", "/api/cloud/metrics/config/templates"): "admin.config",
    ("GET", "/api/cloud/metrics/config/categories"): "admin.config",
    ("GET", "/api/cloud/metrics/preview"): "admin.config",
    ("POST", "/api/cloud/metrics/config/preview"): "admin.config",
    ("POST", "/api/quotas/cost-estimate"): "any",
    ("GET", "/api/orgs"): "org.view",
    ("POST", "/api/orgs"): "org.create",
    ("GET", "/api/orgs/{org_id}"): "org.view",
    ("PATCH", "/api/orgs/{org_id}"): "org.create",
    ("DELETE", "/api/orgs/{org_id}"): "org.create",
    ("GET", "/api/orgs/{org_id}/members"): "org.view",
    ("POST", "/api/orgs/{org_id}/members"): "org.create",
    ("PATCH", "/api/orgs/{org_id}/members/{user_id}"): "org.create",
    ("DELETE", "/api/orgs/{org_id}/members/{user_id}"): "org.create",
    ("GET", "/api/orgs/{org_id}/teams"): "team.view",
    ("POST", "/api/orgs/{org_id}/teams"): "team.create",
    ("GET", "/api/orgs/{org_id}/teams/{team_id}"): "team.view",
    ("PATCH", "/api/orgs/{org_id}/teams/{team_id}"): "team.create",
    ("DELETE", "/api/orgs/{org_id}/teams/{team_id}"): "team.create",
    ("GET", "/api/orgs/{org_id}/teams/{team_id}/members"): "team.view",
    ("POST", "/api/orgs/{org_id}/teams/{team_id}/members"): "team.manage.members",
    ("PATCH", "/api/orgs/{org_id}/teams/{team_id}/members/{user_id}"): "team.manage.members",
    ("DELETE", "/api/orgs/{org_id}/teams/{team_id}/members/{user_id}"): "team.manage.members",
    ("GET", "/api/orgs/{org_id}/quotas"): "org.view",
    ("POST", "/api/orgs/{org_id}/quotas"): "admin.config",
    ("GET", "/api/orgs/{org_id}/teams/{team_id}/quotas"): "org.view",
    ("POST", "/api/orgs/{org_id}/teams/{team_id}/quotas"): "admin.config",
    ("GET", "/api/quotas"): "admin.config",
    ("POST", "/api/quotas"): "admin.config",
    ("GET", "/api/quotas/me"): "any",
    ("GET", "/api/quotas/types"): "any",
    ("GET", "/api/quotas/user/{user_id}"): "self-or-admin",
    ("GET", "/api/approvals/me"): "any",
    ("POST", "/api/approvals/expire"): "admin.approve",
    ("DELETE", "/api/quotas/{quota_id}"): "admin.config",
}
CALLERS = ("anonymous", "viewer", "researcher", "lead", "admin", "worker", "revoked")
_ids = itertools.count()


def app_routes() -> set[tuple[str, str]]:
    """The app's route table as FastAPI publishes it (every route is in the schema)."""
    schema = create_app(load_settings({})).openapi()
    return {(method.upper(), path) for path, ops in schema["paths"].items() for method in ops}


def test_every_route_has_a_policy():
    routes = app_routes()
    assert routes - POLICY.keys() == set(), "routes without a policy entry in this test"
    assert POLICY.keys() - routes == set(), "policy entries for routes that no longer exist"


def _login_key(stack, username: str, password: str) -> str:
    """Log in with a password (session cookie), then mint a personal API key using the CSRF token."""
    with httpx.Client(base_url=stack.api_url, trust_env=False, timeout=15) as browser:
        login = browser.post("/api/auth/login", json={"username": username, "password": password})
        assert login.status_code == 200, login.text
        csrf = login.json()["csrf_token"]
        refused = browser.post("/api/auth/api-keys", json={"name": "walk"})
        assert refused.status_code == 403 and "CSRF" in refused.json()["detail"], refused.text
        made = browser.post("/api/auth/api-keys", json={"name": "walk"}, headers={"X-CSRF-Token": csrf})
        assert made.status_code == 201, made.text
        return made.json()["key"]


@pytest.fixture(scope="module")
def callers(shared_stack):
    stack = shared_stack
    headers: dict[str, dict[str, str]] = {"anonymous": {}, "admin": {"Authorization": f"Bearer {stack.admin_token}"}}
    for level in ("viewer", "researcher", "lead"):
        password = f"{level}-Passw0rd-long"
        made = stack.client.post("/api/users", json={"username": f"{level}1", "email": f"{level}1@corp.test",
                                                     "password": password, "level_names": [level]})
        assert made.status_code == 201, made.text
        headers[level] = {"Authorization": f"Bearer {_login_key(stack, f'{level}1', password)}"}
    revoked = stack.client.post("/api/auth/api-keys", json={"name": "to-revoke"}).json()
    stack.expect(stack.client.delete(f"/api/auth/api-keys/{revoked['id']}"), 200)
    headers["revoked"] = {"Authorization": f"Bearer {revoked['key']}"}
    _, token = stack.create_worker("walker", {"pool": "walk"})
    headers["worker"] = {"X-Worker-Token": token}
    stack.put_config("walk-cfg", steps=1)
    return headers


def _fill(stack, path: str) -> tuple[str, dict]:
    """Fresh resources owned by the admin for each call, so destructive calls cannot affect others."""
    n = next(_ids)
    values: dict[str, str] = {}
    if "{job_id}" in path:
        values["job_id"] = stack.submit(config_name="walk-cfg", target="local")["job_id"]
    if "{name}" in path:
        values["name"] = "model.npz" if "outputs" in path else f"cfg-{n}"
        if "/api/configs/" in path:
            stack.put_config(values["name"], steps=1)
    if "{worker_id}" in path:
        values["worker_id"] = stack.create_worker(f"w-{n}", {"n": str(n)})[0]
    if "{user_id}" in path:
        made = stack.client.post("/api/users", json={"username": f"target{n}", "password": "Target-Passw0rd-x",
                                                     "level_names": ["researcher", "viewer"]})
        values["user_id"] = stack.expect(made, 201)["id"]
    if "{org_id}" in path or "{quota_id}" in path:
        _fill_org(stack, n, values)
    if "{rule_id}" in path and path.startswith("/api/approvals/"):
        made = stack.client.post("/api/approvals/rules", json={"name": f"walk-{n}", "condition": "config_pattern",
                                                                 "threshold": "no-such-*", "enabled": False})
        values["rule_id"] = stack.expect(made, 201)["id"]
    elif "{rule_id}" in path:
        made = stack.client.post("/api/users/resource-rules", json={"level": "viewer", "resource_type": "config",
                                                                     "pattern": f"p{n}-*", "action": "deny"})
        values["rule_id"] = stack.expect(made, 201)["id"]
    values.update(request_id="apr_unknown", channel_id="ch_unknown", key_id="k_unknown", level_name="viewer", permission_name="job.submit", provider="replicate",
                  credential_name="api_token", template_id="standard")
    body = {"POST /api/queue/submit": {"config_name": "walk-cfg", "target": "local"},
            "PUT /api/configs/{name}": {"command": ["true"]},
            "POST /api/users": {"username": f"new{n}", "password": "New-Passw0rd-xyz"},
            "POST /api/users/{user_id}/levels": {"level_name": "lead"},
            "POST /api/users/{user_id}/permissions": {"permission_name": "job.submit", "granted": True},
            "POST /api/auth/api-keys": {"name": f"k{n}"},
            "POST /api/admin/workers": {"name": f"new-w-{n}"},
            "POST /api/auth/login": {"username": f"nobody{n}", "password": "wrong-password-1"},
            "PATCH /api/users/{user_id}": {"display_name": "x"},
            "POST /api/users/resource-rules": {"level": "lead", "resource_type": "hardware", "pattern": "x*",
                                               "action": "allow"},
            "PUT /api/users/resource-rules/{rule_id}": {"level": "lead", "resource_type": "hardware", "pattern": "y*",
                                                        "action": "deny"},
            "POST /api/approvals/rules": {"name": f"new-rule-{n}", "condition": "config_pattern", "threshold": "x*",
                                          "enabled": False},
            "PATCH /api/approvals/rules/{rule_id}": {"enabled": False},
            "POST /api/queue/concurrency": {},
            "POST /api/queue/{job_id}/priority": {"priority": 50},
            "POST /api/workers/job/{job_id}/claim": {"attempt": 1},
            "PATCH /api/admin/workers/{worker_id}": {"labels": {"n": f"patched-{n}"}},
            "PUT /api/cloud/providers/{provider}/config": {"cost_limit_enabled": False},
            "POST /api/quotas/cost-estimate": {"config_name": "walk-cfg"},
            "POST /api/approvals/requests/bulk-approve": {"request_ids": ["apr_unknown"]},
            "POST /api/approvals/requests/bulk-reject": {"request_ids": ["apr_unknown"]},
            "POST /api/cloud/notifications/channels": {"channel_type": "email", "name": f"walk-{n}",
                                                       "smtp_host": "127.0.0.1", "smtp_port": 1,
                                                       "from_address": "walk@corp.test", "enabled": False},
            "PATCH /api/cloud/notifications/channels/{channel_id}": {"enabled": False},
            "POST /api/orgs": {"name": f"Walk {n}", "slug": f"walk-new-{n}"},
            "PATCH /api/orgs/{org_id}": {"description": "walked"},
            "POST /api/orgs/{org_id}/members": {"username": "viewer1"},
            "PATCH /api/orgs/{org_id}/members/{user_id}": {"role": "admin"},
            "POST /api/orgs/{org_id}/teams": {"name": f"Team {n}", "slug": f"team-{n}"},
            "PATCH /api/orgs/{org_id}/teams/{team_id}": {"description": "walked"},
            "POST /api/orgs/{org_id}/teams/{team_id}/members": {"username": "viewer1"},
            "PATCH /api/orgs/{org_id}/teams/{team_id}/members/{user_id}": {"role": "lead"},
            "POST /api/orgs/{org_id}/quotas": {"quota_type": "daily_jobs", "limit": 1000},
            "POST /api/orgs/{org_id}/teams/{team_id}/quotas": {"quota_type": "daily_jobs", "limit": 100},
            "POST /api/quotas": {"scope": "level", "level": "admin", "quota_type": "gpu_hours_monthly",
                                 "limit": 1_000_000, "action": "warn"}}
    return path.format(**values), body


def _fill_org(stack, n: int, values: dict[str, str]) -> None:
    """A fresh organization with a team (holding the ``{user_id}`` user, if any) and an org quota."""
    org = stack.expect(stack.client.post("/api/orgs", json={"name": f"Walk {n}", "slug": f"walk-{n}"}), 201)["id"]
    team = stack.expect(stack.client.post(f"/api/orgs/{org}/teams", json={"name": "T", "slug": "t"}), 201)["id"]
    values.update(org_id=org, team_id=team)
    if "user_id" in values:
        stack.expect(stack.client.post(f"/api/orgs/{org}/teams/{team}/members", json={"user_id": values["user_id"]}),
                     201)
    made = stack.client.post(f"/api/orgs/{org}/quotas", json={"quota_type": "daily_jobs", "limit": 1000})
    values["quota_id"] = stack.expect(made, 201)["id"]


def expected(rule: str, caller: str) -> str:
    """'ok' (neither 401 nor 403), or the exact status a refusal must have."""
    if rule == "public":
        return "ok"
    if rule == "login":
        return "401"  # wrong credentials for everyone: the route needs none of its own
    if rule == "worker":
        return "ok" if caller == "worker" else "401"
    if caller in ("anonymous", "revoked", "worker"):
        return "401"
    if rule in ("any", "job.view.own") or caller == "admin":
        return "ok"
    if rule == "self-or-admin":
        return "403"
    if rule == "job.view":
        return "ok" if caller == "lead" else "404"  # someone else's job does not exist for them
    if rule == "job.cancel":
        return "ok" if caller == "lead" else "404"
    if rule == "config.edit":
        return "ok" if caller == "lead" else "403"
    from activities.identity.permissions import LEVEL_GRANTS
    return "ok" if rule in LEVEL_GRANTS[caller] else "403"


@pytest.mark.parametrize("caller", CALLERS)  # one test per caller: they run in parallel
def test_every_route_for_every_caller(shared_stack, callers, caller):
    stack = shared_stack
    failures = []
    for (method, path), rule in sorted(POLICY.items()):
        url, bodies = _fill(stack, path)
        body = bodies.get(f"{method} {path}", {} if method in ("POST", "PUT", "PATCH") else None)
        with httpx.Client(base_url=stack.api_url, trust_env=False, timeout=15) as client:
            with client.stream(method, url, headers=callers[caller], json=body) as response:
                status = response.status_code
                payload = response.read() if not response.headers.get("content-type", "").startswith(
                    "text/event-stream") else b""
        want = expected(rule, caller)
        ok = status not in (401, 403) and status < 500 if want == "ok" else status == int(want)
        if caller == "anonymous" and rule not in ("public", "login") and status < 400:
            ok = False
        if not ok:
            failures.append(f"{caller:10} {method:6} {path}: got {status}, want {want} ({payload[:120]!r})")
    assert not failures, "\n".join(failures)
