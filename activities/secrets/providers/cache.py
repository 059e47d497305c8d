"""A small time-bounded cache for remote providers, which are paid and slow per call. Only answers are
kept (a value, or "not there"); a failure is never cached."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

_ABSENT = object()


class TtlCache:
    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl_seconds
        self._clock = clock
        self._items: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, load: Callable[[], Any]) -> Any:
        """The cached answer for ``key``, or ``load()``'s (kept for ``ttl`` seconds unless it raises)."""
        now = self._clock()
        with self._lock:
            expires, value = self._items.get(key, (0.0, _ABSENT))
        if value is not _ABSENT and now < expires:
            return value
        value = load()
        if self.ttl > 0:
            with self._lock:
                self._items[key] = (self._clock() + self.ttl, value)
        return value

    def forget(self, key: str | None = None) -> None:
        with self._lock:
            if key is None:
                self._items.clear()
            else:
                self._items.pop(key, None)
