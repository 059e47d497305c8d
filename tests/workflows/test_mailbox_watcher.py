"""MailboxWatcherWorkflow on a real dev server: keeps one watch running, restarts it on a config change
and after a failure, and idles without a mailbox."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from tests.helpers import wait_until
from workflows.contracts import MAILBOX_CHANGED_SIGNAL, MailboxConfig
from workflows.mailbox_watcher import MailboxWatcherWorkflow


class FakeMailbox:
    def __init__(self) -> None:
        self.configured = False
        self.generation = 0
        self.watches: list[str] = []  # fingerprint per started watch
        self.cancelled = 0
        self.fail_next = False
        self.config_calls = 0

    @activity.defn(name="mailbox_config")
    async def config(self) -> MailboxConfig:
        self.config_calls += 1
        if not self.configured:
            return MailboxConfig(configured=False)
        return MailboxConfig(configured=True, fingerprint=f"gen-{self.generation}", description="bot@test")

    @activity.defn(name="watch_mailbox")
    async def watch(self, config: MailboxConfig) -> None:
        self.watches.append(config.fingerprint)
        if self.fail_next:
            self.fail_next = False
            raise ApplicationError("IMAP connection lost")
        try:
            while True:
                activity.heartbeat()
                await asyncio.sleep(0.1)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise


async def test_watch_follows_the_configuration(wf_env):
    fake = FakeMailbox()
    queue = f"control-{uuid.uuid4().hex[:8]}"
    async with Worker(wf_env.pyd_client, task_queue=queue, workflows=[MailboxWatcherWorkflow],
                      activities=[fake.config, fake.watch], max_heartbeat_throttle_interval=timedelta(milliseconds=200)):
        handle: WorkflowHandle = await wf_env.pyd_client.start_workflow(
            MailboxWatcherWorkflow.run, id=f"watcher-{uuid.uuid4().hex[:8]}", task_queue=queue)
        await wait_until(lambda: fake.config_calls == 1, timeout=10, what="the first configuration load")
        assert fake.watches == []  # no mailbox: nothing to watch

        fake.configured = True  # an admin adds the e-mail channel: the API signals the watcher
        await handle.signal(MAILBOX_CHANGED_SIGNAL)
        await wait_until(lambda: fake.watches == ["gen-0"], timeout=10, what="the first watch")

        fake.generation, fake.fail_next = 1, True  # new settings, and the next connection drops once
        await handle.signal(MAILBOX_CHANGED_SIGNAL)
        await wait_until(lambda: fake.watches[-2:] == ["gen-1", "gen-1"], timeout=15, what="a retried watch")
        await wait_until(lambda: fake.cancelled == 1, timeout=10, what="the old watch to stop (not left running)")

        fake.configured = False  # the channel is removed: the watch stops and nothing restarts it
        calls = fake.config_calls
        await handle.signal(MAILBOX_CHANGED_SIGNAL)
        await wait_until(lambda: fake.cancelled == 2 and fake.config_calls == calls + 1, timeout=10,
                         what="the watch to stop")
        assert (await handle.query(MailboxWatcherWorkflow.mailbox)).configured is False
        assert len(fake.watches) == 3
        await handle.terminate()


async def test_the_watcher_continues_as_new_past_its_event_limit(wf_env):
    """Every channel change adds events; past ``max_history_events`` the watcher hands over to a new
    run (well before its 50 rounds), which reads the configuration again and keeps watching."""
    fake = FakeMailbox()
    fake.configured = True
    original = fake.config

    @activity.defn(name="mailbox_config")
    async def limited() -> MailboxConfig:
        return (await original()).model_copy(update={"max_history_events": 100})

    queue = f"control-{uuid.uuid4().hex[:8]}"
    watcher_id = f"watcher-{uuid.uuid4().hex[:8]}"
    async with Worker(wf_env.pyd_client, task_queue=queue, workflows=[MailboxWatcherWorkflow],
                      activities=[limited, fake.watch], max_heartbeat_throttle_interval=timedelta(milliseconds=200)):
        handle: WorkflowHandle = await wf_env.pyd_client.start_workflow(MailboxWatcherWorkflow.run, id=watcher_id,
                                                                        task_queue=queue)
        for generation in range(1, 25):
            fake.generation = generation
            await handle.signal(MAILBOX_CHANGED_SIGNAL)
            await wait_until(lambda: fake.watches[-1:] == [f"gen-{generation}"], timeout=10, what="the new watch")
        runs = [w async for w in wf_env.pyd_client.list_workflows(f"WorkflowId = '{watcher_id}'")]
        assert len(runs) >= 2, runs
        assert fake.config_calls < 50  # the event limit, not the round count, started the new run
        await handle.terminate()
