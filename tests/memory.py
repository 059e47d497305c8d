"""A process's resident memory from ``/proc``, and the peak of it while something runs (sampled every
20 ms in a thread), for the memory tests and the benchmarks."""

from __future__ import annotations

import threading
from pathlib import Path


def rss_bytes(pid: int, key: str = "VmRSS") -> int:
    """``VmRSS`` (or another ``Vm*`` line, e.g. ``VmHWM``) of ``pid`` in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {key} for pid {pid}")


class PeakRss:
    """``with PeakRss(pid) as watch: ...``; then ``watch.baseline``, ``watch.peak``, ``watch.growth``."""

    def __init__(self, pid: int, every: float = 0.02) -> None:
        self.pid, self.every = pid, every
        self.baseline = self.peak = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._done.wait(self.every):
            self.peak = max(self.peak, rss_bytes(self.pid))

    def __enter__(self) -> "PeakRss":
        self.baseline = self.peak = rss_bytes(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes(self.pid))

    @property
    def growth(self) -> int:
        return self.peak - self.baseline
