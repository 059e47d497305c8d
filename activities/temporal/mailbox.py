"""Mailbox activities: which mailbox to watch, and the long-running IMAP IDLE watch itself.

Each reply is judged in the database (``services.email_replies``) and a decision is sent to the
job's workflow as the same validated ``decide_approval`` update REST uses, with the Message-ID as
the update id, so a redelivered message is applied at most once.
"""

from __future__ import annotations

import asyncio
import email
import logging
from datetime import timedelta
from typing import Callable

from sqlmodel import Session
from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.notify.mail.imap_watch import MailboxError, MailboxWatcher
from activities.notify.mail.messages import help_email, refusal_email
from activities.notify.mail.reply_parser import ParsedReply, parse_reply
from activities.notify.mail.smtp_send import MailDeliveryError, send_message
from activities.notify import channels
from activities.notify import email_replies
from activities.secrets.credential_crypto import CredentialCipher
from activities.settings import Settings
from activities.temporal.approval_update import send_decision
from workflows.contracts import MailboxConfig

log = logging.getLogger(__name__)
UPDATE_TIMEOUT = timedelta(seconds=10)  # well inside the watch's heartbeat timeout


class MailboxActivities:
    def __init__(self, session_factory: Callable[[], Session], cipher: CredentialCipher, settings: Settings,
                 client: Client) -> None:
        self._session = session_factory
        self._cipher = cipher
        self._settings = settings
        self._client = client

    def _transport(self) -> channels.EmailTransport | None:
        with self._session() as session:
            return channels.email_transport(session, self._cipher, self._settings)

    @activity.defn(name="mailbox_config")
    def mailbox_config(self) -> MailboxConfig:
        transport = self._transport()
        limit = self._settings.workflow_max_history_events
        if transport is None or transport.imap is None:
            return MailboxConfig(configured=False, max_history_events=limit)
        imap = transport.imap
        return MailboxConfig(configured=True, fingerprint=channels.fingerprint(transport),
                             description=f"{imap.username} on {imap.host}:{imap.port}/{imap.folder}",
                             max_history_events=limit)

    @activity.defn(name="watch_mailbox")
    async def watch_mailbox(self, config: MailboxConfig) -> None:
        """Runs until cancelled; a lost connection fails the attempt and Temporal retries it."""
        transport = await asyncio.to_thread(self._transport)
        if transport is None or transport.imap is None or channels.fingerprint(transport) != config.fingerprint:
            return  # the channel changed meanwhile: the workflow reloads it
        watcher = MailboxWatcher(transport.imap, on_message=lambda raw: self._handle(raw, transport),
                                 on_alive=lambda: activity.heartbeat("idle"), alive_every=5.0)
        log.info("watching %s for approval replies", config.description)
        watch = asyncio.ensure_future(watcher.run())
        shutdown = asyncio.ensure_future(activity.wait_for_worker_shutdown())
        try:
            await asyncio.wait({watch, shutdown}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            shutdown.cancel()
            if not watch.done():
                watch.cancel()  # the watcher logs out of IMAP
                await asyncio.gather(watch, return_exceptions=True)
        if not watch.cancelled() and watch.exception() is not None:
            exc = watch.exception()
            if isinstance(exc, MailboxError):
                raise ApplicationError(f"mailbox {config.description}: {exc}", type="MailboxError") from exc
            raise exc
        # the worker host is stopping: fail this attempt so the watch resumes on a running worker host
        raise ApplicationError("worker host shutting down", type="WorkerShutdown")

    async def _handle(self, raw: bytes, transport: channels.EmailTransport) -> None:
        reply = parse_reply(email.message_from_bytes(raw))
        verdict = await asyncio.to_thread(self._judge, reply)
        log.info("reply %s from %s: %s (%s)", reply.message_id, reply.sender, verdict.action, verdict.detail)
        if verdict.action == "help" and verdict.answer_to:
            await self._answer(help_email(verdict.answer_to, reply.subject, verdict.token, reply.message_id))
        elif verdict.action == "refuse" and verdict.answer_to:
            await self._answer(refusal_email(verdict.answer_to, reply.subject, verdict.detail, reply.message_id))
        elif verdict.action == "deliver":
            await self._deliver(reply, verdict)

    def _judge(self, reply: ParsedReply) -> email_replies.ReplyVerdict:
        with self._session() as session:
            verdict = email_replies.judge(session, reply)
            session.commit()
            return verdict

    async def _deliver(self, reply: ParsedReply, verdict: email_replies.ReplyVerdict) -> None:
        assert verdict.decision is not None and verdict.job_id is not None
        try:
            outcome = await send_decision(self._client, verdict.job_id, verdict.decision, rpc_timeout=UPDATE_TIMEOUT)
            status, detail = "applied", f"request {outcome.request_id} {outcome.status}"
        except WorkflowUpdateFailedError as exc:
            status, detail = "refused", getattr(exc.cause, "message", None) or str(exc)
        except RPCError as exc:
            if exc.status not in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
                raise  # Temporal unreachable: the attempt fails, the message stays unseen and comes back
            status, detail = "refused", "the job has already finished"
        await asyncio.to_thread(self._finish, reply.message_id, status, detail)
        log.info("reply %s: %s (%s)", reply.message_id, status, detail)
        if status == "refused" and verdict.answer_to:
            await self._answer(refusal_email(verdict.answer_to, reply.subject, detail, reply.message_id))

    def _finish(self, message_id: str, status: str, detail: str) -> None:
        with self._session() as session:
            email_replies.finish(session, message_id, status, detail)
            session.commit()

    async def _answer(self, message) -> None:
        """Help and refusal answers are courtesy: a failure to send is logged, never retried."""
        transport = await asyncio.to_thread(self._transport)
        if transport is None:
            return
        try:
            await send_message(transport.smtp, message)
        except MailDeliveryError as exc:
            log.warning("could not answer %s: %s", message["To"], exc)
