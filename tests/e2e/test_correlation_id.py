"""One correlation id end to end: a job submitted with ``X-Correlation-ID`` is logged under that id by
the API, the worker host (its workflow and activities) and the GPU agent, and the training process gets
it as ``SIMPLETUNER_CORRELATION_ID``; a cancel carries its own; a malformed id is replaced."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

PRINT_ID = ("import os, sys; print('training sees ' + os.environ.get('SIMPLETUNER_CORRELATION_ID', 'nothing')); "
            "sys.stdout.flush()")


def json_lines(path: Path) -> list[dict]:
    records = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except ValueError:
                pass
    return records


def test_a_jobs_id_reaches_every_process_and_the_training(stack_factory):
    stack = stack_factory(extra_env={"SIMPLETUNER_LOG_FORMAT": "json"})
    _, token = stack.create_worker("cid-agent", {"pool": "cid"})
    agent = stack.start_agent(token, name="cid-agent")
    stack.put_config("print-id", command=[sys.executable, "-c", PRINT_ID])
    cid = f"e2e-{uuid.uuid4().hex[:12]}"
    answer = stack.client.post("/api/queue/submit", headers={"X-Correlation-ID": cid},
                               json={"config_name": "print-id", "target": "worker", "worker_labels": {"pool": "cid"}})
    assert answer.status_code == 201 and answer.headers["X-Correlation-ID"] == cid, answer.text
    job_id = answer.json()["job_id"]
    stack.wait_job(job_id, "completed", timeout=90)
    assert any(f"training sees {cid}" in line["line"] for line in stack.logs(job_id)), stack.logs(job_id)

    def mine(proc) -> list[dict]:
        return [r for r in json_lines(proc.log_path) if r.get("correlation_id") == cid]

    def check(proc, what: str) -> list[dict]:
        records = stack.wait_for(lambda: mine(proc) or None, 20, f"{what} lines with the id")
        for record in records:
            assert set(record) == {"timestamp", "level", "logger", "message", "correlation_id", "source", "extra"}
        return records

    api = check(stack.api, "API")
    assert any(r["extra"].get("job_id") == job_id and "submitted" in r["message"] for r in api), api
    # the agent's claim and reports for the job reach the API under the job's id (uvicorn's access lines)
    assert any(f"/api/workers/job/{job_id}/claim" in r["message"] for r in api), api
    host = check(stack.worker_host, "worker host")
    assert any(r["extra"].get("job_id") == job_id and r["extra"].get("step") == "completed" for r in host), host
    assert any("temporal_workflow" in r["extra"] and "run" in r["message"] for r in host), host  # workflow.logger
    on_agent = check(agent, "agent")
    assert any(r["extra"].get("job_id") == job_id and r["extra"].get("attempt") == 1 for r in on_agent), on_agent

    # a cancel is its own request: the API logs it under its own id, not the job's
    stack.put_config("waits", command=[sys.executable, "-c", "import time; time.sleep(600)"])
    second = stack.submit(config_name="waits", target="worker", worker_labels={"pool": "cid"})["job_id"]
    stack.wait_job(second, "running", timeout=60)
    cancel_id = f"cancel-{uuid.uuid4().hex[:8]}"
    cancelled = stack.client.post(f"/api/cloud/jobs/{second}/cancel", headers={"X-Correlation-ID": cancel_id})
    assert cancelled.status_code == 202 and cancelled.headers["X-Correlation-ID"] == cancel_id
    stack.wait_job(second, "cancelled", timeout=60)
    assert any(r.get("correlation_id") == cancel_id and r["extra"].get("job_id") == second
               for r in json_lines(stack.api.log_path))

    # a malformed id is replaced, and the raw value appears in no log
    raw = "bad id with spaces " + "z" * 200
    replaced = stack.client.get("/api/cloud/jobs", headers={"X-Correlation-ID": raw})
    assert replaced.status_code == 200 and replaced.headers["X-Correlation-ID"] != raw
    assert "z" * 100 not in stack.api.log_path.read_text()
