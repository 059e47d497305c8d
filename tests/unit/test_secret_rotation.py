"""Key rotation on a real SQLite database: every encrypted column moves to the current key, SSO
secrets left in plain text by an earlier version are encrypted on the way, a dry run writes nothing,
and every encrypted column of the schema is covered."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from sqlmodel import select

from activities.db.engine import init_db, make_engine, session
from activities.db.models import AuditEntry, User
from activities.db.models_approvals import NotificationChannel
from activities.db.models_credentials import ProviderCredential
from activities.db.models_sso import ExternalAuthProvider
from activities.identity.sso import provider_secrets
from activities.secrets import rotation
from activities.secrets.credential_crypto import ENV_KEY, ENV_PREVIOUS, load_cipher

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


@pytest.fixture
def db(tmp_path, database_url):
    engine = make_engine(database_url)
    init_db(engine)
    old = load_cipher(tmp_path, env={ENV_KEY: OLD})
    with session(engine) as s:
        s.add(User(id="u_1", username="rae"))
        s.flush()
        s.add(ProviderCredential(id="cred_1", user_id="u_1", provider="replicate", credential_name="api_token",
                                 ciphertext=old.encrypt("r8_token")))
        s.add(NotificationChannel(id="ch_1", name="mail", channel_type="email", smtp_host="127.0.0.1",
                                  smtp_password_encrypted=old.encrypt("smtp-pw"), imap_password_encrypted=None))
        s.add(ExternalAuthProvider(name="ldap", provider_type="ldap", config={"bind_dn": "cn=svc"},
                                   encrypted_secrets={"bind_password": old.encrypt("bind-pw")}))
        s.add(ExternalAuthProvider(name="legacy", provider_type="oidc",  # as an earlier version stored it
                                   config={"issuer": "https://sso.corp.test", "client_secret": "plain-secret"}))
        s.commit()
    yield engine
    engine.dispose()


def test_rotation_moves_everything_to_the_current_key_in_one_audited_transaction(db, tmp_path):
    rotated = load_cipher(tmp_path, env={ENV_KEY: NEW, ENV_PREVIOUS: OLD})
    with session(db) as s:
        dry = rotation.rotate(s, rotated, "tester", dry_run=True)
        assert not s.dirty and not s.new
    assert (dry.as_dict()["reencrypted"], dry.plaintext_encrypted) == (
        {"provider_credentials": 1, "notification_channel_passwords": 1, "sso_provider_secrets": 1}, 1)
    with session(db) as s:
        report = rotation.rotate(s, rotated, "tester")
        s.commit()
    assert report.as_dict() == dry.as_dict() and report.changed == 4

    only_new = load_cipher(tmp_path, env={ENV_KEY: NEW})
    with session(db) as s:
        assert only_new.decrypt(s.get(ProviderCredential, "cred_1").ciphertext) == "r8_token"
        assert only_new.decrypt(s.get(NotificationChannel, "ch_1").smtp_password_encrypted) == "smtp-pw"
        assert provider_secrets.reveal(s.get(ExternalAuthProvider, "ldap"), only_new)["bind_password"] == "bind-pw"
        legacy = s.get(ExternalAuthProvider, "legacy")
        assert "client_secret" not in legacy.config
        assert provider_secrets.reveal(legacy, only_new)["client_secret"] == "plain-secret"
        actions = [(a.actor, a.action, a.target_id) for a in s.exec(select(AuditEntry).order_by(AuditEntry.id))]
        assert actions == [("tester", "external_auth.provider_secrets_encrypted", "legacy"),
                           ("tester", "secrets.key_rotated", None)]
        again = rotation.rotate(s, only_new, "tester")  # nothing left under the old key
    assert again.changed == 0 and again.kinds["sso_provider_secrets"].stored == 2


def test_an_undecryptable_value_raises_before_anything_is_written(db, tmp_path):
    stranger = load_cipher(tmp_path, env={ENV_KEY: Fernet.generate_key().decode()})
    with session(db) as s:
        s.get(NotificationChannel, "ch_1").imap_password_encrypted = stranger.encrypt("lost")
        s.commit()
    with session(db) as s:
        with pytest.raises(rotation.RotationError, match=r"^1 stored value\(s\) .* notification_channel_passwords "
                                                         r"ch_1 \(imap_password\); nothing was changed$"):
            rotation.rotate(s, load_cipher(tmp_path, env={ENV_KEY: NEW, ENV_PREVIOUS: OLD}), "tester")
        assert not s.dirty and not s.new


def test_every_encrypted_column_is_rotated():
    """A new column holding ciphertext must be added to rotation.FIELDS (or it would be stranded
    under a key about to be dropped): the columns named like ciphertext are exactly the listed ones."""
    from sqlmodel import SQLModel

    suspicious = {f"{t.name}.{c.name}" for t in SQLModel.metadata.sorted_tables for c in t.columns
                  if any(word in c.name for word in ("encrypted", "ciphertext"))}
    assert suspicious == {"providercredential.ciphertext", "notificationchannel.smtp_password_encrypted",
                          "notificationchannel.imap_password_encrypted", "externalauthprovider.encrypted_secrets"}
    assert {f.model.__tablename__ for f in rotation.FIELDS} == {name.split(".")[0] for name in suspicious}
