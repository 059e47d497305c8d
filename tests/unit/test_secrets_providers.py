"""The local secrets providers (environment, file) and the cache the remote ones use."""

from __future__ import annotations

import json
import os

import pytest

from activities.errors import Unavailable
from activities.secrets.providers.base import SecretProviderError, check_name
from activities.secrets.providers.cache import TtlCache
from activities.secrets.providers.env import EnvProvider
from activities.secrets.providers.file import FileProvider, default_path

VALUE = "s3cr3t-value-never-shown"


def secrets_file(path, content: str, mode: int = 0o600):
    path.write_text(content)
    os.chmod(path, mode)
    return path


def test_env_provider_reads_the_live_environment_and_treats_empty_as_unset(monkeypatch):
    provider = EnvProvider()
    monkeypatch.setenv("ST_TEST_SECRET", VALUE)
    assert provider.get("ST_TEST_SECRET") == VALUE
    monkeypatch.setenv("ST_TEST_SECRET", "")
    assert provider.get("ST_TEST_SECRET") is None
    assert EnvProvider({"A": "x"}).get("A") == "x" and EnvProvider({}).get("A") is None
    EnvProvider({}).check()


@pytest.mark.parametrize("name, content", [
    ("secrets.json", json.dumps({"API_TOKEN": VALUE, "OTHER": "o"})),
    ("secrets.yaml", f"API_TOKEN: {VALUE}\nOTHER: o\n"),
    ("secrets.yml", f"API_TOKEN: '{VALUE}'\nOTHER: o\n"),
])
def test_file_provider_reads_json_or_yaml_by_suffix(tmp_path, name, content):
    provider = FileProvider(secrets_file(tmp_path / name, content))
    assert provider.get("API_TOKEN") == VALUE and provider.get("OTHER") == "o"
    assert provider.get("ABSENT") is None
    provider.check()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o601, 0o660, 0o644])
def test_file_provider_refuses_a_file_group_or_others_can_access(tmp_path, mode):
    path = secrets_file(tmp_path / "secrets.json", json.dumps({"API_TOKEN": VALUE}), mode)
    with pytest.raises(SecretProviderError) as err:
        FileProvider(path).get("API_TOKEN")
    message = str(err.value)
    assert str(path) in message and f"{mode:04o}" in message and "chmod 600" in message
    assert "secrets provider file" in message and "API_TOKEN" in message and VALUE not in message
    assert isinstance(err.value, Unavailable) and err.value.status_code == 503


def test_file_provider_notices_a_rewrite_and_a_loosened_mode(tmp_path):
    path = secrets_file(tmp_path / "secrets.json", json.dumps({"API_TOKEN": "old"}))
    provider = FileProvider(path)
    assert provider.get("API_TOKEN") == "old"
    replacement = secrets_file(tmp_path / "new.json", json.dumps({"API_TOKEN": "rotated"}))
    os.replace(replacement, path)  # an atomic rotation: a new inode
    assert provider.get("API_TOKEN") == "rotated"
    os.chmod(path, 0o644)  # the same content, now readable by others: refused, not served from memory
    with pytest.raises(SecretProviderError, match="0644"):
        provider.get("API_TOKEN")


@pytest.mark.parametrize("name, content, needle", [
    ("secrets.json", '{"API_TOKEN": "' + VALUE + '"', "not valid JSON (line 1)"),
    ("secrets.yaml", f"API_TOKEN: [{VALUE}\n", "not valid YAML"),
    ("secrets.json", json.dumps([VALUE]), "must be a mapping"),
    ("secrets.yaml", f"API_TOKEN: {VALUE}\nPORT: 5432\nDEBUG: yes\n", "not so for DEBUG, PORT"),
    ("secrets.txt", f"API_TOKEN={VALUE}\n", "must end in .json, .yaml or .yml"),
])
def test_file_provider_names_what_is_wrong_without_the_values(tmp_path, name, content, needle):
    path = secrets_file(tmp_path / name, content)
    with pytest.raises(SecretProviderError) as err:
        FileProvider(path).check()
    assert needle in str(err.value) and str(path) in str(err.value) and VALUE not in str(err.value)


def test_file_provider_missing_file_is_an_error_once_configured(tmp_path):
    with pytest.raises(SecretProviderError, match="cannot read"):
        FileProvider(tmp_path / "secrets.json").get("API_TOKEN")


def test_default_path_is_the_first_existing_json_yaml_or_yml(tmp_path):
    assert default_path(tmp_path) is None
    (tmp_path / ".simpletuner").mkdir()
    secrets_file(tmp_path / ".simpletuner/secrets.yml", "A: b\n")
    assert default_path(tmp_path) == tmp_path / ".simpletuner/secrets.yml"
    secrets_file(tmp_path / ".simpletuner/secrets.json", "{}")
    assert default_path(tmp_path) == tmp_path / ".simpletuner/secrets.json"


def test_cache_keeps_answers_for_its_ttl_but_never_a_failure():
    now = [100.0]
    cache = TtlCache(30, clock=lambda: now[0])
    loads = []

    def load(value):
        def inner():
            loads.append(value)
            return value
        return inner

    assert cache.get("k", load("v1")) == "v1"
    assert cache.get("k", load("v2")) == "v1"  # within the TTL
    assert cache.get("absent", load(None)) is None and cache.get("absent", load("late")) is None  # "not there" too
    now[0] += 30
    assert cache.get("k", load("v2")) == "v2"  # expired: asked again

    def failing():
        loads.append("fail")
        raise SecretProviderError("aws", "k2", "unreachable")
    for _ in range(2):
        with pytest.raises(SecretProviderError):
            cache.get("k2", failing)
    assert loads.count("fail") == 2
    assert TtlCache(0).get("x", load("a")) == "a" and TtlCache(0).get("x", load("b")) == "b"  # 0: no caching


@pytest.mark.parametrize("name", ["", "../etc/passwd", "a/../b", "/abs", "-x", "has space", "x" * 256])
def test_unusable_secret_names_are_refused(name):
    with pytest.raises(ValueError):
        check_name(name)
