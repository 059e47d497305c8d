"""MailboxWatcherWorkflow: keeps one ``watch_mailbox`` activity running while an IMAP mailbox is set.

The activity holds the IMAP IDLE connection and heartbeats; when it dies (network, server restart,
worker-host restart) Temporal retries it with backoff. A change of the e-mail channel arrives as a
signal: the running activity is cancelled and started again with the new settings. The history is
renewed with continue-as-new.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import MAILBOX_CHANGED_SIGNAL, MAILBOX_WATCHER_WORKFLOW, MailboxConfig

WATCH_HEARTBEAT = timedelta(seconds=30)
WATCH_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                          maximum_interval=timedelta(seconds=30))  # unlimited attempts
IDLE_RECHECK = timedelta(hours=1)
ROUNDS_PER_RUN = 50


@workflow.defn(name=MAILBOX_WATCHER_WORKFLOW)
class MailboxWatcherWorkflow:
    def __init__(self) -> None:
        self.changed = False
        self.current = MailboxConfig(configured=False)

    @workflow.signal(name=MAILBOX_CHANGED_SIGNAL)
    def config_changed(self) -> None:
        self.changed = True

    @workflow.query
    def mailbox(self) -> MailboxConfig:
        return self.current

    @workflow.run
    async def run(self) -> None:
        for _ in range(ROUNDS_PER_RUN):
            self.changed = False
            self.current = await workflow.execute_local_activity(
                "mailbox_config", result_type=MailboxConfig, start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)))
            workflow.set_current_details(f"mailbox: {self.current.description or 'not configured'}")
            if not self.current.configured:
                try:
                    await workflow.wait_condition(lambda: self.changed, timeout=IDLE_RECHECK,
                                                  timeout_summary="mailbox-config-recheck")
                except asyncio.TimeoutError:
                    pass
                continue
            handle = workflow.start_activity(
                "watch_mailbox", self.current, heartbeat_timeout=WATCH_HEARTBEAT,
                start_to_close_timeout=timedelta(days=1), retry_policy=WATCH_RETRY,
                cancellation_type=workflow.ActivityCancellationType.TRY_CANCEL,
                summary=f"IMAP IDLE {self.current.description}")
            await workflow.wait_condition(lambda: self.changed or handle.done())
            if not handle.done():
                handle.cancel()
            try:
                await handle
            except (ActivityError, asyncio.CancelledError) as err:
                workflow.logger.info("mailbox watch ended: %s", err)
            info = workflow.info()
            limit = self.current.max_history_events
            if info.is_continue_as_new_suggested() or (limit is not None and info.get_current_history_length() >= limit):
                break
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new()
