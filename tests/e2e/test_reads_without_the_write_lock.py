"""Reads never wait for SQLite's write lock: while another process holds it (as a long admission pass
or a burst of submissions would), signed-in GETs, event streams and authentication still answer,
and writes queue behind it as before instead of failing."""

from __future__ import annotations

import sqlite3
import threading

import httpx
import pytest

pytestmark = pytest.mark.e2e


def test_gets_answer_while_the_write_lock_is_held(stack):
    stack.put_config("tiny")
    job_id = stack.submit(config_name="tiny", target="worker", worker_labels={"pool": "none"})["job_id"]
    holder = sqlite3.connect(stack.data_dir / "simpletuner.db", isolation_level=None, timeout=30)
    holder.execute("BEGIN IMMEDIATE")  # the write lock, held until the end of the reads
    try:
        reader = httpx.Client(base_url=stack.api_url, timeout=10, trust_env=False,
                              headers={"Authorization": f"Bearer {stack.admin_token}"})
        for path in ("/api/cloud/jobs", f"/api/cloud/jobs/{job_id}", "/api/queue", "/api/queue/stats",
                     "/api/users/me", "/api/approvals/requests/pending/count", "/api/cloud/health/ready"):
            assert reader.get(path).status_code == 200, path  # well within the 30 s a writer would wait
        written: list[int] = []
        writer = threading.Thread(target=lambda: written.append(
            stack.client.put("/api/configs/while-locked", json={"command": ["true"]}).status_code))
        writer.start()
        writer.join(1.0)
        assert not written  # the write waits for the lock...
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    writer.join(15)
    assert written == [201]  # ...and goes through once it is free
