"""Agents as placement sees them: undrain and label changes take effect at once, a silent agent
cannot capture jobs, hardware types pick the pool and the price, and agent uploads are refused for
anything but the agent's own current attempt."""

from __future__ import annotations

import hashlib
import threading

import httpx
import pytest
import yaml

pytestmark = pytest.mark.e2e


def test_undrain_and_new_labels_take_effect_for_placement_at_once(stack):
    worker_id, token = stack.create_worker("agent-u", {"pool": "old"})
    stack.start_agent(token, name="agent-u")
    stack.put_config("quick", steps=3)
    stack.drain(worker_id)
    stack.wait_worker(worker_id, "draining")
    job_id = stack.submit(config_name="quick", target="worker", worker_labels={"pool": "new"})["job_id"]
    stack.wait_job(job_id, "queued", timeout=30)
    patched = stack.expect(stack.client.patch(f"/api/admin/workers/{worker_id}", json={"labels": {"pool": "new"}}),
                           200)
    assert patched["labels"] == {"pool": "new"} and patched["draining"] is True
    stack.assert_stays(lambda: stack.job(job_id), lambda j: j["status"] == "queued", 2.0,
                       "the job to wait while its only matching agent drains")
    undrained = stack.expect(stack.client.post(f"/api/admin/workers/{worker_id}/undrain"), 200)
    assert undrained["draining"] is False
    done = stack.wait_job(job_id, "completed", timeout=60)
    assert done["agent_id"] == worker_id
    assert stack.worker(worker_id)["labels"] == {"pool": "new"}
    bad = stack.client.patch(f"/api/admin/workers/{worker_id}", json={"labels": {"bad key!": "x"}})
    assert bad.status_code == 422
    assert stack.client.post("/api/admin/workers/w_missing/undrain").status_code == 404
    from tests.e2e.test_users_and_auth import audit_rows
    assert [row[1] for row in audit_rows(stack, "worker.undrained")] == [worker_id]
    assert [row[1] for row in audit_rows(stack, "worker.updated")] == [worker_id]


class SilentAgent:
    """Registers and heartbeats over REST like an agent, but never polls its task queue."""

    def __init__(self, stack, name: str, labels: dict) -> None:
        self.worker_id, self.token = stack.create_worker(name, labels)
        self.client = httpx.Client(base_url=stack.api_url, headers={"X-Worker-Token": self.token}, trust_env=False)
        stack.expect(self.client.post("/api/workers/register", json={"name": name, "gpu_count": 1}), 200)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)
        self.thread.start()

    def _beat(self) -> None:
        while not self.stop.wait(0.5):
            try:
                self.client.post("/api/workers/heartbeat", json={"state": "idle"})
            except httpx.HTTPError:
                pass

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.client.close()


def test_a_silent_agent_cannot_capture_jobs(stack_factory):
    stack = stack_factory(extra_env={"SIMPLETUNER_DISPATCH_START_TIMEOUT": "3"})
    silent = [SilentAgent(stack, f"silent-{n}", {"pool": "s"}) for n in range(2)]  # the bigger idle pool
    try:
        real_id, token = stack.create_worker("real", {"pool": "s", "real": "yes"})
        stack.start_agent(token, name="real")
        stack.put_config("quick", steps=3)
        job_id = stack.submit(config_name="quick", target="worker", worker_labels={"pool": "s"})["job_id"]
        done = stack.wait_job(job_id, "completed", timeout=90)
        assert done["agent_id"] == real_id and done["attempt"] == 1, done
        for agent in silent:
            shown = stack.worker(agent.worker_id)
            assert shown["healthy"] is False and "unstarted" in shown["unhealthy_reason"], shown
        assert stack.worker(real_id)["healthy"] is True
        second = stack.submit(config_name="quick", target="worker", worker_labels={"pool": "s"})["job_id"]
        assert stack.wait_job(second, "completed", timeout=60)["agent_id"] == real_id  # straight to a healthy pool
    finally:
        for agent in silent:
            agent.close()


def test_the_hardware_type_picks_the_pool_and_the_price(stack_factory):
    stack = stack_factory(start=False)
    stack.enterprise_config.write_text(yaml.safe_dump({"cost": {"hourly_rates_usd": {"a100-80gb": 7200.0,
                                                                                       "a100*": 3600.0}}}, sort_keys=False))
    stack.start()
    a100_id, a100_token = stack.create_worker("a100", {"pool": "hw"})
    cpu_id, cpu_token = stack.create_worker("cpu", {"pool": "hw"})
    stack.start_agent(a100_token, name="a100", extra_args=["--hardware-type", "a100-80gb"])
    stack.start_agent(cpu_token, name="cpu")
    assert (stack.worker(a100_id)["hardware_type"], stack.worker(cpu_id)["hardware_type"]) == ("a100-80gb", "cpu")
    body = stack.tiny_config()
    body.update(hardware_type="a100*", estimated_hours=0.001, args={**body["args"], "steps": 20,
                                                                    "step_delay_seconds": 0.05})
    stack.expect(stack.client.put("/api/configs/big", json=body), 201)
    stack.expect(stack.client.put("/api/configs/huge", json={**body, "hardware_type": "h100*"}), 201)
    job = stack.submit(config_name="big", target="worker")
    assert job["job"]["cost_estimate_usd"] == pytest.approx(3.6)  # the config's glob: a100* at $3600/h
    done = stack.wait_job(job["job_id"], "completed", timeout=60)
    assert done["agent_id"] == a100_id and done["hardware_type"] == "a100-80gb", done
    assert done["cost_usd"] == pytest.approx(done["gpu_hours"] * 7200.0, abs=0.01)  # what really ran
    waiting = stack.submit(config_name="huge", target="worker")["job_id"]
    reason = stack.wait_job(waiting, "queued", timeout=30)["queue_reason"]
    stack.wait_for(lambda: stack.job(waiting)["queue_reason"], 30, "the hardware to be named",
                   until=lambda text: text and "h100*" in text)
    assert reason is not None


def test_agent_uploads_are_refused_for_any_attempt_but_its_own_current_one(stack):
    worker_id, token = stack.create_worker("uploader", {"pool": "up"})
    other_id, other_token = stack.create_worker("other", {"pool": "up-2"})
    stack.start_agent(token, name="uploader")
    stack.put_config("slow", steps=60, step_delay_seconds=0.1)
    job_id = stack.submit(config_name="slow", target="worker", worker_labels={"pool": "up"})["job_id"]
    job, _ = stack.wait_running(job_id, timeout=60)
    data = b"weights"
    digest = hashlib.sha256(data).hexdigest()

    def put(tok: str, attempt: int, payload: bytes = data, sha: str = digest, name: str = "x.bin"):
        return stack.anon.put(f"/api/workers/job/{job_id}/outputs/{name}", params={"attempt": attempt},
                              headers={"X-Worker-Token": tok, "X-Content-SHA256": sha}, content=payload)

    assert put(other_token, job["attempt"]).status_code == 409  # not the agent that claimed it
    assert put(token, job["attempt"] + 1).status_code == 409  # an attempt it never claimed
    assert put(token, job["attempt"], sha="0" * 64).status_code == 400  # checksum of the stored bytes
    assert put(token, job["attempt"], name="../escape").status_code in (400, 404, 422)
    assert stack.anon.put(f"/api/workers/job/{job_id}/outputs/x.bin", headers={"X-Worker-Token": token},
                          content=data).status_code == 422  # which attempt is required
    stack.expect(stack.cancel(job_id), 202)
    stack.wait_job(job_id, "cancelled", timeout=30)
    assert put(token, job["attempt"]).status_code == 409  # a finished job takes nothing
    assert not (stack.data_dir / "outputs" / job_id / f"attempt-{job['attempt']}" / "x.bin").exists()
