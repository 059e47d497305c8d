"""The remote secrets providers against real endpoints on loopback: AWS Secrets Manager (moto in server
mode, reached by boto3) and Vault KV v2 (the stand-in, reached by hvac)."""

from __future__ import annotations

import json

import pytest

from activities.secrets.providers.aws import AwsSecretsManagerProvider
from activities.secrets.providers.base import SecretProviderError
from activities.secrets.providers.cache import TtlCache
from activities.secrets.providers.vault import VaultKvProvider
from tests.ports import free_port
from tests.servers import aws_server

VALUE = "r8_token-value-never-shown"


def aws_provider(server, clock=None, **layout) -> AwsSecretsManagerProvider:
    cache = TtlCache(60, clock=clock) if clock else None
    return AwsSecretsManagerProvider(aws_server.REGION, endpoint_url=server.url, cache=cache,
                                     env=aws_server.CREDENTIALS, **layout)


def vault_provider(server, token=None, clock=None, **kwargs) -> VaultKvProvider:
    cache = TtlCache(60, clock=clock) if clock else None
    return VaultKvProvider(server.url, token or server.root_token, cache=cache, **kwargs)


# ---- AWS Secrets Manager

def test_aws_one_secret_per_name_under_a_prefix(aws):
    sm = aws.client()
    sm.create_secret(Name="simpletuner/REPLICATE_API_TOKEN", SecretString=VALUE)
    sm.create_secret(Name="other/REPLICATE_API_TOKEN", SecretString="not ours")
    provider = aws_provider(aws, prefix="simpletuner/")
    assert provider.get("REPLICATE_API_TOKEN") == VALUE
    assert provider.get("ABSENT") is None  # ResourceNotFoundException: not here, ask the next provider
    provider.check()


def test_aws_one_json_secret_holding_every_name(aws):
    aws.client().create_secret(Name="prod/simpletuner", SecretString=json.dumps({"SMTP": VALUE, "N": "v"}))
    provider = aws_provider(aws, secret_id="prod/simpletuner")
    assert provider.get("SMTP") == VALUE and provider.get("ABSENT") is None
    provider.check()


@pytest.mark.parametrize("create, layout, needle", [
    ({"Name": "p/BIN", "SecretBinary": b"\x00\x01"}, {"prefix": "p/"}, "holds binary data"),
    ({"Name": "doc", "SecretString": "plain text"}, {"secret_id": "doc"}, "not a JSON object"),
    ({"Name": "doc", "SecretString": json.dumps({"BIN": 5})}, {"secret_id": "doc"}, "is not a string"),
    (None, {"secret_id": "doc"}, "does not exist"),
])
def test_aws_unusable_secrets_are_errors_naming_provider_and_secret(aws, create, layout, needle):
    if create:
        aws.client().create_secret(**create)
    with pytest.raises(SecretProviderError) as err:
        aws_provider(aws, **layout).get("BIN")
    assert needle in str(err.value) and "secrets provider aws cannot read secret BIN" in str(err.value)


def test_aws_unreachable_is_an_error_not_a_miss():
    provider = AwsSecretsManagerProvider(aws_server.REGION, prefix="p/", endpoint_url=f"http://127.0.0.1:{free_port()}",
                                         timeout_seconds=1, env=aws_server.CREDENTIALS)
    with pytest.raises(SecretProviderError) as err:
        provider.get("API_TOKEN")
    assert "secrets provider aws cannot read secret API_TOKEN: AWS unreachable" in str(err.value)
    assert err.value.status_code == 503
    with pytest.raises(SecretProviderError, match="does not answer"):
        provider.check()


def test_aws_answers_are_cached_for_the_ttl(aws):
    sm = aws.client()
    sm.create_secret(Name="c/KEY", SecretString="v1")
    now = [0.0]
    provider = aws_provider(aws, clock=lambda: now[0], prefix="c/")
    assert provider.get("KEY") == "v1" and provider.get("LATER") is None
    sm.put_secret_value(SecretId="c/KEY", SecretString="v2")
    sm.create_secret(Name="c/LATER", SecretString="here now")
    assert provider.get("KEY") == "v1" and provider.get("LATER") is None  # within the TTL: no call
    now[0] += 60
    assert provider.get("KEY") == "v2" and provider.get("LATER") == "here now"


# ---- Vault KV v2

def test_vault_reads_the_value_field_under_the_path_prefix(vault):
    kv = vault_provider(vault)._vault().secrets.kv.v2
    kv.create_or_update_secret(path="simpletuner/SIMPLETUNER_SMTP_PASSWORD", secret={"value": VALUE},
                               mount_point="secret")
    kv.create_or_update_secret(path="elsewhere/SIMPLETUNER_SMTP_PASSWORD", secret={"value": "no"},
                               mount_point="secret")
    provider = vault_provider(vault)
    assert provider.get("SIMPLETUNER_SMTP_PASSWORD") == VALUE
    assert provider.get("ABSENT") is None
    assert vault_provider(vault, path_prefix="elsewhere/").get("SIMPLETUNER_SMTP_PASSWORD") == "no"
    provider.check()


def test_vault_denied_or_unreachable_is_an_error_not_a_miss(vault):
    narrow = vault.add_token(["secret/data/simpletuner/ALLOWED"])
    with pytest.raises(SecretProviderError) as err:
        vault_provider(vault, token=narrow).get("OTHER")
    assert str(err.value) == ("secrets provider vault cannot read secret OTHER: permission denied (403): check the "
                              "token and its policy")
    assert vault_provider(vault, token=narrow).get("ALLOWED") is None  # allowed and absent: a miss
    with pytest.raises(SecretProviderError, match="does not answer: permission denied"):
        vault_provider(vault, token="hvs.wrong").check()
    down = VaultKvProvider(f"http://127.0.0.1:{free_port()}", "t", timeout_seconds=1)
    with pytest.raises(SecretProviderError, match="cannot read secret X: Vault unreachable"):
        down.get("X")


def test_vault_secret_without_a_text_value_field_is_an_error(vault):
    vault_provider(vault)._vault().secrets.kv.v2.create_or_update_secret(
        path="simpletuner/ODD", secret={"password": VALUE}, mount_point="secret")
    with pytest.raises(SecretProviderError) as err:
        vault_provider(vault).get("ODD")
    assert "has no text field 'value'" in str(err.value) and VALUE not in str(err.value)


def test_vault_answers_are_cached_for_the_ttl_and_a_deleted_secret_is_a_miss(vault):
    kv = vault_provider(vault)._vault().secrets.kv.v2
    kv.create_or_update_secret(path="simpletuner/CACHED", secret={"value": "v1"}, mount_point="secret")
    now = [0.0]
    provider = vault_provider(vault, clock=lambda: now[0])
    before = vault.reads("/simpletuner/CACHED")
    assert provider.get("CACHED") == "v1"
    kv.create_or_update_secret(path="simpletuner/CACHED", secret={"value": "v2"}, mount_point="secret")
    assert provider.get("CACHED") == "v1"
    assert vault.reads("/simpletuner/CACHED") == before + 1  # one call for two reads
    now[0] += 60
    assert provider.get("CACHED") == "v2"
    kv.delete_latest_version_of_secret(path="simpletuner/CACHED", mount_point="secret")
    now[0] += 60
    assert provider.get("CACHED") is None
