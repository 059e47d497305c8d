"""After a change that can free or add capacity (a limit, a quota, a priority), run an admission pass
at once and tell the admitted jobs: admission is event-driven, nothing polls."""

from __future__ import annotations

import asyncio

from activities.temporal.admission import notify_admitted, run_pass
from api.state import AppState


async def nudge(state: AppState) -> None:
    await asyncio.to_thread(run_pass, state.db.session)
    await notify_admitted(state.db.session, state.temporal)
