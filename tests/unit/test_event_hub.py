"""The per-process event hub: however many streams listen, the database is polled by one loop; every
listener is woken with the new events; the hub holds every event above its floor and nothing is
polled while nobody listens."""

from __future__ import annotations

import asyncio

from activities.audit.trail import emit_event
from activities.db.engine import init_db, make_engine
from activities.db.models import Job
from activities.jobs import events
from activities.runtime import Database
from api.event_hub import EventHub
from tests.helpers import wait_until


def database(tmp_path) -> Database:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    engine = make_engine(url)
    init_db(engine)
    return Database(engine, make_engine(url, read_only=True))


def add_event(db: Database, job_id: str, owner: str) -> None:
    with db.session() as s:
        if s.get(Job, job_id) is None:
            s.add(Job(id=job_id, owner_id=owner, owner_name=owner, config_name="c", target="worker", request_hash=""))
        emit_event(s, "job.queued", job_id, "queued", {})
        s.commit()


async def test_one_poller_for_many_listeners(tmp_path, monkeypatch):
    db = database(tmp_path)
    add_event(db, "job-old", "ann")
    reads = []
    original = events.after_with_owners
    monkeypatch.setattr(events, "after_with_owners", lambda s, c, n: reads.append(c) or original(s, c, n))
    hub = EventHub(db, poll_seconds=0.01)
    hub.start()
    try:
        await asyncio.sleep(0.05)
        assert reads == []  # nobody listens: nothing is polled
        for _ in range(200):
            hub.join()
        await wait_until(lambda: hub.live, 5, "the hub to start polling")
        start = hub.last_id
        assert hub.since(start) == [] and hub.since(start - 1) is None  # older than it holds: the database

        async def listener() -> list[str | None]:
            assert await hub.wait(start, 10)
            return [e.owner_id for e in hub.since(start)]

        waiting = [asyncio.create_task(listener()) for _ in range(200)]
        await asyncio.sleep(0.05)
        polls_before = len(reads)
        add_event(db, "job-a", "ann")
        add_event(db, "job-b", "bob")
        seen = await asyncio.gather(*waiting)
        assert all(s[:1] == ["ann"] for s in seen)  # each woke with the new events and their owners
        await wait_until(lambda: [e.job_id for e in hub.since(start)] == ["job-a", "job-b"], 5, "both events")
        polls = len(reads) - polls_before
        assert polls < 200  # one loop polls for all 200, not one per listener
        for _ in range(200):
            hub.leave()
        await wait_until(lambda: not hub.live, 5, "the hub to stop polling")
        settled = len(reads)
        await asyncio.sleep(0.05)
        assert len(reads) == settled
    finally:
        await hub.stop()


async def test_postgresql_notifications_wake_the_hub(postgres_url, monkeypatch):
    """On PostgreSQL an event's commit wakes the hub at once (``LISTEN``/``NOTIFY``), not at its next poll."""
    from api import event_hub
    from tests.conftest import empty_postgres

    empty_postgres(postgres_url)
    monkeypatch.setattr(event_hub, "SAFETY_POLL_SECONDS", 600.0)
    engine = make_engine(postgres_url)
    db = Database(engine)
    hub = EventHub(db, poll_seconds=600.0)  # polling alone would not see the event within the test
    hub.start()
    try:
        hub.join()
        await wait_until(lambda: hub.live and hub.listening, 20, "the hub to listen")
        start = hub.last_id
        await asyncio.to_thread(add_event, db, "job-pg", "ann")
        assert await hub.wait(start, 20), "a notification woke the hub"
        assert [e.job_id for e in hub.since(start)] == ["job-pg"]
    finally:
        hub.leave()
        await hub.stop()
        engine.dispose()
