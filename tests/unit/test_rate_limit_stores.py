"""The counters on each backend, with a clock the test sets: SQLite (a file beside the app database),
PostgreSQL (the app database) and Redis (a real server). Each counts like the window on its own,
keeps clients and rules apart, stays exact when many requests of one client arrive at once through
two independent stores (two API replicas), and forgets what is older than its window."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import pytest
import redis
from sqlalchemy import text

from activities.db.engine import init_db, make_engine
from activities.ratelimit.database_store import DatabaseStore, counter_database_url
from activities.ratelimit.limiter import RateLimiter
from activities.ratelimit.redis_store import CLIENTS, PREFIX, RedisStore
from activities.ratelimit.rules import Rule, RuleSet
from activities.ratelimit.window import decide


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def rule(name: str = "r", calls: int = 5, period: float = 60.0) -> Rule:
    return Rule(name, None, calls, period, None)


RULES = RuleSet([], rule("default", 100, 60.0))


@pytest.fixture(params=["sqlite", "postgresql", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make_store(backend: str, request: pytest.FixtureRequest, tmp_path):
    """``make_store()``: a new, independent store on the test's backend (as a second replica would have)."""
    made: list = []
    if backend == "redis":
        url = request.getfixturevalue("redis_url")

        def make():
            made.append(RedisStore(url, longest_period=600.0))
            return made[-1]
    else:
        app_url = f"sqlite:///{tmp_path / 'app.db'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")
        if backend == "postgresql":
            engine = make_engine(app_url)
            init_db(engine)
            with engine.begin() as conn:
                conn.execute(text("DELETE FROM ratelimitwindow"))
            engine.dispose()

        def make():
            made.append(DatabaseStore(counter_database_url(app_url)))
            return made[-1]
    yield make
    for store in made:
        if isinstance(store, DatabaseStore):
            store.close()


@pytest.fixture
async def limiter(make_store) -> AsyncIterator[tuple[RateLimiter, Clock]]:
    clock = Clock()
    limiter = RateLimiter(RULES, make_store(), clock)
    yield limiter, clock
    await limiter.close()


def test_the_sqlite_counters_live_beside_the_app_database(tmp_path):
    beside = counter_database_url(f"sqlite:///{tmp_path}/simpletuner.db")
    assert beside == f"sqlite:///{tmp_path}/simpletuner.rate_limits.db"
    assert counter_database_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"


async def test_counts_like_the_sliding_window(limiter):
    limiter, clock = limiter
    start = clock.now
    offsets = [0, 1, 2, 3, 4, 30, 59.99, 60.0, 60.5, 61.0, 61.0, 200, 200.1]
    expected_hits: list[float] = []
    for offset in offsets:
        clock.now = start + offset
        got = await limiter.hit(rule(), "203.0.113.5")
        want, expected_hits = decide(expected_hits, clock.now, 5, 60.0)
        assert (got.allowed, got.remaining) == (want.allowed, want.remaining), offset
        assert got.reset_at == pytest.approx(want.reset_at, abs=1e-6) and got.retry_after == pytest.approx(
            want.retry_after, abs=1e-6)


async def test_clients_and_rules_are_counted_apart(limiter):
    limiter, _ = limiter
    login, other = rule("login", calls=2), rule("other", calls=2)
    assert [(await limiter.hit(login, "198.51.100.1")).allowed for _ in range(3)] == [True, True, False]
    assert (await limiter.hit(login, "198.51.100.2")).allowed  # another address
    assert (await limiter.hit(other, "198.51.100.1")).allowed  # another rule
    assert (await limiter.hit(login, "2001:db8::1")).allowed


async def test_simultaneous_requests_through_two_replicas_are_counted_exactly(make_store, backend):
    clock = Clock()
    replicas = [RateLimiter(RULES, make_store(), clock), RateLimiter(RULES, make_store(), clock)]
    limit = rule(calls=25, period=60.0)
    try:
        if backend == "redis":
            results = await asyncio.gather(*(replicas[i % 2].hit(limit, "192.0.2.7") for i in range(80)))
            allowed = [d.allowed for d in results]
        else:  # blocking stores: many threads, each with its own connection, all at once
            allowed, barrier = [], threading.Barrier(16)

            def burst(store: DatabaseStore) -> None:
                barrier.wait()
                for _ in range(5):
                    allowed.append(store.hit("r|192.0.2.7", "192.0.2.7", clock.now, 25, 60.0).allowed)
            threads = [threading.Thread(target=burst, args=(replicas[i % 2].store,)) for i in range(16)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
        assert len(allowed) == 80 and allowed.count(True) == 25
    finally:
        for replica in replicas:
            await replica.close()


async def test_forgets_what_is_older_than_its_window(limiter, backend, request):
    limiter, clock = limiter
    for client in ("203.0.113.1", "203.0.113.2"):
        await limiter.hit(rule(period=10.0), client)
    await limiter.hit(rule(period=120.0), "203.0.113.3")
    assert await limiter.tracked_clients() == 3
    clock.now += 30  # the two 10 s windows are over
    assert await limiter.tracked_clients() == 1
    if backend == "redis":
        r = redis.Redis.from_url(request.getfixturevalue("redis_url"))
        assert 0 < r.pttl(PREFIX + "r|203.0.113.3") <= 120_000  # Redis drops a window after its period
        assert r.pttl(PREFIX + "r|203.0.113.1") <= 10_000
        assert r.zcard(CLIENTS) == 3 and r.pttl(CLIENTS) > 0
        r.close()
        return
    with limiter.store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM ratelimitwindow")).scalar() == 3
    limiter._next_prune = 0.0  # the next request deletes the expired counters (at most once a minute)
    await limiter.hit(rule(period=120.0), "203.0.113.3")
    with limiter.store.engine.connect() as conn:
        left = conn.execute(text("SELECT client FROM ratelimitwindow")).scalars().all()
    assert left == ["203.0.113.3"]
