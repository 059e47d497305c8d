"""Secrets while settings load (``secrets:`` block, ``${secret:NAME}``, start-up errors) and the
platform's reads by secret name through the providers: the credential encryption key, the SMTP
password, the OIDC client secret, the admin token and global provider credentials."""

from __future__ import annotations

import json
import os

import pytest
from cryptography.fernet import Fernet

from activities.db.engine import init_db, make_engine, session
from activities.db.models import User
from activities.db.models_sso import ExternalAuthProvider
from activities.identity.sso import provider_secrets, providers as sso
from activities.notify import channels
from activities.secrets import credentials
from activities.secrets.credential_crypto import load_cipher
from activities.secrets.credentials import CredentialRef
from activities.secrets.providers.base import SecretProviderError
from activities.settings import ConfigFileError, load_settings

VALUE = "value-that-must-never-show-up"


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no simpletuner-enterprise.yaml of the working tree
    (tmp_path / ".simpletuner").mkdir()
    return tmp_path


def secrets_file(home, values, name="secrets.json", mode=0o600):
    path = home / ".simpletuner" / name
    path.write_text(json.dumps(values) if name.endswith(".json") else "".join(f"{k}: '{v}'\n" for k, v in values.items()))
    os.chmod(path, mode)
    return path


def config(home, text: str):
    path = home / "enterprise.yaml"
    path.write_text(text)
    return path


def load(home, path=None, **env):
    base = {"HOME": str(home), **({"SIMPLETUNER_ENTERPRISE_CONFIG": str(path)} if path else {})}
    return load_settings({**base, **env})


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'app.db'}")
    init_db(engine)
    yield engine
    engine.dispose()


# ---- ${secret:NAME} and the secrets: block

def test_secret_reference_answered_by_the_secrets_file(home):
    secrets_file(home, {"TEMPORAL_KEY": VALUE, "SMTP_PW": "pw"}, name="secrets.yaml")
    path = config(home, "temporal:\n  api_key: ${secret:TEMPORAL_KEY}\nadmin_token: 'pre-${secret:SMTP_PW}-post'\n")
    settings = load(home, path)
    assert settings.temporal.api_key == VALUE and settings.admin_token == "pre-pw-post"
    assert settings.secret_resolver.names == ["env", "file"]


def test_secret_reference_prefers_the_environment(home):
    secrets_file(home, {"TEMPORAL_KEY": "from-file"})
    path = config(home, "temporal:\n  api_key: ${secret:TEMPORAL_KEY}\n")
    assert load(home, path, TEMPORAL_KEY="from-env").temporal.api_key == "from-env"


def test_secrets_file_path_from_the_block_and_from_the_env_var(home):
    other = home / "vault-export.json"
    other.write_text(json.dumps({"K": "block"}))
    os.chmod(other, 0o600)
    path = config(home, f"secrets:\n  file: {other}\ntemporal:\n  api_key: ${{secret:K}}\n")
    assert load(home, path).temporal.api_key == "block"
    third = secrets_file(home, {"K": "env var"}, name="other.json")
    assert load(home, path, SIMPLETUNER_SECRETS_FILE=str(third)).temporal.api_key == "env var"


def test_missing_secret_names_file_key_and_secret_never_a_value(home):
    secrets_file(home, {"PRESENT": VALUE})
    path = config(home, "notifications:\n  email:\n    smtp_host: h\n    from_address: a@b.c\n"
                        "    smtp_password: ${secret:ABSENT}\n")
    with pytest.raises(ConfigFileError) as err:
        load(home, path)
    assert str(err.value) == (f"{path}: notifications.email.smtp_password: secret ABSENT is not set in any secrets "
                              "provider (env, file)")


@pytest.mark.parametrize("text, needle", [
    ("secrets:\n  file: ${secret:WHERE}\n", "secrets.file: ${secret:WHERE} cannot be used in the secrets: block"),
    ("secrets:\n  providers: [env, keychain]\n", "secrets.providers.1: Input should be 'env', 'file', 'aws' or 'vault'"),
    ("secrets:\n  providers: [env, vault]\n", "secrets.providers names vault, which is not configured"),
    ("secrets:\n  vault:\n    url: http://127.0.0.1:1\n", "secrets.vault.token: not set (nor SIMPLETUNER_VAULT_TOKEN"),
    ("secrets:\n  aws:\n    prefix: st/\n", "secrets.aws.region: not set"),
    ("secrets:\n  aws:\n    prefix: st/\n    secret_id: all\n", "secrets.aws: Value error, set prefix"),
    ("secrets:\n  cache_ttl_seconds: -1\n", "secrets.cache_ttl_seconds: Input should be greater than or equal to 0"),
    ("temporal:\n  api_key: ${secret:../x}\n", "temporal.api_key: ${secret:...}: '../x' is not a usable secret name"),
])
def test_unusable_secrets_settings_stop_the_start_naming_the_setting(home, text, needle):
    path = config(home, text)
    with pytest.raises(ConfigFileError) as err:
        load(home, path)
    assert str(path) in str(err.value) and needle in str(err.value)


def test_unknown_provider_in_the_env_var(home):
    with pytest.raises(ConfigFileError,
                       match=r"environment: secrets.providers.0 \(SIMPLETUNER_SECRETS_PROVIDERS\): Input should be 'env'"):
        load(home, SIMPLETUNER_SECRETS_PROVIDERS="keychain,env")
    assert load(home, SIMPLETUNER_SECRETS_PROVIDERS="env").secret_resolver.names == ["env"]
    secrets_file(home, {"K": "v"})
    assert load(home).secret_resolver.names == ["env", "file"]
    assert load(home, SIMPLETUNER_SECRETS_PROVIDERS="env").secret_resolver.names == ["env"]  # file left out
    assert load(home, SIMPLETUNER_SECRETS_PROVIDERS="file").secret_resolver.names == ["env", "file"]  # env always


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o606])
def test_secrets_file_readable_by_others_stops_the_start(home, mode):
    path = secrets_file(home, {"K": VALUE}, mode=mode)
    with pytest.raises(ConfigFileError) as err:
        load(home)
    message = str(err.value)
    assert "secrets.file (SIMPLETUNER_SECRETS_FILE)" in message and str(path) in message
    assert f"mode {mode:04o}" in message and VALUE not in message


@pytest.mark.parametrize("name, content, needle", [
    ("secrets.json", '{"K": "' + VALUE, "not valid JSON"),
    ("secrets.yaml", "K: [" + VALUE + "\n", "not valid YAML"),
])
def test_malformed_secrets_file_stops_the_start(home, name, content, needle):
    path = home / ".simpletuner" / name
    path.write_text(content)
    os.chmod(path, 0o600)
    with pytest.raises(ConfigFileError) as err:
        load(home)
    assert needle in str(err.value) and str(path) in str(err.value) and VALUE not in str(err.value)


def test_named_secrets_file_that_does_not_exist_stops_the_start(home):
    with pytest.raises(ConfigFileError, match="secrets.file .* cannot read: No such file"):
        load(home, SIMPLETUNER_SECRETS_FILE=str(home / "nope.json"))


# ---- reads by secret name

def test_admin_token_from_the_secrets_file_and_the_environment_first(home):
    secrets_file(home, {"SIMPLETUNER_ADMIN_TOKEN": "st_admin_from_file"})
    assert load(home).admin_token == "st_admin_from_file"
    assert load(home, SIMPLETUNER_ADMIN_TOKEN="st_admin_from_env").admin_token == "st_admin_from_env"
    path = config(home, "admin_token: st_admin_in_config\n")
    assert load(home, path).admin_token == "st_admin_in_config"  # a setting the file gives is used as given


def test_credential_key_read_through_the_providers(home, tmp_path):
    key = Fernet.generate_key().decode()
    secrets_file(home, {"SIMPLETUNER_SECRET_KEY": key})
    data_dir = tmp_path / "data"
    cipher = load_cipher(data_dir, secrets=load(home).secret_resolver)
    assert cipher.source == "SIMPLETUNER_SECRET_KEY (secrets provider file)"
    assert Fernet(key.encode()).decrypt(cipher.encrypt("x").encode()) == b"x"
    assert not (data_dir / "secret.key").exists()  # no key file made when a provider holds the key

    resolver = load(home).secret_resolver
    os.chmod(home / ".simpletuner" / "secrets.json", 0o644)  # the provider now fails: no fresh key instead
    with pytest.raises(SecretProviderError, match="secrets provider file cannot read secret SIMPLETUNER_SECRET_KEY"):
        load_cipher(data_dir, secrets=resolver)
    assert not (data_dir / "secret.key").exists()


def test_smtp_and_imap_passwords_read_through_the_providers(home, engine, tmp_path):
    secrets_file(home, {"SIMPLETUNER_SMTP_PASSWORD": "smtp-secret", "SIMPLETUNER_IMAP_PASSWORD": "imap-secret"})
    path = config(home, "notifications:\n  email:\n    smtp_host: smtp.corp.example\n    smtp_username: bot\n"
                        "    from_address: bot@corp.example\n    imap_host: imap.corp.example\n    imap_username: bot\n")
    settings = load(home, path)
    email = settings.notifications.email
    assert (email.smtp_password, email.imap_password) == ("smtp-secret", "imap-secret")
    cipher = load_cipher(tmp_path / "data", env={})
    with session(engine) as s:
        channels.sync_config_channel(s, email, cipher)
        s.commit()
        transport = channels.email_transport(s, cipher, settings)
    assert (transport.smtp.password, transport.imap.password) == ("smtp-secret", "imap-secret")


def test_oidc_client_secret_read_through_the_providers(home, engine, tmp_path):
    secrets_file(home, {"SIMPLETUNER_OIDC_CLIENT_SECRET": "oidc-secret"})
    path = config(home, "oidc:\n  issuer: https://sso.corp.example\n  client_id: simpletuner\n")
    settings = load(home, path)
    assert settings.oidc["client_secret"] == "oidc-secret"
    cipher = load_cipher(tmp_path / "data", env={})
    from activities.secrets import credential_crypto
    credential_crypto.install(cipher)
    try:
        with session(engine) as s:
            assert sso.import_config_file(s, settings.oidc, str(path)) == "oidc"
            s.commit()
            row = s.get(ExternalAuthProvider, "oidc")
            assert "client_secret" not in row.config  # stored encrypted, not in the plain config
            assert provider_secrets.reveal(row, cipher)["client_secret"] == "oidc-secret"
    finally:
        credential_crypto.install(None)


def test_global_provider_credential_through_the_providers_and_a_provider_failure_is_503(home, engine, tmp_path):
    secrets_file(home, {"SIMPLETUNER_REPLICATE_API_TOKEN": "r8_global", "SIMPLETUNER_SMTP_PASSWORD": "smtp"})
    resolver = load(home).secret_resolver
    cipher = load_cipher(tmp_path / "data", env={})
    ref = CredentialRef(provider="replicate", credential_name="api_token")
    with session(engine) as s:
        s.add(User(id="u_1", username="rae"))
        s.commit()
        assert credentials.resolve(s, "u_1", "replicate", "api_token", cipher=cipher, secrets=resolver) == (
            "r8_global", "global")
        assert credentials.validate(s, "u_1", ref, cipher=cipher, secrets=resolver)["source"] == "global"
        smtp = CredentialRef(provider="smtp", credential_name="password")  # the platform's own secret: never
        assert credentials.validate(s, "u_1", smtp, cipher=cipher, secrets=resolver)["resolved"] is False
        os.chmod(home / ".simpletuner" / "secrets.json", 0o640)
        with pytest.raises(SecretProviderError) as err:
            credentials.validate(s, "u_1", ref, cipher=cipher, secrets=resolver)
    assert err.value.status_code == 503 and "SIMPLETUNER_REPLICATE_API_TOKEN" in err.value.detail
