"""Telling admitted jobs' workflows that they hold a slot, and running an admission pass on demand.

A pass admits in the database; the workflows learn of it by the ``admission_granted`` signal, and
each confirms the admission in the database before it goes on. Every admitted job not yet told is
told by the next call, so a lost signal is repaired.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

from sqlmodel import Session
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.capacity import admission
from workflows.contracts import ADMISSION_GRANTED_SIGNAL

log = logging.getLogger(__name__)


async def notify_admitted(session_factory: Callable[[], Session], client: Client, skip: str | None = None) -> int:
    """Signal every admitted-but-untold job; returns how many were told."""
    def pending() -> list[str]:
        with session_factory() as session:
            return [a.job_id for a in admission.unnotified(session) if a.job_id != skip]

    job_ids = await asyncio.to_thread(pending)
    if not job_ids:
        return 0

    async def tell(job_id: str) -> str | None:
        try:
            await client.get_workflow_handle(job_id).signal(ADMISSION_GRANTED_SIGNAL)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:  # a finished workflow needs no telling
                log.warning("could not tell job %s it was admitted: %s", job_id, exc)
                return None
        return job_id

    told = [j for j in await asyncio.gather(*(tell(j) for j in job_ids)) if j]

    def mark() -> None:
        with session_factory() as session:
            admission.mark_notified(session, told)
            session.commit()

    await asyncio.to_thread(mark)
    return len(told)


def run_pass(session_factory: Callable[[], Session]) -> list[str]:
    """One admission pass in its own transaction; returns the newly admitted job ids."""
    with session_factory() as session:
        admitted = [d.admission.job_id for d in admission.admit_pass(session) if d.admit]
        session.commit()
        return admitted


async def pass_and_notify(session_factory: Callable[[], Session], client: Client) -> None:
    """After a change that can free or add capacity (a limit, a quota, a priority)."""
    await asyncio.to_thread(run_pass, session_factory)
    await notify_admitted(session_factory, client)
