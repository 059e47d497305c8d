"""Engine and sessions. SQLite runs in WAL mode with a busy timeout so processes share one file.

Writers begin ``IMMEDIATE`` (they queue for SQLite's one write lock instead of failing later); the
read engine (``read_only=True``) begins deferred with ``query_only`` on, so reads (every GET, every
authentication, every event stream) never wait for or hold the write lock.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, create_engine

import activities.db
from activities.db.migrate import add_missing_columns


def make_engine(url: str, read_only: bool = False) -> Engine:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            dbapi_conn.isolation_level = None  # let SQLAlchemy's "begin" event issue BEGIN
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            if read_only:
                cur.execute("PRAGMA query_only=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):  # writers queue up instead of failing with "database is locked"; readers never wait
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
    else:
        # a connection per busy thread (the API's and the worker host's thread pools), checked before use
        engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=30)
    return engine


def load_models() -> None:
    """Import every ``activities/db/models*.py`` so all tables are known to the metadata."""
    for module in pkgutil.iter_modules(activities.db.__path__):
        if module.name.startswith("models"):
            importlib.import_module(f"activities.db.{module.name}")


load_models()


def init_db(engine: Engine) -> None:
    SQLModel.metadata.create_all(engine)
    add_missing_columns(engine)


def ping(session: Session) -> None:
    """A trivial round trip: raises the driver's error when the database is unusable."""
    session.exec(text("SELECT 1"))  # type: ignore[call-overload]


def session(engine: Engine) -> Session:
    return Session(engine, expire_on_commit=False)
