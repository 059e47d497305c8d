"""The agent's command line: settings from flags and env, usage errors, a rejected token."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gpu_agent.cli import UsageError, build_parser, config_from_args, main

ENV_VARS = ("SIMPLETUNER_ORCHESTRATOR_URL", "SIMPLETUNER_WORKER_TOKEN", "SIMPLETUNER_WORKER_NAME",
            "SIMPLETUNER_WORKER_PERSISTENT", "SIMPLETUNER_WORKER_WORK_DIR", "SIMPLETUNER_TEMPORAL_ADDRESS",
            "SIMPLETUNER_WORKER_GPU_COUNT", "SIMPLETUNER_WORKER_SHUTDOWN_GRACE")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


def resolve(argv: list[str], env: dict[str, str] | None = None):
    return config_from_args(build_parser().parse_args(argv), env or {})


def test_missing_token_exits_2_with_message(capsys):
    assert main(["--orchestrator-url", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert "--worker-token (or SIMPLETUNER_WORKER_TOKEN) is required" in err
    assert len(err.strip().splitlines()) == 1


def test_missing_url_exits_2_with_message(capsys, monkeypatch):
    monkeypatch.setenv("SIMPLETUNER_WORKER_TOKEN", "t")
    assert main([]) == 2
    assert "--orchestrator-url (or SIMPLETUNER_ORCHESTRATOR_URL) is required" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--gpu-count", "0"], "--gpu-count must be an integer >= 1"),
    (["--gpu-count", "two"], "--gpu-count must be an integer >= 1"),
    (["--shutdown-grace", "-1"], "--shutdown-grace must be a number of seconds >= 0"),
    (["--shutdown-grace", "soon"], "--shutdown-grace must be a number of seconds >= 0"),
])
def test_bad_values_exit_2(capsys, argv, message):
    assert main(["--orchestrator-url", "http://x", "--worker-token", "t", *argv]) == 2
    assert message in capsys.readouterr().err


def test_bad_url_and_unknown_flag_exit_2(capsys):
    assert main(["--orchestrator-url", "ftp://x", "--worker-token", "t"]) == 2
    assert "must start with http:// or https://" in capsys.readouterr().err
    assert main(["--no-such-flag"]) == 2


def test_defaults():
    config = resolve(["--orchestrator-url", "https://api.example", "--worker-token", "tok"])
    assert config.orchestrator_url == "https://api.example" and config.worker_token == "tok"
    assert config.name == socket.gethostname()
    assert config.persistent is False
    assert config.work_dir == Path("~/.simpletuner/agent").expanduser()
    assert config.temporal.address is None and config.gpu_count is None
    assert config.shutdown_grace == 30.0 and config.ssl_verify is True


def test_env_values_are_used():
    env = {"SIMPLETUNER_ORCHESTRATOR_URL": "http://env", "SIMPLETUNER_WORKER_TOKEN": "env-token",
           "SIMPLETUNER_WORKER_NAME": "gpu-box", "SIMPLETUNER_WORKER_PERSISTENT": "Yes",
           "SIMPLETUNER_WORKER_WORK_DIR": "/tmp/agent", "SIMPLETUNER_TEMPORAL_ADDRESS": "t:7233",
           "SIMPLETUNER_WORKER_GPU_COUNT": "4", "SIMPLETUNER_WORKER_SHUTDOWN_GRACE": "2.5"}
    config = resolve([], env)
    assert (config.orchestrator_url, config.worker_token, config.name) == ("http://env", "env-token", "gpu-box")
    assert config.persistent is True and config.work_dir == Path("/tmp/agent")
    assert config.temporal.address == "t:7233" and config.gpu_count == 4 and config.shutdown_grace == 2.5


@pytest.mark.parametrize("value, expected", [("true", True), ("1", True), ("yes", True), ("false", False),
                                             ("0", False), ("", False)])
def test_persistent_env_parsing(value, expected):
    env = {"SIMPLETUNER_ORCHESTRATOR_URL": "http://x", "SIMPLETUNER_WORKER_TOKEN": "t",
           "SIMPLETUNER_WORKER_PERSISTENT": value}
    assert resolve([], env).persistent is expected


def test_flags_win_over_env():
    env = {"SIMPLETUNER_ORCHESTRATOR_URL": "http://env", "SIMPLETUNER_WORKER_TOKEN": "env-token",
           "SIMPLETUNER_WORKER_NAME": "env-name", "SIMPLETUNER_WORKER_GPU_COUNT": "4",
           "SIMPLETUNER_WORKER_SHUTDOWN_GRACE": "9", "SIMPLETUNER_TEMPORAL_ADDRESS": "env:7233"}
    config = resolve(["--orchestrator-url", "http://flag", "--worker-token", "flag-token", "--name", "flag-name",
                      "--gpu-count", "2", "--shutdown-grace", "0", "--temporal-address", "flag:7233",
                      "--persistent", "--ssl-no-verify", "--work-dir", "/tmp/w"], env)
    assert (config.orchestrator_url, config.worker_token, config.name) == ("http://flag", "flag-token", "flag-name")
    assert config.gpu_count == 2 and config.shutdown_grace == 0.0 and config.temporal.address == "flag:7233"
    assert config.persistent is True and config.ssl_verify is False and config.work_dir == Path("/tmp/w")


def test_temporal_credentials_come_from_this_host(tmp_path):
    """CA, client certificate and key (mTLS) and an API key are read on the agent host; a certificate
    without its key, or a file that is not PEM, is a usage error naming the flag."""
    pem = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_bytes(pem)
    base = ["--orchestrator-url", "http://x", "--worker-token", "t"]
    env = {"SIMPLETUNER_WORKER_TEMPORAL_API_KEY": "key-from-env"}
    config = resolve(base + ["--temporal-tls-ca", str(tmp_path / "ca.pem"), "--temporal-tls-cert",
                             str(tmp_path / "cert.pem"), "--temporal-tls-key", str(tmp_path / "key.pem"),
                             "--hardware-type", "a100-80gb"], env)
    access = config.temporal
    assert access.ca_cert == pem and access.client_cert == pem and access.client_key == pem
    assert access.api_key == "key-from-env" and config.hardware_type == "a100-80gb"
    with pytest.raises(UsageError, match="go together"):
        resolve(base + ["--temporal-tls-cert", str(tmp_path / "cert.pem")])
    (tmp_path / "junk").write_text("not a certificate")
    with pytest.raises(UsageError, match="--temporal-tls-ca .*not a PEM"):
        resolve(base + ["--temporal-tls-ca", str(tmp_path / "junk")])
    with pytest.raises(UsageError, match="cannot read"):
        resolve(base + ["--temporal-tls-ca", str(tmp_path / "missing.pem")])
    with pytest.raises(UsageError, match="hardware-type"):
        resolve(base + ["--hardware-type", "A100 80GB"])


def test_usage_error_type():
    with pytest.raises(UsageError):
        resolve(["--worker-token", "t"])


class _Reject401(BaseHTTPRequestHandler):
    calls: list[tuple[str, str | None, dict]] = []

    def do_POST(self):  # noqa: N802 (http.server naming)
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        self.calls.append((self.path, self.headers.get("X-Worker-Token"), body))
        payload = json.dumps({"detail": "invalid worker token"}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def test_rejected_token_exits_2_with_clear_message(capsys, tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Reject401)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        code = main(["--orchestrator-url", url, "--worker-token", "wrong", "--name", "n1", "--gpu-count", "1",
                     "--work-dir", str(tmp_path)])
    finally:
        server.shutdown()
        server.server_close()
    assert code == 2
    assert "invalid worker token (rotated or mistyped?)" in capsys.readouterr().err
    path, token, body = _Reject401.calls[0]
    assert path == "/api/workers/register" and token == "wrong"
    assert body["name"] == "n1" and body["gpu_count"] == 1 and body["persistent"] is False
    assert {"hostname", "gpu_name", "gpu_vram_gb", "accelerator_type", "current_job_id", "version"} <= set(body)
    assert [c[0] for c in _Reject401.calls] == ["/api/workers/register"]  # no disconnect with a bad token
