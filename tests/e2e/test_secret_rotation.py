"""`simpletuner secrets rotate-key` as an operator runs it: secrets written under key A by a real API
process, the command run for real (a subprocess) with key B current and A previous, then only key B
configured: every secret still decrypts, through the services and through the API (an LDAP login
against a real slapd). A value no configured key opens makes the command fail in one line and change
nothing; unusable settings fail the same way.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet, InvalidToken
from sqlmodel import Session, create_engine

from activities.db.models_approvals import NotificationChannel
from activities.db.models_sso import ExternalAuthProvider
from activities.identity.sso import providers as sso
from activities.notify import channels
from activities.secrets import credentials
from activities.secrets.credential_crypto import load_cipher
from activities.settings import load_settings
from tests.e2e.stack import Stack
from tests.e2e.temporal_server import REPO_ROOT
from tests.e2e.test_sso import PROVIDERS, SVC_PW, ldap_login, ldap_provider, slapd  # noqa: F401
from tests.servers.ldap_server import SlapdServer

pytestmark = [pytest.mark.e2e, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

KEY_A, KEY_B, KEY_C = (Fernet.generate_key().decode() for _ in range(3))
CRED = "r8_rotation-credential-AAAA1111"
SMTP_PW, IMAP_PW, CLIENT_SECRET = "smtp-Rotation-Pw-1", "imap-Rotation-Pw-2", "oidc-rotation-client-secret"
CHANNELS = "/api/cloud/notifications/channels"
TABLES = ("providercredential", "notificationchannel", "externalauthprovider", "auditentry")


def rotate_key(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """The real command, as an operator runs it from the checkout."""
    return subprocess.run([sys.executable, "-m", "cli.main", "secrets", "rotate-key", *args], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=120)


def keys(stack: Stack, current: str, previous: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in stack.env.items() if k != "SIMPLETUNER_SECRET_KEY_PREVIOUS"}
    if previous:
        env["SIMPLETUNER_SECRET_KEY_PREVIOUS"] = previous
    return {**env, "SIMPLETUNER_SECRET_KEY": current}


def snapshot(stack: Stack) -> dict[str, list[tuple]]:
    with sqlite3.connect(stack.data_dir / "simpletuner.db") as db:
        return {t: db.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in TABLES}  # noqa: S608


def stored_tokens(stack: Stack) -> list[str]:
    """Every encrypted value in the database."""
    with sqlite3.connect(stack.data_dir / "simpletuner.db") as db:
        found = [r[0] for r in db.execute("SELECT ciphertext FROM providercredential")]
        found += [value for row in db.execute("SELECT smtp_password_encrypted, imap_password_encrypted "
                                              "FROM notificationchannel") for value in row]
        for (sealed,) in db.execute("SELECT encrypted_secrets FROM externalauthprovider"):
            found += list(json.loads(sealed).values())
    return found


def opens(key: str, token: str) -> bool:
    try:
        Fernet(key.encode()).decrypt(token.encode())
        return True
    except InvalidToken:
        return False


def counts(stdout: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in stdout.splitlines() if line.split(":")[0] in (
        "provider_credentials", "notification_channel_passwords", "sso_provider_secrets"))


def test_rotate_key_then_drop_the_old_key(stack_factory, slapd: SlapdServer):
    stack = stack_factory(start=False, extra_env={"SIMPLETUNER_SECRET_KEY": KEY_A})
    stack.start_api()
    rae = stack.expect(stack.client.post("/api/users", json={"username": "rae", "password": "Sturdy-Passw0rd-9",
                                                             "level_names": ["researcher"]}), 201)
    stack.expect(stack.client.post(f"/api/users/{rae['id']}/credentials", json={
        "provider": "replicate", "credential_name": "api_token", "value": CRED}), 201)
    stack.expect(stack.client.post(f"/api/users/{rae['id']}/credentials", json={
        "provider": "replicate", "credential_name": "other", "value": "r8_soon-unreadable-BBBB2222"}), 201)
    channel = stack.expect(stack.client.post(CHANNELS, json={
        "channel_type": "email", "name": "Primary", "smtp_host": "127.0.0.1", "smtp_port": 1, "smtp_username": "mailer",
        "smtp_password": SMTP_PW, "from_address": "st@corp.test", "imap_host": "127.0.0.1", "imap_port": 1,
        "imap_username": "st@corp.test", "imap_password": IMAP_PW}), 201)
    stack.expect(stack.client.post(PROVIDERS, json=ldap_provider(slapd)), 201)
    stack.expect(stack.client.post(PROVIDERS, json={"name": "corp-sso", "provider_type": "oidc", "config": {
        "issuer": "https://sso.corp.test", "client_id": "simpletuner", "client_secret": CLIENT_SECRET}}), 201)
    stack.api.terminate_and_wait()
    assert all(opens(KEY_A, t) for t in stored_tokens(stack)) and len(stored_tokens(stack)) == 6

    # a value that no configured key opens (here: written under a third key) -> one line, nothing changed
    with sqlite3.connect(stack.data_dir / "simpletuner.db") as db:
        db.execute("UPDATE providercredential SET ciphertext = ? WHERE credential_name = 'other'",
                   (Fernet(KEY_C.encode()).encrypt(b"lost").decode(),))
    before = snapshot(stack)
    for args in ((), ("--dry-run",)):
        failed = rotate_key(keys(stack, KEY_B, KEY_A), *args)
        assert failed.returncode == 1 and failed.stdout == "", failed
        assert failed.stderr.count("\n") == 1 and failed.stderr.startswith("error: 1 stored value(s) cannot be "
                                                                           "decrypted"), failed.stderr
        assert "provider_credentials cred_" in failed.stderr and "nothing was changed" in failed.stderr
        assert snapshot(stack) == before
    with sqlite3.connect(stack.data_dir / "simpletuner.db") as db:
        db.execute("DELETE FROM providercredential WHERE credential_name = 'other'")
    before = snapshot(stack)

    dry = rotate_key(keys(stack, KEY_B, KEY_A), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert counts(dry.stdout)["sso_provider_secrets"].startswith("2 would be re-encrypted (2 stored)"), dry.stdout
    assert "nothing was changed" in dry.stdout and snapshot(stack) == before

    done = rotate_key(keys(stack, KEY_B, KEY_A))
    assert done.returncode == 0, done.stderr
    assert {k: v.split(" - ")[0] for k, v in counts(done.stdout).items()} == {
        "provider_credentials": "1 re-encrypted (1 stored)",
        "notification_channel_passwords": "2 re-encrypted (2 stored)",
        "sso_provider_secrets": "2 re-encrypted (2 stored)"}, done.stdout
    tokens = stored_tokens(stack)
    assert len(tokens) == 5 and all(opens(KEY_B, t) and not opens(KEY_A, t) for t in tokens)
    with sqlite3.connect(stack.data_dir / "simpletuner.db") as db:
        ((actor, details),) = db.execute("SELECT actor, details FROM auditentry WHERE action = 'secrets.key_rotated'")
    assert actor == "system:secrets-cli" and json.loads(details)["reencrypted"] == {
        "provider_credentials": 1, "notification_channel_passwords": 2, "sso_provider_secrets": 2}
    again = rotate_key(keys(stack, KEY_B))  # only B now: nothing left to move
    assert again.returncode == 0 and counts(again.stdout)["provider_credentials"].startswith("0 re-encrypted (1")

    # only key B from here on: the services decrypt everything ...
    only_b = keys(stack, KEY_B)
    cipher = load_cipher(stack.data_dir, env=only_b, create=False)
    engine = create_engine(f"sqlite:///{stack.data_dir / 'simpletuner.db'}")
    with Session(engine) as session:
        assert credentials.resolve(session, rae["id"], "replicate", "api_token", cipher=cipher, env={},
                                   touch=False) == (CRED, "user")
        mail = channels.transport_of(session.get(NotificationChannel, channel["id"]), cipher, load_settings(only_b))
        assert (mail.smtp.password, mail.imap and mail.imap.password) == (SMTP_PW, IMAP_PW)
        assert sso.usable_config(session.get(ExternalAuthProvider, "corp-ldap"), cipher).bind_password == SVC_PW
        oidc = sso.usable_config(session.get(ExternalAuthProvider, "corp-sso"), cipher)
        assert oidc.client_secret.get_secret_value() == CLIENT_SECRET
    engine.dispose()
    # ... and so does the API: the LDAP service bind uses the re-encrypted bind password
    stack.env = only_b
    stack.start_api()
    assert stack.expect(ldap_login(stack, "alice"), 200)["user"]["username"] == "alice"
    assert stack.expect(stack.client.post(f"{PROVIDERS}/corp-ldap/test"), 200)["ok"] is True


def test_unusable_settings_fail_in_one_line_and_create_nothing(tmp_path: Path):
    config = tmp_path / "simpletuner-enterprise.yaml"
    config.write_text("# settings from the environment only\n")
    base = {k: v for k, v in os.environ.items() if not k.startswith("SIMPLETUNER_")}
    base.update({"SIMPLETUNER_ENTERPRISE_CONFIG": str(config), "SIMPLETUNER_DATA_DIR": str(tmp_path / "data"),
                 "HOME": str(tmp_path)})
    bad_key = "not-a-fernet-key-at-all-0123456789"
    cases = [
        ({"SIMPLETUNER_SECRET_KEY": bad_key}, "SIMPLETUNER_SECRET_KEY: not a valid encryption key"),
        ({}, "secret.key: no encryption key there"),  # neither the variable nor the file: no key is made up
        ({"SIMPLETUNER_SECRET_KEY": KEY_A}, "simpletuner.db: no database there"),
        ({"SIMPLETUNER_SECRET_KEY": KEY_A, "SIMPLETUNER_PORT": "eighty"}, "environment: port"),
    ]
    for env, message in cases:
        answer = rotate_key({**base, **env})
        assert answer.returncode == 2 and answer.stdout == "", (env, answer)
        assert answer.stderr.startswith("error: ") and message in answer.stderr, (env, answer.stderr)
        assert answer.stderr.count("\n") == 1 and "Traceback" not in answer.stderr and bad_key not in answer.stderr
    assert not (tmp_path / "data" / "secret.key").exists() and not (tmp_path / "data" / "simpletuner.db").exists()
