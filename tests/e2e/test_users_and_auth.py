"""Accounts, login sessions, API keys, overrides and own-vs-all, against a real API process."""

from __future__ import annotations

import sqlite3

import httpx
import pytest

pytestmark = pytest.mark.e2e


def make_user(stack, name: str, level: str, password: str = "Sturdy-Passw0rd-9") -> dict:
    made = stack.client.post("/api/users", json={"username": name, "email": f"{name}@corp.test",
                                                 "password": password, "level_names": [level]})
    return stack.expect(made, 201)


def bearer_for(stack, name: str, password: str = "Sturdy-Passw0rd-9") -> httpx.Client:
    browser = httpx.Client(base_url=stack.api_url, trust_env=False, timeout=15)
    login = browser.post("/api/auth/login", json={"username": name, "password": password})
    assert login.status_code == 200, login.text
    key = browser.post("/api/auth/api-keys", json={"name": "t"},
                       headers={"X-CSRF-Token": login.json()["csrf_token"]}).json()["key"]
    browser.close()
    return httpx.Client(base_url=stack.api_url, trust_env=False, timeout=15,
                        headers={"Authorization": f"Bearer {key}"})


def audit_rows(stack, action: str) -> list[tuple]:
    with sqlite3.connect(stack.data_dir / "simpletuner.db") as db:
        return db.execute("SELECT actor, target_id, ip, details FROM auditentry WHERE action = ?", (action,)).fetchall()


@pytest.mark.parametrize("body, status, needle", [
    ({"username": "admin", "password": "Another-Passw0rd"}, 409, "username 'admin' is taken"),
    ({"username": "x1", "password": "short"}, 422, "at least 10 characters"),
    ({"username": "x2", "password": "aaaaaaaaaaaa"}, 422, "too easy"),
    ({"username": "x3"}, 422, "password: required"),
    ({"username": "x4", "password": "Good-Passw0rd-1", "level_names": ["wizard"]}, 422, "unknown level 'wizard'"),
    ({"username": "x5", "password": "Good-Passw0rd-1", "email": "not-an-email"}, 422, "email"),
    ({"username": "x6", "password": "Good-Passw0rd-1", "role": "admin"}, 422, "role"),
    ({"username": "x y", "password": "Good-Passw0rd-1"}, 422, "username"),
    ({"username": "x7", "password": "has-x7-inside-it"}, 422, "must not contain the username"),
])
def test_bad_user_input_writes_nothing(shared_stack, body, status, needle):
    stack = shared_stack
    before = len(stack.client.get("/api/users").json()["users"])
    answer = stack.client.post("/api/users", json=body)
    assert answer.status_code == status and needle in answer.json()["detail"], answer.text
    assert len(stack.client.get("/api/users").json()["users"]) == before


def test_duplicate_email_unknown_permission_and_level_names(stack):
    user = make_user(stack, "dupe", "viewer")
    again = stack.client.post("/api/users", json={"username": "dupe2", "email": "dupe@corp.test",
                                                  "password": "Sturdy-Passw0rd-9"})
    assert again.status_code == 409 and "email" in again.json()["detail"]
    bad = stack.client.post(f"/api/users/{user['id']}/permissions", json={"permission_name": "job.fly", "granted": True})
    assert bad.status_code == 422 and "unknown permission 'job.fly'" in bad.json()["detail"]
    bad = stack.client.post(f"/api/users/{user['id']}/levels", json={"level_name": "overlord"})
    assert bad.status_code == 422 and "overlord" in bad.json()["detail"]
    assert stack.client.get("/api/users/u_nope").status_code == 404


def test_session_login_csrf_logout_and_audit(stack):
    make_user(stack, "sam", "researcher")
    browser = httpx.Client(base_url=stack.api_url, trust_env=False, timeout=15)
    login = browser.post("/api/auth/login", json={"username": "sam", "password": "Sturdy-Passw0rd-9"})
    assert login.status_code == 200 and "st_session" in login.cookies
    assert "httponly" in login.headers["set-cookie"].lower()
    me = browser.get("/api/users/me").json()
    assert me["username"] == "sam" and me["auth_method"] == "session" and "job.submit" in me["permissions"]
    assert browser.post("/api/auth/api-keys", json={"name": "k"}).status_code == 403  # no CSRF header
    assert browser.post("/api/auth/logout", headers={"X-CSRF-Token": login.json()["csrf_token"]}).status_code == 200
    assert browser.get("/api/users/me").status_code == 401
    assert [r[0] for r in audit_rows(stack, "auth.login")] == ["sam"]
    assert audit_rows(stack, "auth.login")[0][2] == "127.0.0.1"


def test_wrong_passwords_are_rate_limited_per_account(stack):
    make_user(stack, "rita", "viewer")
    anon = stack.anon
    for _ in range(5):
        assert anon.post("/api/auth/login", json={"username": "rita", "password": "wrong-password-1"}).status_code == 401
    limited = anon.post("/api/auth/login", json={"username": "rita", "password": "Sturdy-Passw0rd-9"})
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    assert len(audit_rows(stack, "auth.login_failure")) == 5
    unknown = anon.post("/api/auth/login", json={"username": "ghost", "password": "wrong-password-1"})
    assert unknown.status_code == 401 and unknown.json()["detail"] == "invalid username or password"


def test_overrides_add_and_remove_permissions(stack):
    user = make_user(stack, "olga", "researcher")
    olga = bearer_for(stack, "olga")
    assert olga.get("/api/configs").status_code == 200
    stack.expect(stack.client.post(f"/api/users/{user['id']}/permissions",
                                   json={"permission_name": "config.view", "granted": False}), 200)
    assert olga.get("/api/configs").status_code == 403
    assert olga.get("/api/admin/workers").status_code == 403
    stack.expect(stack.client.post(f"/api/users/{user['id']}/permissions",
                                   json={"permission_name": "admin.workers", "granted": True}), 200)
    assert olga.get("/api/admin/workers").status_code == 200
    stack.expect(stack.client.delete(f"/api/users/{user['id']}/permissions/config.view"), 200)
    assert olga.get("/api/configs").status_code == 200
    assert [r[1] for r in audit_rows(stack, "user.permission_denied")] == [user["id"]]


def test_researcher_sees_and_cancels_only_own_jobs_lead_sees_all(stack):
    make_user(stack, "rob", "researcher")
    make_user(stack, "lea", "lead")
    rob, lea = bearer_for(stack, "rob"), bearer_for(stack, "lea")
    stack.put_config("own", steps=1)
    mine = stack.expect(rob.post("/api/queue/submit", json={"config_name": "own", "target": "local"}), 201)["job_id"]
    theirs = stack.submit(config_name="own", target="local")["job_id"]
    assert [j["job_id"] for j in rob.get("/api/cloud/jobs").json()["jobs"]] == [mine]
    assert rob.get(f"/api/cloud/jobs/{theirs}").status_code == 404
    assert rob.post(f"/api/cloud/jobs/{theirs}/cancel").status_code == 404
    assert {j["job_id"] for j in lea.get("/api/cloud/jobs").json()["jobs"]} == {mine, theirs}
    assert rob.post(f"/api/cloud/jobs/{mine}/cancel").status_code == 202
    assert stack.wait_job(mine, "cancelled")["owner"] == "rob"


def test_last_admin_and_self_protection(stack):
    me = stack.client.get("/api/users/me").json()
    assert stack.client.post(f"/api/users/{me['id']}/deactivate").status_code == 409
    assert stack.client.delete(f"/api/users/{me['id']}").status_code == 409
    other = make_user(stack, "ada", "admin")
    ada = bearer_for(stack, "ada")
    assert ada.post(f"/api/users/{me['id']}/deactivate").status_code == 200
    assert stack.client.get("/api/users/me").status_code == 401  # deactivated: its keys stop working
    assert ada.delete(f"/api/users/{other['id']}").status_code == 409  # not yourself
    assert ada.delete(f"/api/users/{me['id']}/levels/admin").status_code == 409  # a user keeps one level
    assert ada.post(f"/api/users/{me['id']}/levels", json={"level_name": "viewer"}).status_code == 200
    assert ada.delete(f"/api/users/{me['id']}/levels/admin").status_code == 200  # ada is still an admin
    assert ada.delete(f"/api/users/{other['id']}/levels/admin").status_code == 409  # last level of ada


def test_personal_keys_are_listed_without_secrets_and_revocable(stack):
    make_user(stack, "kim", "viewer")
    kim = bearer_for(stack, "kim")
    made = stack.expect(kim.post("/api/auth/api-keys", json={"name": "ci", "expires_in_days": 30}), 201)
    listed = kim.get("/api/auth/api-keys").json()["api_keys"]
    assert {k["name"] for k in listed} == {"t", "ci"} and all("key" not in k for k in listed)
    assert next(k for k in listed if k["name"] == "ci")["expires_at"]
    ci = httpx.Client(base_url=stack.api_url, trust_env=False, headers={"Authorization": f"Bearer {made['key']}"})
    assert ci.get("/api/users/me").status_code == 200
    assert kim.delete(f"/api/auth/api-keys/{made['id']}").status_code == 200
    assert ci.get("/api/users/me").status_code == 401
    assert [r[1] for r in audit_rows(stack, "api_key.revoked")] == [made["id"]]
    assert kim.post("/api/auth/api-keys", json={"name": "x", "expires_in_days": 0}).status_code == 422


def test_bearer_login_needs_no_cookie_or_csrf_and_logout_ends_it(stack):
    make_user(stack, "bea", "researcher")
    login = stack.anon.post("/api/auth/login", json={"username": "bea", "password": "Sturdy-Passw0rd-9",
                                                     "mode": "bearer"})
    assert login.status_code == 200 and "set-cookie" not in login.headers, login.text
    bea = httpx.Client(base_url=stack.api_url, trust_env=False,
                       headers={"Authorization": f"Bearer {login.json()['access_token']}"})
    assert bea.get("/api/users/me").json()["auth_method"] == "bearer_session"
    assert bea.post("/api/auth/api-keys", json={"name": "k"}).status_code == 201  # no CSRF header needed
    assert bea.post("/api/auth/logout").status_code == 200
    assert bea.get("/api/users/me").status_code == 401
    assert stack.anon.post("/api/auth/login", json={"username": "bea", "password": "Sturdy-Passw0rd-9",
                                                    "mode": "token"}).status_code == 422


def test_changing_ones_own_password_needs_the_current_one(stack_factory):
    stack = stack_factory(start=False)
    stack.start_api()  # accounts only: no worker host needed
    old, new, reset = "Sturdy-Passw0rd-9", "Fresher-Passw0rd-8", "Admin-Reset-Passw0rd-7"
    pia = make_user(stack, "pia", "researcher", old)
    browser = httpx.Client(base_url=stack.api_url, trust_env=False, timeout=15)
    csrf = {"X-CSRF-Token": stack.expect(browser.post("/api/auth/login", json={"username": "pia", "password": old}),
                                         200)["csrf_token"]}
    url = f"/api/users/{pia['id']}"
    missing = browser.patch(url, json={"password": new}, headers=csrf)
    assert missing.status_code == 422 and "current_password: required" in missing.json()["detail"], missing.text
    wrong = browser.patch(url, json={"password": new, "current_password": "Wrong-Passw0rd-1",
                                     "display_name": "Pia"}, headers=csrf)
    assert wrong.status_code == 403 and wrong.json()["detail"] == "current_password is wrong", wrong.text
    assert stack.client.get(url).json()["display_name"] is None  # nothing of the refused request was applied
    changed = browser.patch(url, json={"password": new, "current_password": old}, headers=csrf)
    assert changed.status_code == 200 and "current_password" not in changed.text, changed.text
    assert browser.get("/api/users/me").status_code == 401  # the change ends every session
    assert stack.anon.post("/api/auth/login", json={"username": "pia", "password": old}).status_code == 401
    assert stack.anon.post("/api/auth/login", json={"username": "pia", "password": new}).status_code == 200

    # an admin resetting someone else's password needs no current password; their own does
    stack.expect(stack.client.patch(url, json={"password": reset}), 200)
    assert stack.anon.post("/api/auth/login", json={"username": "pia", "password": reset}).status_code == 200
    me = stack.client.get("/api/users/me").json()
    own = stack.client.patch(f"/api/users/{me['id']}", json={"password": reset, "current_password": "x"})
    assert own.status_code == 409 and "no password yet" in own.json()["detail"], own.text  # the bootstrap admin
    failures = [r for r in audit_rows(stack, "auth.login_failure") if '"password_change"' in r[3]]
    assert [(r[0], r[2]) for r in failures] == [("pia", "127.0.0.1")]
