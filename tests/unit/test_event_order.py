"""Events become visible in id order on both backends: a reader that follows the stream by id (the SSE
stream, ``/api/events``) never moves past an event that commits later. On PostgreSQL concurrent
transactions take ids in one order and may commit in another, which is what ``emit_event`` guards
against; here writers do more work after emitting, in random amounts, while a reader follows."""

from __future__ import annotations

import random
import threading

from sqlmodel import select

from activities.audit.trail import emit_event
from activities.db.engine import init_db, make_engine, session as open_session
from activities.db.models import JobEvent
from activities.jobs import events

WRITERS, EACH = 8, 25


def test_a_reader_following_ids_misses_no_event(database_url):
    engine = make_engine(database_url)
    init_db(engine)
    done = threading.Event()
    errors: list[BaseException] = []

    def write(n: int) -> None:
        rng = random.Random(n)
        try:
            for i in range(EACH):
                with open_session(engine) as s:
                    emit_event(s, "test.event", f"job-{n}", None, {"i": i})
                    s.flush()
                    # More of the transaction's work after the event: a varying gap before the commit.
                    s.exec(select(JobEvent.id).where(JobEvent.job_id == f"job-{n}")).all()
                    threading.Event().wait(rng.uniform(0, 0.01))
                    s.commit()
        except BaseException as e:  # noqa: BLE001 - reported by the test
            errors.append(e)

    seen: list[int] = []

    def follow() -> None:
        cursor = 0
        while True:
            finished = done.is_set()  # read once more after the writers finished
            with open_session(engine) as s:
                batch = [e.id for e in events.after(s, cursor)]
            seen.extend(batch)
            cursor = batch[-1] if batch else cursor
            if finished and not batch:
                return

    reader = threading.Thread(target=follow)
    writers = [threading.Thread(target=write, args=(n,)) for n in range(WRITERS)]
    reader.start()
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    done.set()
    reader.join()
    assert not errors, errors
    with open_session(engine) as s:
        written = sorted(s.exec(select(JobEvent.id)).all())
    engine.dispose()
    assert len(written) == WRITERS * EACH
    assert seen == written, f"the reader skipped {sorted(set(written) - set(seen))[:10]}"


def test_a_rolled_back_transaction_writes_no_event(database_url):
    engine = make_engine(database_url)
    init_db(engine)
    with open_session(engine) as s:
        emit_event(s, "test.event", "job-x")
        s.rollback()
        emit_event(s, "test.kept", "job-y")
        s.commit()
    with open_session(engine) as s:
        assert [e.event_type for e in s.exec(select(JobEvent))] == ["test.kept"]
    engine.dispose()
