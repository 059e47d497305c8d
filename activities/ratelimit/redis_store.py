"""Counting in Redis: a sorted set of request times per rule and client, changed by one Lua script
(trim the window, count, add when allowed, set the expiry) that Redis runs atomically, so every
replica sees the same count. A second sorted set keeps each client address with the time its last
window ends, for ``tracked_clients``. Needs Redis 6.2 or later (``ZADD ... GT``)."""

from __future__ import annotations

import math
import secrets
from urllib.parse import urlsplit, urlunsplit

import redis
import redis.asyncio as aioredis

from activities.ratelimit.window import Decision, outcome

PREFIX = "simpletuner:ratelimit:"
CLIENTS = PREFIX + "clients"
TIMEOUT = 2.0  # seconds: a Redis that does not answer must not hold requests for long

# KEYS: window, clients. ARGV: now, cutoff, calls, window ttl (ms), member, client, window end, clients ttl (ms)
_HIT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local count = redis.call('ZCARD', KEYS[1])
local calls = tonumber(ARGV[3])
local allowed = 0
if count < calls then
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[5])
  count = count + 1
  allowed = 1
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('ZADD', KEYS[2], 'GT', ARGV[7], ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[8])
local index = count - calls
if index < 0 then index = 0 end
local pivot = redis.call('ZRANGE', KEYS[1], index, index, 'WITHSCORES')
return {allowed, count, pivot[2]}
"""


def redacted(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class RedisStore:
    def __init__(self, url: str, longest_period: float) -> None:
        self.url = url
        self.longest_period = longest_period
        self.client = aioredis.Redis.from_url(url, socket_connect_timeout=TIMEOUT, socket_timeout=TIMEOUT)
        self._script = self.client.register_script(_HIT)

    def check(self) -> None:
        """A blocking PING at start-up; raises ``redis.RedisError`` when Redis does not answer."""
        probe = redis.Redis.from_url(self.url, socket_connect_timeout=TIMEOUT, socket_timeout=TIMEOUT)
        try:
            probe.ping()
        finally:
            probe.close()

    async def hit(self, key: str, client: str, now: float, calls: int, period: float) -> Decision:
        member = f"{now!r}:{secrets.token_hex(4)}"
        allowed, count, pivot = await self._script(
            keys=[PREFIX + key, CLIENTS],
            args=[repr(now), repr(now - period), calls, max(1, math.ceil(period * 1000)), member, client,
                  repr(now + period), max(1, math.ceil(self.longest_period * 1000))])
        return outcome(bool(allowed), int(count), float(pivot), now, calls, period)

    async def tracked_clients(self, now: float) -> int:
        return int(await self.client.zcount(CLIENTS, f"({now!r}", "+inf"))

    async def close(self) -> None:
        await self.client.aclose()
