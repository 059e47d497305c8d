"""The rate limiter an API process uses: its rules, its store, a clock.

Built once per process from the settings (``build_limiter``). When the store cannot be reached the
limiter raises ``RateLimitUnavailable`` and the request is refused (503): the limits are a protection,
so they fail closed like the rest of the control plane. At start-up an unreachable Redis stops the
process with one line naming ``SIMPLETUNER_RATE_LIMIT_REDIS_URL`` instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis
from anyio import to_thread
from sqlalchemy.exc import SQLAlchemyError

from activities.ratelimit.database_store import DatabaseStore, counter_database_url
from activities.ratelimit.redis_store import RedisStore, redacted
from activities.ratelimit.rules import Rule, RuleSet
from activities.ratelimit.window import Decision
from activities.settings import ConfigFileError, Settings

log = logging.getLogger(__name__)
PRUNE_EVERY = 60.0  # seconds between deletions of expired counters (per process)


class RateLimitUnavailable(Exception):
    """The counters cannot be read or written; the message says which backend."""


class RedisUnreachable(ConfigFileError):
    """Raised at start-up: the configured Redis does not answer."""


class RateLimiter:
    def __init__(self, rules: RuleSet, store: DatabaseStore | RedisStore, clock: Callable[[], float] = time.time,
                 bypass_loopback: bool = False) -> None:
        self.rules, self.store, self.clock, self.bypass_loopback = rules, store, clock, bypass_loopback
        self._next_prune = 0.0

    @property
    def backend(self) -> str:
        return "redis" if isinstance(self.store, RedisStore) else "database"

    async def hit(self, rule: Rule, client: str) -> Decision:
        """Count one request of ``client`` under ``rule`` (if it is allowed) and say whether it is."""
        now = self.clock()
        try:
            if isinstance(self.store, RedisStore):
                return await self.store.hit(f"{rule.name}|{client}", client, now, rule.calls, rule.period)
            decision = await to_thread.run_sync(self.store.hit, f"{rule.name}|{client}", client, now, rule.calls,
                                                rule.period)
            await self._prune(now)
            return decision
        except (redis.RedisError, OSError) as exc:
            log.warning("rate-limit counters in Redis unavailable: %s", exc)
            raise RateLimitUnavailable("rate limiting is unavailable (Redis does not answer); "
                                       "try again shortly") from exc
        except SQLAlchemyError as exc:
            log.warning("rate-limit counters in the database unavailable: %s", exc)
            raise RateLimitUnavailable("rate limiting is unavailable (the database does not answer); "
                                       "try again shortly") from exc

    async def _prune(self, now: float) -> None:
        """Database counters of clients gone quiet are deleted now and then (Redis expires its own)."""
        if now < self._next_prune or not isinstance(self.store, DatabaseStore):
            return
        self._next_prune = now + PRUNE_EVERY
        try:
            await to_thread.run_sync(self.store.prune, now)
        except SQLAlchemyError as exc:
            log.warning("could not delete expired rate-limit counters: %s", exc)

    async def tracked_clients(self) -> int:
        """Client addresses with a request counted in a current window (any rule)."""
        now = self.clock()
        if isinstance(self.store, RedisStore):
            return await self.store.tracked_clients(now)
        return await to_thread.run_sync(self.store.tracked_clients, now)

    async def close(self) -> None:
        if isinstance(self.store, RedisStore):
            await self.store.close()
        else:
            self.store.close()


def build_limiter(settings: Settings, clock: Callable[[], float] = time.time) -> RateLimiter | None:
    """None when rate limiting is off. With Redis, checks it answers (``RedisUnreachable`` if not)."""
    config = settings.rate_limit
    if not config.enabled:
        return None
    rules = RuleSet.from_settings(config)
    if config.backend == "redis":
        assert config.redis_url  # validated with the settings
        store: DatabaseStore | RedisStore = RedisStore(config.redis_url, rules.longest_period)
        try:
            store.check()
        except (redis.RedisError, OSError) as exc:
            where = redacted(config.redis_url)
            raise RedisUnreachable(f"SIMPLETUNER_RATE_LIMIT_REDIS_URL: cannot use Redis at {where} ({exc}); rate "
                                   "limiting needs it (or set SIMPLETUNER_RATE_LIMIT_BACKEND=database)") from exc
    else:
        store = DatabaseStore(counter_database_url(settings.db_url))
    return RateLimiter(rules, store, clock, config.bypass_loopback)
