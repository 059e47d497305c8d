"""Per-user provider credentials against a real API process: encrypted at rest, never answered,
per-user before global, admin-only across users, stale after 90 days, bad input writes nothing."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlmodel import Session, create_engine

from activities.secrets import credentials
from activities.secrets.credential_crypto import load_cipher

pytestmark = pytest.mark.e2e

PASSWORD = "Sturdy-Passw0rd-9"
GLOBAL_TOKEN = "r8_GLOBAL-org-token-5555aaaa"


def make_user(stack, name: str, level: str = "researcher") -> dict:
    return stack.expect(stack.client.post("/api/users", json={
        "username": name, "email": f"{name}@corp.test", "password": PASSWORD, "level_names": [level]}), 201)


def bearer_for(stack, name: str) -> httpx.Client:
    with httpx.Client(base_url=stack.api_url, trust_env=False, timeout=15) as browser:
        login = browser.post("/api/auth/login", json={"username": name, "password": PASSWORD})
        assert login.status_code == 200, login.text
        key = browser.post("/api/auth/api-keys", json={"name": "t"},
                           headers={"X-CSRF-Token": login.json()["csrf_token"]}).json()["key"]
    return httpx.Client(base_url=stack.api_url, trust_env=False, timeout=15, headers={"Authorization": f"Bearer {key}"})


def api_only(stack_factory, **env: str):
    stack = stack_factory(start=False, extra_env=env or None)
    stack.start_api()
    return stack


def db(stack) -> sqlite3.Connection:
    return sqlite3.connect(stack.data_dir / "simpletuner.db", timeout=30)


def rows(stack, sql: str, *args) -> list[tuple]:
    with db(stack) as conn:
        return conn.execute(sql, args).fetchall()


def credential_audit(stack) -> list[tuple]:
    return rows(stack, "SELECT action, actor, target_id, ip, details FROM auditentry "
                       "WHERE action LIKE 'credential.%' ORDER BY id")


def assert_nowhere_on_disk(stack, *secrets: str) -> None:
    """Not in the database (main file, WAL or shm) nor in any process log."""
    files = [p for p in stack.data_dir.glob("simpletuner.db*")] + list(stack.logs_dir.glob("*.log"))
    assert stack.data_dir / "simpletuner.db" in files
    for path in files:
        blob = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in blob, f"{secret!r} found in plain text in {path}"


def test_researcher_sets_lists_rotates_and_deletes_own(stack_factory):
    stack = api_only(stack_factory)
    me = make_user(stack, "rae")
    rae = bearer_for(stack, "rae")
    first, second, third = "r8_first-secret-value-AAAA1111", "r8_second-secret-value-BBBB2222", "r8_third-CCCC3333"
    assert rae.get("/api/users/me/credentials").json()["credentials"] == []
    body = {"provider": "replicate", "credential_name": "api_token", "value": first}
    made = stack.expect(rae.post("/api/users/me/credentials", json=body), 201)
    assert made["created"] is True and made["fingerprint"] == "1111" and made["stale"] is False
    replaced = stack.expect(rae.post("/api/users/me/credentials", json={**body, "value": second}), 200)
    assert replaced["created"] is False and replaced["fingerprint"] == "2222" and replaced["rotated_at"]
    listing = rae.get("/api/users/me/credentials")
    (item,) = listing.json()["credentials"]
    assert (item["provider"], item["credential_name"], item["age_days"], item["stale"]) == \
        ("replicate", "api_token", 0, False)
    assert {"created_at", "rotated_at", "fingerprint"} <= item.keys()
    assert "value" not in item and "ciphertext" not in item
    check = stack.expect(rae.post("/api/users/me/credentials/validate",
                                  json={"provider": "replicate", "credential_name": "api_token"}), 200)
    assert check["resolved"] is True and check["source"] == "user"

    rotated = stack.expect(rae.post("/api/users/me/credentials/rotate", json={**body, "value": third}), 200)
    assert rotated["fingerprint"] == "3333" and rotated["rotated_at"] >= replaced["rotated_at"]
    same = rae.post("/api/users/me/credentials/rotate", json={**body, "value": third})
    assert same.status_code == 422 and "value" in same.json()["detail"]
    missing = rae.post("/api/users/me/credentials/rotate", json={**body, "credential_name": "other"})
    assert missing.status_code == 404 and "replicate/other" in missing.json()["detail"]
    answers = [made, replaced, listing.json(), check, rotated, same.json(), missing.json()]
    for secret in (first, second, third):
        assert all(secret not in json.dumps(a) for a in answers)

    # At rest: only a Fernet token under <data_dir>/secret.key; no plain value on disk at all.
    key_file = stack.data_dir / "secret.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert_nowhere_on_disk(stack, first, second, third)
    (ciphertext,) = rows(stack, "SELECT ciphertext FROM providercredential WHERE user_id = ?", me["id"])[0]
    assert Fernet(key_file.read_bytes().strip()).decrypt(ciphertext.encode()).decode() == third

    assert rae.delete("/api/users/me/credentials/replicate/api_token").status_code == 204
    assert rae.delete("/api/users/me/credentials/replicate/api_token").status_code == 404
    assert rae.get("/api/users/me/credentials").json()["credentials"] == []
    audit = credential_audit(stack)
    assert [a[0] for a in audit] == ["credential.created", "credential.replaced", "credential.rotated",
                                     "credential.deleted"]
    assert all(a[1:4] == ("rae", me["id"], "127.0.0.1") for a in audit)
    assert all(json.loads(a[4]) == {"provider": "replicate", "credential_name": "api_token"} for a in audit)


def test_per_user_beats_global_and_falls_back_to_it(stack_factory):
    env_key = Fernet.generate_key().decode()
    stack = api_only(stack_factory, SIMPLETUNER_REPLICATE_API_TOKEN=GLOBAL_TOKEN, SIMPLETUNER_SECRET_KEY=env_key)
    ann = make_user(stack, "ann")
    make_user(stack, "ben")
    a, b = bearer_for(stack, "ann"), bearer_for(stack, "ben")
    ref = {"provider": "replicate", "credential_name": "api_token"}
    own = "r8_ann-own-token-0000dddd"
    stack.expect(a.post("/api/users/me/credentials", json={**ref, "value": own}), 201)
    assert a.post("/api/users/me/credentials/validate", json=ref).json()["source"] == "user"
    assert b.post("/api/users/me/credentials/validate", json=ref).json()["source"] == "global"
    nothing = b.post("/api/users/me/credentials/validate", json={**ref, "provider": "lambda"}).json()
    assert nothing["resolved"] is False and "SIMPLETUNER_LAMBDA_API_TOKEN" in nothing["detail"]
    # SIMPLETUNER_SECRET_KEY is the encryption key, not a credential anyone can resolve.
    assert b.post("/api/users/me/credentials/validate",
                  json={"provider": "secret", "credential_name": "key"}).json()["resolved"] is False

    # The values resolve() hands to a job, read with the key from the environment (no key file made).
    assert not (stack.data_dir / "secret.key").exists()
    cipher = load_cipher(stack.data_dir, env=stack.env)
    engine = create_engine(f"sqlite:///{stack.data_dir / 'simpletuner.db'}")
    with Session(engine) as session:
        assert credentials.resolve(session, ann["id"], "replicate", "api_token", cipher=cipher, env=stack.env,
                                   touch=False) == (own, "user")
    stack.expect(a.delete("/api/users/me/credentials/replicate/api_token"), 204)
    with Session(engine) as session:
        assert credentials.resolve(session, ann["id"], "replicate", "api_token", cipher=cipher,
                                   env=stack.env) == (GLOBAL_TOKEN, "global")
    engine.dispose()
    assert a.post("/api/users/me/credentials/validate", json=ref).json()["source"] == "global"
    assert_nowhere_on_disk(stack, own)


def test_others_credentials_are_admin_only_and_never_show_values(stack_factory):
    stack = api_only(stack_factory)
    owner, _ = make_user(stack, "own"), make_user(stack, "spy")
    own, spy = bearer_for(stack, "own"), bearer_for(stack, "spy")
    value = "hf_owner-secret-EEEE4444"
    stack.expect(own.post("/api/users/me/credentials",
                          json={"provider": "huggingface", "credential_name": "token", "value": value}), 201)
    base = f"/api/users/{owner['id']}/credentials"
    body = {"provider": "huggingface", "credential_name": "token", "value": "stolen-value-xyz"}
    for method, url, payload in [("GET", base, None), ("POST", base, body), ("POST", f"{base}/rotate", body),
                                 ("GET", f"{base}/stale", None), ("DELETE", f"{base}/huggingface/token", None),
                                 ("POST", "/api/users/credentials/check-stale", None)]:
        refused = spy.request(method, url, json=payload)
        assert refused.status_code == 403 and "admin.users" in refused.json()["detail"], (method, url, refused.text)
    assert [c["credential_name"] for c in own.get("/api/users/me/credentials").json()["credentials"]] == ["token"]

    listed = stack.client.get(base)
    assert listed.status_code == 200 and value not in listed.text
    assert [c["provider"] for c in listed.json()["credentials"]] == ["huggingface"]
    assert stack.client.get("/api/users/u_nope/credentials").status_code == 404
    assert stack.client.post("/api/users/u_nope/credentials", json=body).status_code == 404
    made = stack.expect(stack.client.post(base, json={**body, "credential_name": "admin_set"}), 201)
    assert made["user_id"] == owner["id"] and "stolen-value-xyz" not in json.dumps(made)
    assert stack.client.delete(f"{base}/huggingface/admin_set").status_code == 204
    assert [a[1:3] for a in credential_audit(stack)][-2:] == [("admin", owner["id"]), ("admin", owner["id"])]
    # Deleting the account takes its credentials with it.
    assert stack.client.delete(f"/api/users/{owner['id']}").status_code == 204
    assert rows(stack, "SELECT COUNT(*) FROM providercredential") == [(0,)]


def _age(stack, user_id: str, name: str, created_days: int, rotated_days: int | None = None) -> None:
    (created,) = rows(stack, "SELECT created_at FROM providercredential WHERE user_id = ? AND credential_name = ?",
                      user_id, name)[0]
    now = datetime.fromisoformat(created)
    shift = lambda days: None if days is None else (now - timedelta(days=days)).isoformat(sep=" ")  # noqa: E731
    with db(stack) as conn:
        conn.execute("UPDATE providercredential SET created_at = ?, rotated_at = ? WHERE user_id = ? AND "
                     "credential_name = ?", (shift(created_days), shift(rotated_days), user_id, name))


def test_credentials_older_than_90_days_are_stale(stack_factory):
    stack = api_only(stack_factory)
    user = make_user(stack, "old")
    old = bearer_for(stack, "old")
    for name in ("ancient", "refreshed", "fresh"):
        stack.expect(old.post("/api/users/me/credentials",
                              json={"provider": "replicate", "credential_name": name, "value": f"v-{name}-123456789"}),
                     201)
    _age(stack, user["id"], "ancient", 100)
    _age(stack, user["id"], "refreshed", 200, rotated_days=10)  # age counts from the last rotation
    by_name = {c["credential_name"]: c for c in old.get("/api/users/me/credentials").json()["credentials"]}
    assert (by_name["ancient"]["stale"], by_name["ancient"]["age_days"]) == (True, 100)
    assert (by_name["refreshed"]["stale"], by_name["refreshed"]["age_days"]) == (False, 10)
    assert by_name["fresh"]["stale"] is False
    stale = stack.expect(stack.client.get(f"/api/users/{user['id']}/credentials/stale"), 200)["credentials"]
    assert [c["credential_name"] for c in stale] == ["ancient"]
    checked = stack.expect(stack.client.post("/api/users/credentials/check-stale"), 200)
    assert checked["count"] == 1 and checked["stale_after_days"] == 90
    assert [(c["username"], c["credential_name"], c["stale"]) for c in checked["credentials"]] == \
        [("old", "ancient", True)]
    assert old.post("/api/users/me/credentials/validate",
                    json={"provider": "replicate", "credential_name": "ancient"}).json()["stale"] is True

    renewed = {"provider": "replicate", "credential_name": "ancient", "value": "v-new"}
    stack.expect(old.post("/api/users/me/credentials/rotate", json=renewed), 200)
    assert stack.client.post("/api/users/credentials/check-stale").json()["credentials"] == []


BAD_BODIES = [
    ({"provider": "replicate", "credential_name": "api_token", "value": ""}, "value"),
    ({"provider": "replicate", "credential_name": "api_token", "value": "   \n"}, "value"),
    ({"provider": "replicate", "credential_name": "api_token", "value": "x" * 4097}, "value"),
    ({"provider": "replicate", "credential_name": "api_token", "value": 12345}, "value"),
    ({"provider": "replicate", "credential_name": "api_token"}, "value"),
    ({"provider": "replicate", "credential_name": "api_token", "value": "ok-value", "owner": "x"}, "owner"),
    ({"provider": "Bad Provider", "credential_name": "api_token", "value": "ok-value"}, "provider"),
    ({"provider": "replicate", "credential_name": "../etc", "value": "ok-value"}, "credential_name"),
    ({"provider": "", "credential_name": "api_token", "value": "ok-value"}, "provider"),
]


def test_bad_inputs_are_refused_and_write_nothing(stack_factory):
    stack = api_only(stack_factory)
    make_user(stack, "bad")
    bad = bearer_for(stack, "bad")
    for url in ("/api/users/me/credentials", "/api/users/me/credentials/rotate"):
        for body, field in BAD_BODIES:
            answer = bad.post(url, json=body)
            assert answer.status_code == 422, (url, body, answer.text)
            assert field in answer.json()["detail"], (url, field, answer.text)
    answer = bad.post("/api/users/me/credentials/validate", json={"provider": "replicate"})
    assert answer.status_code == 422 and "credential_name" in answer.json()["detail"]
    answer = bad.delete("/api/users/me/credentials/Not%20A%20Slug/api_token")
    assert answer.status_code == 422 and answer.json()["detail"].startswith("provider:")
    malformed = bad.post("/api/users/me/credentials", content=b"{not json",
                         headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400
    exactly_max = {"provider": "replicate", "credential_name": "api_token", "value": "y" * 4096}
    assert rows(stack, "SELECT COUNT(*) FROM providercredential") == [(0,)]
    assert credential_audit(stack) == []
    stack.expect(bad.post("/api/users/me/credentials", json=exactly_max), 201)  # the limit itself is fine


def test_a_malformed_secret_key_stops_the_server_with_a_clear_message(stack_factory):
    bad_key = "definitely-not-a-fernet-key-0123"
    stack = stack_factory(start=False, extra_env={"SIMPLETUNER_SECRET_KEY": bad_key})
    api = stack.start_api(wait=False)
    assert api.wait_exit(45) != 0
    log = api.log_text()
    assert "SIMPLETUNER_SECRET_KEY: not a valid encryption key" in log, api.log_tail()
    assert bad_key not in log  # the value itself is never echoed
