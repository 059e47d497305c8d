"""Fixtures shared by every test directory: the databases the service tests run on.

``database_url`` (and ``db``, a session on it) makes a test run twice, on a fresh SQLite file and on
a real PostgreSQL server (one server and one database per test process, started on first use, every
table emptied before each test).
``redis_url`` is a real Redis server (one per test process, emptied before each test).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import text
from sqlmodel import Session, SQLModel

from activities.db.engine import init_db, make_engine, session as open_session
from tests.servers.postgres_server import PostgresServer
from tests.servers.redis_server import RedisServer


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres: PostgresServer) -> Iterator[str]:
    url = postgres.create_database()
    engine = make_engine(url)
    init_db(engine)
    engine.dispose()
    yield url


def empty_postgres(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            names = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'app.db'}"
    url = request.getfixturevalue("postgres_url")
    empty_postgres(url)
    return url


@pytest.fixture
def db(database_url: str) -> Iterator[Session]:
    """A session on a database with the app's tables, on each backend (``database_url``)."""
    engine = make_engine(database_url)
    init_db(engine)
    with open_session(engine) as s:
        yield s
    engine.dispose()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real Redis server per test process (started on first use, nothing persisted)."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's Redis, emptied for this test."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    client.close()
    return redis_server.url
