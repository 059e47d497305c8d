"""The sliding window: a request is allowed when fewer than ``calls`` requests of the same client and
rule arrived in the ``period`` seconds before it (a hit exactly ``period`` old no longer counts).

Only allowed requests are recorded, so a client that keeps knocking while refused gets in again as
soon as its oldest counted request leaves the window. There is no edge where a fixed window would
let ``2 × calls`` through around its boundary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_at: float  # unix time at which one more request fits (the pivot hit leaves the window)
    retry_after: float  # seconds until then when refused; 0 when allowed

    def headers(self) -> list[tuple[bytes, bytes]]:
        found = [(b"x-ratelimit-limit", str(self.limit).encode()),
                 (b"x-ratelimit-remaining", str(self.remaining).encode()),
                 (b"x-ratelimit-reset", str(math.ceil(self.reset_at)).encode())]
        if not self.allowed:
            found.append((b"retry-after", str(self.retry_seconds).encode()))
        return found

    @property
    def retry_seconds(self) -> int:
        return max(1, math.ceil(self.retry_after))


def pivot_index(count: int, calls: int) -> int:
    """Of ``count`` hits in the window (oldest first), the one whose expiry lets one more in: the
    oldest when there is room left, else the one that brings the count below ``calls``."""
    return max(0, count - calls)


def outcome(allowed: bool, count: int, pivot: float, now: float, calls: int, period: float) -> Decision:
    """``count``: hits in the window after this request; ``pivot``: the hit ``pivot_index`` names."""
    reset_at = pivot + period
    return Decision(allowed, calls, max(0, calls - count), reset_at, 0.0 if allowed else max(0.0, reset_at - now))


def decide(hits: list[float], now: float, calls: int, period: float) -> tuple[Decision, list[float]]:
    """The decision for a request at ``now`` given the recorded ``hits``, and the hits to keep."""
    kept = sorted(h for h in hits if h > now - period)
    allowed = len(kept) < calls
    if allowed:
        kept = sorted([*kept, now])
    return outcome(allowed, len(kept), kept[pivot_index(len(kept), calls)], now, calls, period), kept
