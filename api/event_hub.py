"""One database poller per API process for every ``/api/events/stream`` client.

Each open stream used to poll the database four times a second; a thousand streams were a thousand
pollers. The hub polls once (while anyone listens), keeps the most recent events in memory, and wakes
every stream when new ones arrive; each stream filters them (its owner's jobs, one job) itself. A
stream resuming from further back than the hub remembers reads that backlog from the database first,
then joins the hub.

On PostgreSQL the hub also listens for the ``NOTIFY`` every event-writing commit sends
(``activities.audit.trail``) and reads at once when one comes; it then polls only as a safety net,
and falls back to polling at the usual pace while its listening connection is down.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections import deque
from dataclasses import dataclass

import psycopg

from activities.audit.trail import EVENTS_CHANNEL
from activities.jobs import events
from activities.runtime import Database
from api import sse

log = logging.getLogger(__name__)

KEEP = 10_000  # events remembered for streams that fall behind
BATCH = 500
SAFETY_POLL_SECONDS = 5.0  # while PostgreSQL notifications wake the hub
RELISTEN_SECONDS = 1.0


@dataclass(frozen=True)
class HubEvent:
    id: int
    job_id: str | None
    owner_id: str | None
    text: str  # the SSE frame


class EventHub:
    def __init__(self, db: Database, poll_seconds: float = sse.POLL_SECONDS) -> None:
        self._db, self._poll = db, poll_seconds
        self._events: deque[HubEvent] = deque(maxlen=KEEP)
        self._ids: deque[int] = deque(maxlen=KEEP)
        self.floor = 0  # the hub holds every event above this id (and up to ``last_id``)
        self.last_id = 0
        self._listeners = 0
        self.live = False  # polling, and holding every event above ``floor``
        self._wake = asyncio.Condition()
        self._someone = asyncio.Event()
        self._nudge = asyncio.Event()  # new events may be in (a PostgreSQL notification)
        self.listening = False  # a PostgreSQL LISTEN connection is up
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._run(), name="event-hub"))
        url = self._db.engine.url
        if url.get_backend_name() == "postgresql":
            conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
            self._tasks.append(asyncio.create_task(self._listen(conninfo), name="event-hub-listen"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def join(self) -> None:
        self._listeners += 1
        self._someone.set()

    def leave(self) -> None:
        self._listeners -= 1
        if self._listeners <= 0:
            self._listeners = 0
            self._someone.clear()

    def since(self, cursor: int) -> list[HubEvent] | None:
        """Events above ``cursor``; None when the hub does not go back that far (read the database)."""
        if not self.live or cursor < self.floor:
            return None
        start = bisect.bisect_right(self._ids, cursor)
        return [self._events[i] for i in range(start, len(self._events))]

    async def wait(self, cursor: int, timeout: float) -> bool:
        """Until an event above ``cursor`` is in; False after ``timeout`` without one."""
        async with self._wake:
            try:
                await asyncio.wait_for(self._wake.wait_for(lambda: self.last_id > cursor), timeout)
                return True
            except asyncio.TimeoutError:
                return False

    async def _run(self) -> None:
        while True:
            await self._someone.wait()
            self._events.clear()
            self._ids.clear()
            self.floor = self.last_id = await asyncio.to_thread(self._read, events.latest_id)
            self.live = True
            while self._someone.is_set():
                try:
                    rows = await asyncio.to_thread(self._read, lambda s: events.after_with_owners(s, self.last_id, BATCH))
                except Exception:  # the database is briefly unavailable: streams wait, the hub retries
                    log.exception("event hub: reading events failed")
                    rows = []
                if rows:
                    self._add(rows)
                    async with self._wake:
                        self._wake.notify_all()
                if len(rows) < BATCH:
                    await self._pause()
            self.live = False  # nobody listens: stop polling until someone does

    async def _pause(self) -> None:
        """Until the next read: a notification, or the poll interval (longer while notifications come)."""
        try:
            await asyncio.wait_for(self._nudge.wait(), SAFETY_POLL_SECONDS if self.listening else self._poll)
        except asyncio.TimeoutError:
            pass
        self._nudge.clear()

    async def _listen(self, conninfo: str) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {EVENTS_CHANNEL}")
                    self.listening = True
                    self._nudge.set()  # anything committed while it was not listening
                    async for _ in conn.notifies():
                        self._nudge.set()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database is unreachable: poll at the usual pace and listen again soon
                log.warning("event hub: listening for PostgreSQL notifications failed", exc_info=True)
            self.listening = False
            await asyncio.sleep(RELISTEN_SECONDS)

    def _add(self, rows) -> None:
        for event, owner in rows:
            if len(self._ids) == self._ids.maxlen:
                self.floor = self._ids[0]  # the oldest is forgotten: streams behind it read the database
            self._events.append(HubEvent(event.id, event.job_id, owner,
                                         sse.frame(events.to_dict(event), event.event_type, event.id)))
            self._ids.append(event.id)
        self.last_id = rows[-1][0].id

    def _read(self, read):
        with self._db.read_session() as session:
            return read(session)
