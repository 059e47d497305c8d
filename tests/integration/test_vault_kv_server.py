"""The Vault stand-in (tests/servers/vault_kv_server.py) against the official client, hvac: the same
calls the Vault secrets provider makes, with the answers and errors real Vault gives."""

from __future__ import annotations

import hvac
import hvac.exceptions
import pytest

from tests.servers.vault_kv_server import VaultKvServer


@pytest.fixture(scope="module")
def vault():
    with VaultKvServer(mounts=("secret", "team")) as server:
        yield server


def client(vault: VaultKvServer, token: str | None = None) -> hvac.Client:
    return hvac.Client(url=vault.url, token=token or vault.root_token, timeout=5)


def test_write_then_read_a_version_in_vaults_shape(vault):
    kv = client(vault).secrets.kv.v2
    written = kv.create_or_update_secret(path="app/db", secret={"value": "one"}, mount_point="secret")
    assert written["data"]["version"] == 1 and written["data"]["deletion_time"] == ""
    kv.create_or_update_secret(path="app/db", secret={"value": "two", "user": "svc"}, mount_point="secret")

    latest = kv.read_secret_version(path="app/db", mount_point="secret", raise_on_deleted_version=True)
    assert latest["data"]["data"] == {"value": "two", "user": "svc"}
    assert latest["data"]["metadata"]["version"] == 2 and latest["data"]["metadata"]["destroyed"] is False
    first = kv.read_secret_version(path="app/db", version=1, mount_point="secret", raise_on_deleted_version=True)
    assert first["data"]["data"] == {"value": "one"}
    # mounts are separate stores
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_version(path="app/db", mount_point="team", raise_on_deleted_version=True)


def test_check_and_set_refuses_a_stale_version(vault):
    kv = client(vault).secrets.kv.v2
    kv.create_or_update_secret(path="cas/x", secret={"value": "a"}, mount_point="secret", cas=0)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        kv.create_or_update_secret(path="cas/x", secret={"value": "b"}, mount_point="secret", cas=0)
    kv.create_or_update_secret(path="cas/x", secret={"value": "b"}, mount_point="secret", cas=1)


def test_missing_path_and_deleted_version_are_404(vault):
    kv = client(vault).secrets.kv.v2
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_version(path="nowhere", mount_point="secret", raise_on_deleted_version=True)
    kv.create_or_update_secret(path="gone", secret={"value": "v"}, mount_point="secret")
    kv.delete_latest_version_of_secret(path="gone", mount_point="secret")
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_version(path="gone", mount_point="secret", raise_on_deleted_version=True)
    # like Vault, the 404 of a deleted version carries its metadata
    deleted = kv.read_secret_version(path="gone", mount_point="secret", raise_on_deleted_version=False)
    assert deleted["data"]["data"] is None and deleted["data"]["metadata"]["deletion_time"] != ""
    with pytest.raises(hvac.exceptions.InvalidPath):  # an unmounted engine
        kv.read_secret_version(path="x", mount_point="nomount", raise_on_deleted_version=True)


def test_bad_or_missing_token_and_narrow_policy_are_403(vault):
    client(vault).secrets.kv.v2.create_or_update_secret(path="team-a/key", secret={"value": "a"}, mount_point="secret")
    client(vault).secrets.kv.v2.create_or_update_secret(path="team-b/key", secret={"value": "b"}, mount_point="secret")
    with pytest.raises(hvac.exceptions.Forbidden):
        client(vault, "hvs.not-a-token").secrets.kv.v2.read_secret_version(
            path="team-a/key", mount_point="secret", raise_on_deleted_version=True)
    anonymous = hvac.Client(url=vault.url, token="", timeout=5)
    with pytest.raises(hvac.exceptions.Forbidden):
        anonymous.secrets.kv.v2.read_secret_version(path="team-a/key", mount_point="secret",
                                                    raise_on_deleted_version=True)
    narrow = vault.add_token(["secret/data/team-a/*"])
    kv = client(vault, narrow).secrets.kv.v2
    assert kv.read_secret_version(path="team-a/key", mount_point="secret",
                                  raise_on_deleted_version=True)["data"]["data"] == {"value": "a"}
    with pytest.raises(hvac.exceptions.Forbidden):
        kv.read_secret_version(path="team-b/key", mount_point="secret", raise_on_deleted_version=True)
    with pytest.raises(hvac.exceptions.Forbidden):
        kv.create_or_update_secret(path="team-b/key", secret={"value": "x"}, mount_point="secret")


def test_health_and_token_lookup(vault):
    assert client(vault, "hvs.not-a-token").sys.read_health_status(method="GET")["sealed"] is False
    assert client(vault, "hvs.not-a-token").sys.read_health_status(method="HEAD").status_code == 200
    assert client(vault).is_authenticated() is True
    assert client(vault).auth.token.lookup_self()["data"]["id"] == vault.root_token
    assert client(vault, "hvs.not-a-token").is_authenticated() is False
    with pytest.raises(hvac.exceptions.Forbidden):
        client(vault, "hvs.not-a-token").auth.token.lookup_self()
    tokens = {token for method, path, token in vault.requests if path == "/v1/auth/token/lookup-self"}
    assert vault.root_token in tokens  # the stand-in saw the X-Vault-Token header hvac sends
