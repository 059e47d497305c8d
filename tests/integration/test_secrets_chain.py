"""The chain of secrets providers with all four real: environment, a 0600 file, AWS Secrets Manager
(moto server) and Vault KV v2 (the stand-in). Order, fall-through on a miss, no fall-through on an
error; ``${secret:NAME}`` in the config file answered by AWS configured in the same file; the health
report's secrets component."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import pytest

from activities.secrets.config import SecretsSettings
from activities.secrets.providers.base import SecretProviderError
from activities.secrets.resolver import build_resolver
from activities.settings import ConfigFileError, load_settings
from api.routers.health import _check_secrets, _shown
from api.schemas.health import Secrets
from tests.ports import free_port
from tests.servers import aws_server

PREFIX = "simpletuner/"


@pytest.fixture
def home(tmp_path):
    (tmp_path / ".simpletuner").mkdir()
    return tmp_path


def write_secrets_file(home, values: dict[str, str]):
    path = home / ".simpletuner" / "secrets.json"
    path.write_text(json.dumps(values))
    os.chmod(path, 0o600)
    return path


def put_vault(vault, name: str, value: str) -> None:
    import hvac

    hvac.Client(url=vault.url, token=vault.root_token).secrets.kv.v2.create_or_update_secret(
        path=PREFIX + name, secret={"value": value}, mount_point="secret")


def with_aws(aws) -> SecretsSettings:
    """The ``secrets:`` settings when AWS is configured in the file (Vault and the file need none)."""
    return SecretsSettings.model_validate({"aws": {"prefix": PREFIX, "endpoint_url": aws.url}})


def env_for(home, aws, vault, **extra: str) -> dict[str, str]:
    """Every provider configured: the default file under HOME, AWS through SIMPLETUNER_* and the standard
    credential variables, Vault through the standard VAULT_ADDR / VAULT_TOKEN."""
    return {"HOME": str(home), "SIMPLETUNER_SECRETS_AWS_PREFIX": PREFIX, "SIMPLETUNER_SECRETS_AWS_ENDPOINT_URL": aws.url,
            "AWS_REGION": aws_server.REGION, **aws_server.CREDENTIALS, "VAULT_ADDR": vault.url,
            "VAULT_TOKEN": vault.root_token, **extra}


def test_env_beats_file_beats_aws_beats_vault_and_a_miss_falls_through(home, aws, vault, monkeypatch):
    monkeypatch.chdir(home)
    write_secrets_file(home, {"IN_ALL": "file", "FILE_AWS_VAULT": "file"})
    for name in ("IN_ALL", "FILE_AWS_VAULT", "AWS_VAULT"):
        aws.client().create_secret(Name=PREFIX + name, SecretString="aws")
    for name in ("IN_ALL", "FILE_AWS_VAULT", "AWS_VAULT", "ONLY_VAULT"):
        put_vault(vault, name, "vault")
    settings = load_settings(env_for(home, aws, vault, IN_ALL="env"))
    resolver = settings.secret_resolver
    assert resolver.names == ["env", "file", "aws", "vault"]
    found = {name: resolver.lookup(name) for name in ("IN_ALL", "FILE_AWS_VAULT", "AWS_VAULT", "ONLY_VAULT")}
    assert {name: (f.value, f.provider) for name, f in found.items()} == {
        "IN_ALL": ("env", "env"), "FILE_AWS_VAULT": ("file", "file"), "AWS_VAULT": ("aws", "aws"),
        "ONLY_VAULT": ("vault", "vault")}
    assert resolver.get("NOWHERE") is None


def test_an_error_stops_the_lookup_instead_of_falling_through(home, aws, vault):
    put_vault(vault, "ONLY_VAULT", "vault")
    write_secrets_file(home, {"IN_FILE": "file"})
    dead_aws = SecretsSettings.model_validate({"aws": {"prefix": PREFIX, "endpoint_url": f"http://127.0.0.1:{free_port()}",
                                                       "timeout_seconds": 1}})
    resolver = build_resolver(dead_aws, env_for(home, aws, vault, IN_ENV="env"))
    assert resolver.get("IN_ENV") == "env" and resolver.get("IN_FILE") == "file"  # answered before AWS is asked
    with pytest.raises(SecretProviderError) as err:
        resolver.get("ONLY_VAULT")  # Vault holds it, but AWS could not say it does not: no answer
    assert err.value.provider == "aws" and "cannot read secret ONLY_VAULT" in str(err.value)

    denied = build_resolver(with_aws(aws), env_for(home, aws, vault, VAULT_TOKEN="hvs.revoked"))
    assert denied.names == ["env", "file", "aws", "vault"] and denied.get("IN_FILE") == "file"
    with pytest.raises(SecretProviderError, match="secrets provider vault cannot read secret ONLY_VAULT: permission"):
        denied.get("ONLY_VAULT")


def test_secret_reference_in_the_config_file_answered_by_aws_configured_in_that_file(home, aws, vault, monkeypatch):
    monkeypatch.chdir(home)
    aws.client().create_secret(Name="prod/SMTP_PASSWORD", SecretString="smtp-from-aws")
    config = home / "enterprise.yaml"
    config.write_text(f"""\
secrets:
  aws:
    region: {aws_server.REGION}
    endpoint_url: ${{AWS_URL}}
    prefix: prod/
notifications:
  email:
    smtp_host: smtp.corp.example
    smtp_username: simpletuner
    smtp_password: ${{secret:SMTP_PASSWORD}}
    from_address: simpletuner@corp.example
""")
    env = {"HOME": str(home), "SIMPLETUNER_ENTERPRISE_CONFIG": str(config), "AWS_URL": aws.url,
           **aws_server.CREDENTIALS}
    settings = load_settings(env)
    assert settings.notifications.email.smtp_password == "smtp-from-aws"
    assert settings.secret_resolver.names == ["env", "aws"]

    config.write_text(config.read_text().replace("SMTP_PASSWORD}", "SMTP_PASSWORD_TYPO}"))
    with pytest.raises(ConfigFileError) as err:
        load_settings(env)
    assert str(err.value) == (f"{config}: notifications.email.smtp_password: secret SMTP_PASSWORD_TYPO is not set "
                              "in any secrets provider (env, aws)")

    with pytest.raises(ConfigFileError) as err:  # AWS down at start-up: the process does not start
        load_settings({**env, "AWS_URL": f"http://127.0.0.1:{free_port()}"})
    assert "notifications.email.smtp_password: secrets provider aws cannot read secret SMTP_PASSWORD_TYPO" \
        in str(err.value)


def test_health_component_lists_the_providers_and_which_answer(home, aws, vault):
    write_secrets_file(home, {"A": "file-value"})
    aws.client().create_secret(Name=PREFIX + "A", SecretString="aws-value")
    settings = SimpleNamespace(secret_resolver=build_resolver(with_aws(aws), env_for(home, aws, vault)))
    component = _check_secrets(SimpleNamespace(settings=settings))
    public = _shown(component, details=False)
    assert public == {"name": "secrets", "status": "healthy", "message": "secrets providers answering: env, file, aws, vault",
                      "providers": [{"name": n, "status": "healthy"} for n in ("env", "file", "aws", "vault")]}
    Secrets.model_validate(public)
    assert vault.url in _shown(component, details=True)["message"]  # admin.config sees where each reads

    denied = SimpleNamespace(secret_resolver=build_resolver(with_aws(aws), env_for(home, aws, vault,
                                                                                   VAULT_TOKEN="hvs.revoked")))
    component = _check_secrets(SimpleNamespace(settings=denied))
    public = _shown(component, details=False)
    assert public["status"] == "unhealthy" and public["message"] == "secrets provider(s) not answering: vault"
    assert [p["status"] for p in public["providers"]] == ["healthy", "healthy", "healthy", "unhealthy"]
    text = json.dumps(public)
    assert "value" not in text.replace("message", "") and str(home) not in text and "127.0.0.1" not in text
    assert "permission denied" in _shown(component, details=True)["message"]
