"""An agent can be deleted only once it is offline (its heartbeat timed out)."""

from __future__ import annotations

import signal

import pytest

from tests.e2e.stack import detail_text

pytestmark = pytest.mark.e2e


def test_delete_online_worker_conflicts_then_succeeds_when_offline(stack):
    worker_id, token = stack.create_worker("doomed", {"pool": "delete"})
    agent = stack.start_agent(token, name="doomed")

    refused = stack.client.delete(f"/api/admin/workers/{worker_id}")
    assert refused.status_code == 409, (refused.status_code, refused.text)
    assert detail_text(refused), refused.text
    assert stack.worker(worker_id)["status"] in ("idle", "busy"), "a refused delete changes nothing"

    agent.kill(signal.SIGKILL)
    agent.wait_exit(10)
    stack.wait_worker(worker_id, "offline", timeout=stack.heartbeat_timeout + 15)

    deleted = stack.client.delete(f"/api/admin/workers/{worker_id}")
    assert deleted.status_code in (200, 202, 204), (deleted.status_code, deleted.text)
    assert worker_id not in [w["id"] for w in stack.workers()]
    assert stack.client.delete(f"/api/admin/workers/{worker_id}").status_code == 404
    assert stack.worker_heartbeat(token).status_code == 401, "a deleted worker's token is dead"


def test_delete_unknown_worker_is_404(stack):
    response = stack.client.delete("/api/admin/workers/w-does-not-exist")
    assert response.status_code == 404, (response.status_code, response.text)
    assert "w-does-not-exist" in detail_text(response) or "not found" in detail_text(response), response.text
