"""The e-mail notification channel over REST and from the config file, against a real SMTP receiver."""

from __future__ import annotations

import sqlite3

import pytest
import yaml

from tests.servers.mail_server import SmtpSink

pytestmark = pytest.mark.e2e

CHANNELS = "/api/cloud/notifications/channels"


@pytest.fixture(scope="module")
def sink():
    with SmtpSink() as server:
        yield server


def test_channel_crud_secrets_and_test_message(stack, sink):
    body = {"channel_type": "email", "name": "Primary Email", "smtp_host": "127.0.0.1", "smtp_port": sink.port,
            "smtp_username": "mailer", "smtp_password": "smtp-Secret-1", "from_address": "st@corp.test",
            "imap_host": "127.0.0.1", "imap_port": 1, "imap_username": "st@corp.test", "imap_password": "imap-Secret-2"}
    made = stack.expect(stack.client.post(CHANNELS, json=body), 201)
    assert made["smtp_password_set"] and made["imap_password_set"] and made["reads_replies"]
    assert "smtp_password" not in made and "imap_password" not in made
    with sqlite3.connect(stack.data_dir / "simpletuner.db") as db:
        row = " ".join(str(v) for v in db.execute("SELECT * FROM notificationchannel").fetchone())
    assert "Secret" not in row, "passwords are stored encrypted"
    assert stack.client.post(CHANNELS, json=body).status_code == 409

    sent = stack.expect(stack.client.post(f"{CHANNELS}/{made['id']}/test", json={"to": "ops@corp.test"}), 200)
    assert sent == {"sent": True, "to": "ops@corp.test"}
    _, rcpts, msg = sink.wait_for(lambda r: "ops@corp.test" in r[1], timeout=10)
    assert msg["From"] == "st@corp.test" and "Primary Email" in msg["Subject"]
    assert ("LOGIN", "mailer") in sink.logins or ("PLAIN", "mailer") in sink.logins

    patched = stack.expect(stack.client.patch(f"{CHANNELS}/{made['id']}", json={"smtp_port": 1, "enabled": False}), 200)
    assert patched["smtp_port"] == 1 and patched["enabled"] is False and patched["smtp_password_set"]
    failed = stack.client.post(f"{CHANNELS}/{made['id']}/test", json={"to": "ops@corp.test"})
    assert failed.status_code == 503 and "SMTP" in failed.json()["detail"], failed.text
    stack.expect(stack.client.delete(f"{CHANNELS}/{made['id']}"), 200)
    assert stack.client.get(f"{CHANNELS}/{made['id']}").status_code == 404


@pytest.mark.parametrize("body, needle", [
    ({"channel_type": "slack", "name": "s", "smtp_host": "h"}, "channel_type"),
    ({"channel_type": "email", "name": "x", "smtp_host": "h", "from_address": "a@b.c", "smtp_use_tls": True,
      "smtp_use_ssl": True}, "exclude each other"),
    ({"channel_type": "email", "name": "x", "smtp_host": "h", "from_address": "nope"}, "from_address"),
    ({"channel_type": "email", "name": "x", "smtp_host": "h", "from_address": "a@b.c", "smtp_port": 0}, "smtp_port"),
    ({"channel_type": "email", "name": "x", "smtp_host": "h", "from_address": "a@b.c", "imap_host": "i"},
     "imap_username"),
    ({"channel_type": "email", "name": "x", "smtp_host": "h", "from_address": "a@b.c", "colour": "red"}, "colour"),
    ({"channel_type": "email", "name": "", "smtp_host": "h", "from_address": "a@b.c"}, "name"),
])
def test_bad_channels_are_refused(shared_stack, body, needle):
    stack = shared_stack
    answer = stack.client.post(CHANNELS, json=body)
    assert answer.status_code == 422 and needle in answer.json()["detail"], answer.text
    assert stack.expect(stack.client.get(CHANNELS), 200)["channels"] == []


def test_config_file_channel_is_mirrored_read_only(stack_factory, sink):
    stack = stack_factory(start=False, extra_env={"MAIL_PW": "from-env-pw"})
    stack.enterprise_config.write_text(yaml.safe_dump({"notifications": {"email": {
        "smtp_host": "127.0.0.1", "smtp_port": sink.port, "from_address": "cfg@corp.test",
        "smtp_username": "cfg", "smtp_password": "${MAIL_PW}"}}}))
    stack.start()
    channels = stack.expect(stack.client.get(CHANNELS), 200)["channels"]
    assert [(c["name"], c["source"], c["smtp_password_set"]) for c in channels] == [("config-email", "config", True)]
    channel_id = channels[0]["id"]
    refused = stack.client.patch(f"{CHANNELS}/{channel_id}", json={"enabled": False})
    assert refused.status_code == 409 and "config file" in refused.json()["detail"]
    assert stack.client.delete(f"{CHANNELS}/{channel_id}").status_code == 409
    stack.expect(stack.client.post(f"{CHANNELS}/{channel_id}/test", json={"to": "cfg-test@corp.test"}), 200)
    sink.wait_for(lambda r: "cfg-test@corp.test" in r[1], timeout=10)
    # A channel naming no sender sends as the installation's notifications.email.from_address.
    bare = stack.expect(stack.client.post(CHANNELS, json={"channel_type": "email", "name": "bare",
                                                          "smtp_host": "smtp.corp.test", "smtp_use_tls": True}), 201)
    assert bare["from_address"] == "cfg@corp.test"


def test_a_channel_without_a_sender_gets_one(shared_stack):
    """No from_address, no address as SMTP login, no installation setting: simpletuner@<this host>."""
    stack = shared_stack
    made = stack.expect(stack.client.post(CHANNELS, json={"channel_type": "email", "name": "Primary Email",
                                                          "smtp_host": "smtp.corp.test", "smtp_port": 587,
                                                          "smtp_use_tls": True}), 201)
    try:
        assert made["from_address"].startswith("simpletuner@") and "@" not in made["from_address"][12:]
        login = stack.expect(stack.client.patch(f"{CHANNELS}/{made['id']}", json={"smtp_username": "ops@corp.test"}),
                             200)
        assert login["from_address"] == made["from_address"]  # chosen once, kept
    finally:
        stack.expect(stack.client.delete(f"{CHANNELS}/{made['id']}"), 200)
