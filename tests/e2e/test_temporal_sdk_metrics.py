"""The Temporal SDK's own metrics: a worker host started with SIMPLETUNER_TEMPORAL_METRICS_ADDRESS and
an agent started with --temporal-metrics-address serve ``temporal_*`` families for Prometheus, each
for the namespace it works in; the API, started with the same environment, does not take the port."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.ports import free_port
from tests.promtool import run

pytestmark = pytest.mark.e2e


def _temporal_samples(url: str) -> list[str] | None:
    try:
        answer = httpx.get(url, timeout=3.0, trust_env=False)
    except httpx.HTTPError:
        return None
    lines = [line for line in answer.text.splitlines() if line.startswith("temporal_")]
    return lines or None


def test_worker_host_and_agent_serve_temporal_sdk_metrics(stack_factory):
    host_port, agent_port = free_port(), free_port()
    stack = stack_factory(extra_env={"SIMPLETUNER_TEMPORAL_METRICS_ADDRESS": f"127.0.0.1:{host_port}"})
    host_url = f"http://127.0.0.1:{host_port}/metrics"
    lines = stack.wait_for(lambda: _temporal_samples(host_url), 30, f"temporal_ metrics at {host_url}",
                           watch=[stack.worker_host])
    assert any(f'namespace="{stack.namespace}"' in line for line in lines)
    assert any(f'namespace="{stack.gpu_namespace}"' in line for line in lines)  # both of its clients report
    text = httpx.get(host_url, timeout=3.0, trust_env=False).text
    assert run("check", "metrics", text=text).returncode in (0, 3)  # parsed (lint findings are the SDK's own)

    worker_id, token = stack.create_worker("sdk-metrics", {"pool": "sdk-metrics"})
    agent = stack.start_agent(token, extra_args=["--temporal-metrics-address", f"127.0.0.1:{agent_port}"])
    agent_url = f"http://127.0.0.1:{agent_port}/metrics"
    lines = stack.wait_for(lambda: [line for line in _temporal_samples(agent_url) or []
                                    if f'namespace="{stack.gpu_namespace}"' in line] or None,
                           30, f"the agent's temporal_ metrics at {agent_url}", watch=[agent])
    assert not any(f'namespace="{stack.namespace}"' in line for line in lines)  # agents never reach control
    assert any(re.match(r"temporal_\w+", line) for line in lines)
    assert stack.worker(worker_id)["status"] == "idle"
