"""Submit → completed on a real agent: outputs, logs, progress, listing, idempotent resubmission."""

from __future__ import annotations

import hashlib
import re
import uuid

import pytest

from tests.e2e.stack import progress_percent

pytestmark = pytest.mark.e2e


def test_job_completes_with_outputs_logs_progress_and_idempotent_replay(stack):
    worker_id, token = stack.create_worker("agent-1", {"pool": "main"})
    stack.start_agent(token, name="agent-1")
    stack.put_config("quick", steps=20, step_delay_seconds=0.01)
    body = {"config_name": "quick", "target": "worker", "worker_labels": {"pool": "main"},
            "idempotency_key": f"e2e-{uuid.uuid4().hex}"}

    first = stack.client.post("/api/queue/submit", json=body)
    answer = stack.expect(first, 201)
    job_id = answer["job_id"]
    assert answer["idempotent_replay"] is False
    assert answer["status"] in ("pending", "queued", "running", "completed"), answer
    assert answer["job"]["job_id"] == job_id and answer["job"]["config_name"] == "quick"

    replay = stack.expect(stack.client.post("/api/queue/submit", json=body), 200)
    assert replay["job_id"] == job_id and replay["idempotent_replay"] is True

    job = stack.wait_job(job_id, "completed", timeout=90)
    assert job["attempt"] == 1, job
    assert job["agent_id"] == worker_id and job["agent_name"], job
    assert job["error"] in (None, ""), job
    assert job["started_at"] and job["finished_at"], job
    assert job["target"] == "worker" and job["worker_labels"] == {"pool": "main"}, job
    percent = progress_percent(job["progress"])
    assert percent is not None and percent >= 100.0 - 1e-6, job["progress"]
    # The trainer's own last report arrived (not only the read model's 100 % on completion).
    assert job["progress"].get("step") == job["progress"].get("total_steps") == 20, job["progress"]

    # Outputs: listed with size and sha256, downloadable by name and by their url, bytes match.
    assert job["outputs"], f"a completed tiny-numpy job has outputs: {job}"
    for output in job["outputs"]:
        assert set(output) >= {"name", "size", "sha256", "url"}, output
        assert re.fullmatch(r"[0-9a-f]{64}", output["sha256"]), output
        for url in (f"/api/cloud/jobs/{job_id}/outputs/{output['name']}", output["url"]):
            response = stack.client.get(url)
            assert response.status_code == 200, (url, response.status_code, response.text[:500])
            assert len(response.content) == output["size"], (url, len(response.content), output)
            assert hashlib.sha256(response.content).hexdigest() == output["sha256"], (url, output)
    missing = stack.client.get(f"/api/cloud/jobs/{job_id}/outputs/no-such-output.bin")
    assert missing.status_code == 404, missing.text

    # Logs: non-empty, all from attempt 1, per-attempt sequence numbers without duplicates.
    logs = stack.expect(stack.client.get(f"/api/cloud/jobs/{job_id}/logs"), 200)
    assert logs["job_id"] == job_id
    lines = logs["lines"]
    assert lines, "a completed job has log lines"
    assert all(set(line) >= {"attempt", "seq", "line"} for line in lines), lines[:3]
    assert {line["attempt"] for line in lines} == {1}, lines[:3]
    seqs = [line["seq"] for line in lines]
    assert len(seqs) == len(set(seqs)), "duplicate log sequence numbers"

    # Listing and filters.
    listed = stack.jobs()
    assert listed["total"] == 1 and [j["job_id"] for j in listed["jobs"]] == [job_id], listed
    assert [j["job_id"] for j in stack.jobs(status="completed")["jobs"]] == [job_id]
    assert stack.jobs(status="running")["total"] == 0
    assert [j["job_id"] for j in stack.jobs(config="quick")["jobs"]] == [job_id]
    assert stack.jobs(config="no-such-config")["total"] == 0
    assert [j["job_id"] for j in stack.jobs(user=job["owner"])["jobs"]] == [job_id]

    # Replaying after the job finished still returns the same job and starts nothing new.
    late = stack.expect(stack.client.post("/api/queue/submit", json=body), 200)
    assert late["job_id"] == job_id and late["idempotent_replay"] is True, late
    assert late["status"] == "completed", late
    assert stack.job_count() == 1
    assert stack.workflow_status(job_id) == "COMPLETED"

    # The same key with a different request is refused, and writes nothing.
    conflict = stack.client.post("/api/queue/submit", json={**body, "worker_labels": {"pool": "other"}})
    assert conflict.status_code == 409, (conflict.status_code, conflict.text)
    assert stack.job_count() == 1
