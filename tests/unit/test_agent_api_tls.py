"""The agent and the job CLI against an ``https://`` API whose certificate comes from a private CA:
trusted with ``--ca-bundle`` / ``SIMPLETUNER_CA_BUNDLE``, refused with a clear message without it, and
``--ssl-no-verify`` never silent. The "API" is a real TLS server that refuses the worker token (401),
so an agent that reached it stops at once with its own clear message."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator

import pytest

from cli.api_client import EXIT_UNREACHABLE, EXIT_USAGE, ApiClient, CliError
from gpu_agent.cli import UsageError, build_parser, config_from_args, main
from tests.servers.https_server import RecordingServer
from tests.servers.tls_proxy import make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def api(pki) -> Iterator[RecordingServer]:
    with RecordingServer(pki["server_cert"], pki["server_key"]) as server:
        server.status, server.detail = 401, "invalid worker token"
        yield server


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("SIMPLETUNER_CA_BUNDLE", "SIMPLETUNER_ORCHESTRATOR_URL", "SIMPLETUNER_WORKER_TOKEN",
                 "SIMPLETUNER_LOG_LEVEL", "SIMPLETUNER_LOG_FILE", "SIMPLETUNER_LOG_FORMAT", "SSL_CERT_FILE",
                 "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def restore_logging():
    """The agent's CLI configures the root logger (level, handlers): put them back for later tests."""
    root = logging.getLogger()
    saved = root.level, root.handlers[:], {name: logging.getLogger(name).level for name in ("httpx", "httpcore")}
    yield
    root.setLevel(saved[0])
    root.handlers[:] = saved[1]
    for name, level in saved[2].items():
        logging.getLogger(name).setLevel(level)


def run_agent(api: RecordingServer, tmp_path, *extra: str) -> int:
    return main(["--orchestrator-url", api.url(), "--worker-token", "wt-test", "--name", "tls-agent",
                 "--gpu-count", "1", "--work-dir", str(tmp_path / "work"), *extra])


def resolve(argv: list[str], env: dict[str, str]):
    return config_from_args(build_parser().parse_args(["--orchestrator-url", "https://x", "--worker-token", "t",
                                                       *argv]), env)


def test_agent_with_the_ca_bundle_reaches_the_api(api, pki, tmp_path, capsys):
    assert run_agent(api, tmp_path, "--ca-bundle", str(pki["ca"])) == 2
    err = capsys.readouterr().err
    assert "invalid worker token" in err and "WARNING" not in err
    assert [(r["method"], r["path"], r["headers"]["X-Worker-Token"]) for r in api.requests] == \
        [("POST", "/api/workers/register", "wt-test")]


def test_agent_takes_the_bundle_from_the_environment(api, pki, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SIMPLETUNER_CA_BUNDLE", str(pki["ca"]))
    assert run_agent(api, tmp_path) == 2
    assert "invalid worker token" in capsys.readouterr().err
    assert [r["path"] for r in api.requests] == ["/api/workers/register"]


def test_agent_without_the_bundle_refuses_the_api_with_a_clear_message(api, tmp_path, capsys):
    assert run_agent(api, tmp_path) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("simpletuner worker: error:")]
    assert len(lines) == 1, err
    assert f"the API at {api.url()} presented a TLS certificate this agent does not trust" in lines[0]
    assert "unable to get local issuer certificate" in lines[0] and "--ca-bundle" in lines[0]
    assert api.requests == []  # the token never left the agent


def test_ssl_no_verify_reaches_the_api_and_says_so(api, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SIMPLETUNER_LOG_LEVEL", "ERROR")  # even with warnings filtered from the log
    assert run_agent(api, tmp_path, "--ssl-no-verify") == 2
    err = capsys.readouterr().err
    assert "simpletuner worker: WARNING: --ssl-no-verify: the API's TLS certificate is NOT verified" in err
    assert "development only" in err and "invalid worker token" in err
    assert [r["path"] for r in api.requests] == ["/api/workers/register"]


def test_ca_bundle_usage_errors(tmp_path, pki):
    with pytest.raises(UsageError, match=r"--ca-bundle \(or SIMPLETUNER_CA_BUNDLE\): .*missing.pem: cannot read"):
        resolve(["--ca-bundle", str(tmp_path / "missing.pem")], {})
    junk = tmp_path / "junk.pem"
    junk.write_text("nope")
    with pytest.raises(UsageError, match="no PEM certificate"):
        resolve([], {"SIMPLETUNER_CA_BUNDLE": str(junk)})
    with pytest.raises(UsageError, match="--ssl-no-verify and --ca-bundle contradict"):
        resolve(["--ssl-no-verify", "--ca-bundle", str(pki["ca"])], {})
    # the flag wins over the variable (and the variable's file is then not used)
    config = resolve(["--ssl-no-verify"], {"SIMPLETUNER_CA_BUNDLE": str(junk)})
    assert config.ssl_verify is False and config.ca_bundle is None
    config = resolve(["--ca-bundle", str(pki["ca"])], {"SIMPLETUNER_CA_BUNDLE": str(junk)})
    assert config.ssl_verify is True and config.ca_bundle == str(pki["ca"])


def cli_args() -> argparse.Namespace:
    return argparse.Namespace(url=None, token="st_key", json=False)


def test_job_cli_honours_the_ca_bundle(pki, monkeypatch):
    with RecordingServer(pki["server_cert"], pki["server_key"]) as server:
        monkeypatch.setenv("SIMPLETUNER_URL", server.url())
        with pytest.raises(CliError) as err:
            ApiClient.from_args(cli_args()).get("/api/cloud/jobs")
        assert err.value.code == EXIT_UNREACHABLE
        assert "TLS certificate is not trusted" in str(err.value) and "SIMPLETUNER_CA_BUNDLE" in str(err.value)
        assert server.requests == []

        monkeypatch.setenv("SIMPLETUNER_CA_BUNDLE", str(pki["ca"]))
        api = ApiClient.from_args(cli_args())
        assert api.get("/api/cloud/jobs") == {"path": "/api/cloud/jobs", "ok": True}
        assert api.copy().get("/api/cloud/jobs")["ok"]  # the per-thread copies trust it too
        assert server.requests[0]["headers"]["Authorization"] == "Bearer st_key"


def test_job_cli_unreadable_bundle_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.setenv("SIMPLETUNER_CA_BUNDLE", str(tmp_path / "missing.pem"))
    with pytest.raises(CliError) as err:
        ApiClient.from_args(cli_args())
    assert err.value.code == EXIT_USAGE and "SIMPLETUNER_CA_BUNDLE" in str(err.value)
