"""The harness's Temporal dev server: start, health, search attributes, namespaces, restart, stop."""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.temporal_server import TemporalDevServer
from workflows.contracts import SEARCH_ATTRIBUTES

pytestmark = pytest.mark.e2e

PROJECT_ATTRIBUTES = {key.name for key in SEARCH_ATTRIBUTES}


def _start_orphan_workflow(server: TemporalDevServer, namespace: str) -> str:
    """A workflow nobody runs: it stays RUNNING, which is what we need to see it survive a restart."""
    workflow_id = f"survivor-{uuid.uuid4().hex[:8]}"

    async def go(client):
        await client.start_workflow("NobodyRunsThis", id=workflow_id, task_queue=f"nobody-{workflow_id}")

    server.call(go, namespace=namespace)
    return workflow_id


def test_start_restart_stop_keeps_db_and_port(tmp_path):
    server = TemporalDevServer(tmp_path / "temporal")
    try:
        server.start()
        assert server.running and server.healthy()
        assert PROJECT_ATTRIBUTES <= set(server.list_search_attributes("default"))

        namespace = server.create_namespace()
        assert PROJECT_ATTRIBUTES <= set(server.list_search_attributes(namespace))
        workflow_id = _start_orphan_workflow(server, namespace)

        port, db_file = server.port, server.db_file
        server.restart()
        assert server.port == port and server.address.endswith(f":{port}")
        assert db_file.exists() and server.healthy()
        assert server.describe_workflow(workflow_id, namespace).status.name == "RUNNING"

        server.stop()
        assert not server.running
        with pytest.raises(Exception):
            server.healthy(timeout=5)
    finally:
        server.stop()
    assert "start #2" in server.log_path.read_text()


def test_session_server_is_healthy(temporal):
    assert temporal.healthy()
    assert temporal.pollers(f"nobody-polls-{uuid.uuid4().hex[:8]}") == []
