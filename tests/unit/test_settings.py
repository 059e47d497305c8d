"""Settings: defaults < config file (seed search order, ${VAR}) < env vars; clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from activities.settings import ConfigFileError, config_file_candidates, load_settings


def test_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = load_settings({"HOME": str(tmp_path)})
    assert s.temporal.address == "127.0.0.1:7233" and s.port == 8001 and s.heartbeat_timeout_seconds == 120
    assert s.data_dir == Path(".data") and s.config_file is None


def test_search_order_explicit_then_cwd_then_home(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    home = tmp_path / "home"
    cands = config_file_candidates({"HOME": str(home)})
    assert cands[0] == Path("simpletuner-enterprise.yaml")
    assert home / ".config/simpletuner/enterprise.yaml" in cands
    assert cands.index(home / ".config/simpletuner/enterprise.yaml") < cands.index(Path("/etc/simpletuner/enterprise.yaml"))
    assert config_file_candidates({"SIMPLETUNER_ENTERPRISE_CONFIG": "/x/y.json"}) == [Path("/x/y.json")]


def test_yaml_file_with_interpolation_and_env_override(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "simpletuner-enterprise.yaml").write_text(
        "temporal:\n  address: ${TADDR}\n  namespace: research\nport: 9000\nnetwork:\n  trusted_proxies: [10.0.0.0/8]\n")
    s = load_settings({"HOME": str(tmp_path), "TADDR": "temporal.internal:7233"})
    assert s.temporal.address == "temporal.internal:7233" and s.temporal.namespace == "research" and s.port == 9000
    assert s.config_file == Path("simpletuner-enterprise.yaml")
    s = load_settings({"HOME": str(tmp_path), "TADDR": "x:1", "SIMPLETUNER_PORT": "9100",
                       "SIMPLETUNER_TEMPORAL_ADDRESS": "env:7233"})
    assert s.port == 9100 and s.temporal.address == "env:7233"


def test_json_file_named_by_env(tmp_path):
    path = tmp_path / "conf.json"
    path.write_text('{"heartbeat_timeout_seconds": 30, "temporal": {"tls": true}}')
    s = load_settings({"HOME": str(tmp_path), "SIMPLETUNER_ENTERPRISE_CONFIG": str(path)})
    assert s.heartbeat_timeout_seconds == 30 and s.temporal.tls is True


@pytest.mark.parametrize("text, needle", [
    ("temporal:\n  adress: x\n", "temporal.adress"),
    ("port: eighty\n", "port"),
    ("temporal:\n  address: ${NOPE}\n", "temporal.address: environment variable ${NOPE} is not set"),
    ("port: [1\n", "not valid YAML"),
    ("- a\n- b\n", "top level must be a mapping"),
])
def test_invalid_file_names_file_and_key(tmp_path, text, needle):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigFileError) as err:
        load_settings({"HOME": str(tmp_path), "SIMPLETUNER_ENTERPRISE_CONFIG": str(path)})
    assert str(path) in str(err.value) and needle in str(err.value)


def test_missing_named_file_and_bad_env_value(tmp_path):
    with pytest.raises(ConfigFileError, match="file not found"):
        load_settings({"SIMPLETUNER_ENTERPRISE_CONFIG": str(tmp_path / "none.yaml")})
    with pytest.raises(ConfigFileError, match="heartbeat_timeout_seconds"):
        load_settings({"HOME": str(tmp_path), "SIMPLETUNER_HEARTBEAT_TIMEOUT": "-5"})


@pytest.mark.parametrize("network, keys", [
    ("  trust_proxy_headers: true\n", "network.trust_proxy_headers"),
    ("  trusted_proxies: ['127.0.0.1/32']\n", "network.trusted_proxies"),
    ("  trust_proxy_headers: true\n  trusted_proxies: ['10.0.0.0/8']\n",
     "network.trust_proxy_headers and network.trusted_proxies"),
])
def test_single_user_mode_is_refused_behind_trusted_proxies(tmp_path, network, keys):
    path = tmp_path / "conf.yaml"
    path.write_text("auth:\n  single_user_mode: true\nnetwork:\n" + network)
    with pytest.raises(ConfigFileError) as err:
        load_settings({"HOME": str(tmp_path), "SIMPLETUNER_ENTERPRISE_CONFIG": str(path)})
    assert str(path) in str(err.value) and "auth.single_user_mode" in str(err.value) and keys in str(err.value)
    path.write_text("auth:\n  single_user_mode: false\nnetwork:\n" + network)  # proxies alone are fine
    load_settings({"HOME": str(tmp_path), "SIMPLETUNER_ENTERPRISE_CONFIG": str(path)})
    path.write_text("auth:\n  single_user_mode: true\n")  # and so is single-user mode alone, on loopback
    assert load_settings({"HOME": str(tmp_path), "SIMPLETUNER_ENTERPRISE_CONFIG": str(path)}).auth.single_user_mode
