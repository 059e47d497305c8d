"""Small helpers shared by the unit and workflow tests: wait on conditions, never on time."""

from __future__ import annotations

import asyncio
import os
import time


async def wait_until(condition, timeout: float = 15.0, what: str = "condition", interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(interval)


def group_gone(pgid: int) -> bool:
    """No process (zombies included) is left in the process group."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False
