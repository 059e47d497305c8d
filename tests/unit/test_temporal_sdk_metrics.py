"""Settings of the Temporal SDK metrics: a malformed address is a start-up error naming the variable, a
taken port is refused with the address (and the agent exits 2 naming its flag)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from activities.observability.temporal_sdk_metrics import MetricsAddressError, serve_sdk_metrics
from activities.settings import ConfigFileError, load_settings
from gpu_agent.cli import main as agent_main


def test_the_worker_host_setting_is_checked_at_start_up(tmp_path):
    env = {"SIMPLETUNER_ENTERPRISE_CONFIG": str(tmp_path / "none.yaml")}
    (tmp_path / "none.yaml").write_text("{}\n")
    assert load_settings(env).temporal.metrics_address is None  # off unless set
    on = load_settings({**env, "SIMPLETUNER_TEMPORAL_METRICS_ADDRESS": "0.0.0.0:9464"})
    assert on.temporal.metrics_address == "0.0.0.0:9464"
    assert load_settings({**env, "SIMPLETUNER_TEMPORAL_METRICS_ADDRESS": "[::1]:9464"}).temporal.metrics_address
    with pytest.raises(ConfigFileError, match=r"temporal\.metrics_address \(SIMPLETUNER_TEMPORAL_METRICS_ADDRESS\)"):
        load_settings({**env, "SIMPLETUNER_TEMPORAL_METRICS_ADDRESS": "http://0.0.0.0:9464/metrics"})


@pytest.fixture
def taken_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_taken_port_is_refused_with_the_address(taken_port):
    with pytest.raises(MetricsAddressError, match=f"127.0.0.1:{taken_port}: .*in use"):
        serve_sdk_metrics(f"127.0.0.1:{taken_port}")


def test_the_agent_exits_2_naming_its_flag(taken_port, capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("SIMPLETUNER_WORKER_TEMPORAL_METRICS_ADDRESS", raising=False)
    code = agent_main(["--orchestrator-url", "http://127.0.0.1:9", "--worker-token", "t", "--work-dir",
                       str(tmp_path), "--temporal-metrics-address", f"127.0.0.1:{taken_port}"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("simpletuner worker: error: --temporal-metrics-address: cannot serve the Temporal SDK "
                          f"metrics on 127.0.0.1:{taken_port}")
    assert len(err.splitlines()) == 1


def test_the_worker_host_stops_with_one_line_naming_the_setting(taken_port, tmp_path):
    """The port is taken: ``simpletuner worker-host`` exits 2 before it connects to anything."""
    (tmp_path / "empty.yaml").write_text("{}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIMPLETUNER_")}
    env.update(SIMPLETUNER_ENTERPRISE_CONFIG=str(tmp_path / "empty.yaml"), SIMPLETUNER_DATA_DIR=str(tmp_path / "data"),
               SIMPLETUNER_TEMPORAL_METRICS_ADDRESS=f"127.0.0.1:{taken_port}")
    done = subprocess.run([sys.executable, "-m", "cli.main", "worker-host"], env=env, capture_output=True, text=True,
                          timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: temporal.metrics_address (SIMPLETUNER_TEMPORAL_METRICS_ADDRESS): cannot serve "
                                f"the Temporal SDK metrics on 127.0.0.1:{taken_port}"), done.stderr
    assert not (tmp_path / "data").exists()  # stopped before opening the database
