"""SSE: the event stream carries every status change of a job and resumes with Last-Event-ID;
the log stream carries the job's log lines."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.sse import SSEReader

pytestmark = pytest.mark.e2e


def _job_events(reader: SSEReader, job_id: str) -> list[dict]:
    return [e for e in reader.drain() if (e.get("json") or {}).get("job_id") == job_id]


def _open(stack, path: str, **headers: str) -> SSEReader:
    reader = SSEReader(stack.api_url, path, {"Authorization": f"Bearer {stack.admin_token}", **headers})
    reader.start()
    stack.wait_for(lambda: reader.status or reader.error, 15, f"{path} to answer")
    assert reader.status == 200, (reader.status, reader.error)
    return reader


def _until_completed(stack, reader: SSEReader, job_id: str, what: str) -> list[dict]:
    def seen() -> list[dict]:
        if reader.error is not None:
            raise AssertionError(f"stream broke: {reader.error!r}")
        return _job_events(reader, job_id)

    return stack.wait_for(seen, 90, what, until=lambda events: any(e["json"].get("status") == "completed"
                                                                     for e in events))


def test_event_stream_and_resume(stack):
    _, token = stack.create_worker("agent-1", {"pool": "sse"})
    stack.start_agent(token, name="agent-1")
    stack.put_config("quick", steps=10, step_delay_seconds=0.01)

    live = _open(stack, "/api/events/stream")
    try:
        job_id = stack.submit(config_name="quick", target="worker", worker_labels={"pool": "sse"})["job_id"]
        mine = _until_completed(stack, live, job_id, f"a completed event for {job_id} on /api/events/stream")
    finally:
        live.close()
    for event in mine:
        assert event.get("id"), f"every event has an id for resuming: {event}"
        assert {"job_id", "status", "event_type"} <= set(event["json"]), event
    statuses = [e["json"]["status"] for e in mine]
    assert "running" in statuses and statuses[-1] == "completed", statuses
    ids = [e["id"] for e in mine]
    assert len(ids) == len(set(ids)), ids

    resumed = _open(stack, "/api/events/stream", **{"Last-Event-ID": ids[0]})
    try:
        replayed = _until_completed(stack, resumed, job_id, f"replay of {job_id}'s events after id {ids[0]}")
    finally:
        resumed.close()
    replayed_ids = [e["id"] for e in replayed]
    assert ids[0] not in replayed_ids, f"resume starts after Last-Event-ID: {replayed_ids}"
    assert set(ids[1:]) <= set(replayed_ids), (ids, replayed_ids)


def test_log_stream_carries_log_lines(stack):
    _, token = stack.create_worker("agent-1", {"pool": "sse-logs"})
    stack.start_agent(token, name="agent-1")
    stack.put_config("quick", steps=10, step_delay_seconds=0.01)
    job_id = stack.submit(config_name="quick", target="worker", worker_labels={"pool": "sse-logs"})["job_id"]
    stack.wait_job(job_id, "completed", timeout=90)
    lines = [line["line"] for line in stack.logs(job_id) if line["line"].strip()]
    assert lines

    reader = _open(stack, f"/api/cloud/jobs/{job_id}/logs/stream")
    try:
        def carries_first_line(events: list[dict]) -> bool:
            return any(lines[0] in e["data"] or (e.get("json") or {}).get("line") == lines[0] for e in events)

        stack.wait_for(lambda: list(reader.drain()), 20,
                       f"the log stream of {job_id} to carry its first log line {lines[0]!r}",
                       until=carries_first_line)
    finally:
        reader.close()


def test_many_streams_each_see_what_they_may(stack):
    """Forty streams on one API process (one database poller): the admin's see every job's events,
    a researcher's only their own, one job's stream only that job, and a resumed one its backlog."""
    from tests.e2e.test_users_and_auth import bearer_for, make_user

    _, token = stack.create_worker("agent-1", {"pool": "many"})
    stack.start_agent(token, name="agent-1")
    stack.put_config("quick", steps=5, step_delay_seconds=0.01)
    make_user(stack, "rita", "researcher")
    rita = bearer_for(stack, "rita")
    admins = [_open(stack, "/api/events/stream") for _ in range(30)]
    hers = [SSEReader(stack.api_url, "/api/events/stream", {"Authorization": rita.headers["Authorization"]})
            for _ in range(10)]
    for reader in hers:
        reader.start()
    try:
        stack.wait_for(lambda: all(r.status == 200 for r in hers), 15, "her streams to open")
        admin_job = stack.submit(config_name="quick", target="worker", worker_labels={"pool": "many"})["job_id"]
        her_job = stack.expect(rita.post("/api/queue/submit", json={"config_name": "quick", "target": "worker",
                                                                    "worker_labels": {"pool": "many"}}), 201)["job_id"]
        for reader in admins:
            _until_completed(stack, reader, admin_job, "the admin's job on every admin stream")
            _until_completed(stack, reader, her_job, "her job on every admin stream")
        for reader in hers:
            _until_completed(stack, reader, her_job, "her job on her streams")
            assert not [e for e in reader.received if (e.get("json") or {}).get("job_id") == admin_job]
        one = _open(stack, f"/api/events/stream?job_id={her_job}&last_event_id=0")
        try:
            backlog = _until_completed(stack, one, her_job, "her job's backlog on a resumed one-job stream")
            assert {e["json"]["job_id"] for e in one.received if e.get("json")} == {her_job}
            assert [e["json"]["status"] for e in backlog][0] == "pending"
        finally:
            one.close()
        with httpx.Client(base_url=stack.api_url, trust_env=False, timeout=15, headers=rita.headers) as her:
            for job in (admin_job, "job-nope"):  # not hers, or no such job: 404 at once, not a silent stream
                with her.stream("GET", f"/api/events/stream?job_id={job}") as hidden:
                    assert hidden.status_code == 404, job
    finally:
        for reader in admins + hers:
            reader.close()
