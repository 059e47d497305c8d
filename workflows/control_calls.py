"""The job workflow's control activities (local, against the database), and their cancel handling.

When a workflow is cancelled while it awaits an activity, the SDK cancels that activity and the
await raises an ``ActivityError`` whose cause is ``CancelledError``, not ``asyncio.CancelledError``.
A workflow that cleans up in ``except asyncio.CancelledError`` then skips its clean-up, and the SDK
still closes it as cancelled. A control activity is a short database write: it is better finished
than cut, so ``finish_then_cancel`` lets it end and only then raises ``asyncio.CancelledError``.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import is_cancelled_exception

CONTROL_ACTIVITY_TIMEOUT = timedelta(seconds=30)
CONTROL_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10))
CANCEL_CLEANUP_PATCH = "cancel-cleanup-v1"  # runs started before it replay the old way


async def control_activity(name: str, arg: Any, result_type: type | None = None, *, finish_on_cancel: bool) -> Any:
    """Run the local control activity ``name``; with ``finish_on_cancel`` a workflow cancel lets it
    end first (``finish_then_cancel``), without it the SDK cancels it (runs before the patch)."""
    if finish_on_cancel:
        return await finish_then_cancel(workflow.start_local_activity(
            name, arg, result_type=result_type, start_to_close_timeout=CONTROL_ACTIVITY_TIMEOUT,
            retry_policy=CONTROL_RETRY))
    return await workflow.execute_local_activity(name, arg, result_type=result_type,
                                                 start_to_close_timeout=CONTROL_ACTIVITY_TIMEOUT,
                                                 retry_policy=CONTROL_RETRY)


async def finish_then_cancel(handle: asyncio.Future) -> Any:
    """The result of a started activity, awaited to its end even if the workflow is cancelled
    meanwhile; then that cancel is raised as ``asyncio.CancelledError``."""
    cancelled = False
    while not handle.done():
        try:
            await workflow.wait([handle])
        except asyncio.CancelledError:
            cancelled = True
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()  # the cancel is remembered here; later awaits must not repeat it
    if cancelled or (is_cancelled_exception(handle.exception() or Exception())
                     and workflow.cancellation_reason() is not None):
        raise asyncio.CancelledError()
    return handle.result()


def is_workflow_cancel(err: BaseException) -> bool:
    """A cancellation-shaped error while the workflow's cancel was requested."""
    return isinstance(err, asyncio.CancelledError) or (
        is_cancelled_exception(err) and workflow.cancellation_reason() is not None)
