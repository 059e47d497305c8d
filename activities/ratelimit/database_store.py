"""Counting in a SQL database; atomic across processes and replicas.

PostgreSQL (the app database): one ``INSERT ... ON CONFLICT DO UPDATE`` per request, in autocommit,
so one round trip; the conflicting row is locked, so concurrent requests of one client are counted
one after the other. SQLite: one short ``BEGIN IMMEDIATE`` transaction (read, decide, write) in a file
of its own beside the app database, so counting never queues behind the app's writers and the app's
reads keep never waiting for a write lock.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from activities.db.engine import make_engine
from activities.db.models_rate_limit import RateLimitWindow
from activities.ratelimit.window import Decision, decide, outcome, pivot_index

_PG_HIT = text("""
INSERT INTO ratelimitwindow AS w (key, client, hits, allowed, expires_at)
VALUES (:key, :client, jsonb_build_array(CAST(:now AS double precision)), true, :expires)
ON CONFLICT (key) DO UPDATE SET
  allowed = (SELECT count(*) FROM jsonb_array_elements_text(w.hits) AS e(v)
             WHERE CAST(e.v AS double precision) > :cutoff) < :calls,
  hits = (SELECT coalesce(jsonb_agg(k.v ORDER BY k.v), CAST('[]' AS jsonb)) FROM (
            SELECT CAST(e.v AS double precision) AS v FROM jsonb_array_elements_text(w.hits) AS e(v)
             WHERE CAST(e.v AS double precision) > :cutoff
            UNION ALL
            SELECT CAST(:now AS double precision)
             WHERE (SELECT count(*) FROM jsonb_array_elements_text(w.hits) AS e(v)
                    WHERE CAST(e.v AS double precision) > :cutoff) < :calls) AS k),
  client = excluded.client,
  expires_at = excluded.expires_at
RETURNING allowed, hits
""")
_SQLITE_READ = text("SELECT hits FROM ratelimitwindow WHERE key = :key")
_SQLITE_WRITE = text("""
INSERT INTO ratelimitwindow (key, client, hits, allowed, expires_at)
VALUES (:key, :client, :hits, :allowed, :expires)
ON CONFLICT (key) DO UPDATE SET client = excluded.client, hits = excluded.hits, allowed = excluded.allowed,
  expires_at = excluded.expires_at
""")
_PRUNE = text("DELETE FROM ratelimitwindow WHERE expires_at < :now")
_TRACKED = text("SELECT count(DISTINCT client) FROM ratelimitwindow WHERE expires_at > :now")


def counter_database_url(app_database_url: str) -> str:
    """Where the ``database`` backend counts: the app database itself, or for a SQLite app database
    the file beside it (``simpletuner.db`` → ``simpletuner.rate_limits.db``)."""
    if not app_database_url.startswith("sqlite:///"):
        return app_database_url
    path = Path(app_database_url.removeprefix("sqlite:///"))
    return f"sqlite:///{path.with_name(path.stem + '.rate_limits' + (path.suffix or '.db'))}"


class DatabaseStore:
    """Blocking calls: the limiter runs them in a worker thread."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sqlite = url.startswith("sqlite")
        self._engine: Engine | None = None  # made on first use: building the app touches no file
        self._lock = threading.Lock()

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    self._engine = self._make_engine()
        return self._engine

    def _make_engine(self) -> Engine:
        if self.sqlite:
            engine = make_engine(self.url)
            RateLimitWindow.__table__.create(engine, checkfirst=True)  # type: ignore[attr-defined]
            return engine
        # PostgreSQL: the app's start-up created the table (init_db). No pre-ping (it would be a second
        # round trip); a connection the server dropped is replaced on the one retry in ``hit``.
        return create_engine(self.url, pool_size=5, max_overflow=20, isolation_level="AUTOCOMMIT")

    def hit(self, key: str, client: str, now: float, calls: int, period: float) -> Decision:
        params = {"key": key, "client": client, "now": now, "cutoff": now - period, "calls": calls,
                  "expires": now + period}
        if self.sqlite:
            return self._sqlite_hit(params, now, calls, period)
        try:
            return self._pg_hit(params, now, calls, period)
        except DBAPIError as exc:
            if not exc.connection_invalidated:  # a pooled connection the server closed: once more, fresh
                raise
            return self._pg_hit(params, now, calls, period)

    def _pg_hit(self, params: dict, now: float, calls: int, period: float) -> Decision:
        with self.engine.connect() as conn:
            allowed, hits = conn.execute(_PG_HIT, params).one()
        hits = [float(h) for h in hits]
        return outcome(bool(allowed), len(hits), hits[pivot_index(len(hits), calls)], now, calls, period)

    def _sqlite_hit(self, params: dict, now: float, calls: int, period: float) -> Decision:
        with self.engine.begin() as conn:  # BEGIN IMMEDIATE: one writer at a time, across processes
            raw = conn.execute(_SQLITE_READ, params).scalar()
            decision, kept = decide(json.loads(raw) if raw else [], now, calls, period)
            conn.execute(_SQLITE_WRITE, {**params, "hits": json.dumps(kept), "allowed": decision.allowed})
        return decision

    def prune(self, now: float) -> int:
        with self.engine.begin() as conn:
            return conn.execute(_PRUNE, {"now": now}).rowcount

    def tracked_clients(self, now: float) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(_TRACKED, {"now": now}).scalar() or 0)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
