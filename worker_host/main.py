"""The worker host: Temporal workers for the control namespace (job workflows, control activities) and the GPU namespace (dispatch workflows and the Nexus handler, no database access)."""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from activities.capacity.admission_signals import notify_admitted
from activities.temporal.admission import AdmissionActivities
from activities.temporal.approvals import ApprovalActivities
from activities.temporal.continuation import ContinuationActivities
from activities.temporal.control import ControlActivities
from activities.temporal.mailbox import MailboxActivities
from activities.identity.sso import provider_secrets
from activities.notify import channels
from activities.secrets import credential_crypto
from activities.observability.temporal_sdk_metrics import MetricsAddressError, serve_sdk_metrics
from activities.runtime import configure_logging, load_config_dir, open_database
from activities.settings import ConfigFileError, Settings, load_settings
from activities.temporal.client import connect, connect_with_retry, ensure_search_attributes
from activities.temporal.dispatch import DispatchActivities
from activities.temporal.gpu_dispatch_handler import GpuDispatchHandler
from activities.temporal.planes import ensure_namespace, ensure_nexus_endpoint
from activities.temporal.provider_runs import ProviderActivities
from activities.temporal.reconciler import ReconcilerActivities
from activities.temporal.schedules import ensure_reconciler_schedule
from worker_host.sandbox import workflow_runner
from workflows.contracts import CONTROL_TASK_QUEUE, GPU_DISPATCH_TASK_QUEUE, MAILBOX_CHANGED_SIGNAL, MAILBOX_WATCHER_ID
from workflows.gpu_dispatch import GpuDispatchWorkflow
from workflows.mailbox_watcher import MailboxWatcherWorkflow
from workflows.reconciler import ReconcilerWorkflow
from workflows.training_job import TrainingJobWorkflow

log = logging.getLogger("simpletuner.worker_host")


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    db = open_database(settings)
    load_config_dir(settings, db)
    cipher = credential_crypto.load_cipher(settings.data_dir, secrets=settings.secret_resolver)
    credential_crypto.install(cipher)  # jobs' storage credentials are sealed with it
    with db.session() as session:  # database work first: it needs no Temporal
        channels.sync_config_channel(session, settings.notifications.email, cipher)
        provider_secrets.encrypt_plaintext(session, cipher)  # upgrade step: no SSO secret stays in plain text
        session.commit()
    client = await connect_with_retry(settings.temporal, stop)
    if client is None:
        return
    await ensure_search_attributes(client)
    await prepare_gpu_plane(client, settings)
    gpu_client = await connect(settings.temporal, namespace=settings.temporal.gpu_namespace)
    control = ControlActivities(db.session, settings)
    dispatch = DispatchActivities(db.session, settings.heartbeat_timeout_seconds)
    approval = ApprovalActivities(db.session, cipher, settings)
    mailbox = MailboxActivities(db.session, cipher, settings, client)
    admission = AdmissionActivities(db.session, client)
    continuation = ContinuationActivities(db.session, client)
    reconciler = ReconcilerActivities(db.session, client, gpu_client)
    providers = ProviderActivities(db.session, cipher, settings)
    with ThreadPoolExecutor(max_workers=16, thread_name_prefix="control-activity") as executor:
        worker = Worker(client, task_queue=CONTROL_TASK_QUEUE, workflows=[TrainingJobWorkflow, MailboxWatcherWorkflow, ReconcilerWorkflow],
                        activities=[control.evaluate_submission, control.resolve_placement, control.record_transition,
                                    dispatch.open_dispatch, dispatch.confirm_claim, dispatch.settle_dispatch,
                                    approval.open_approval, approval.close_approval, approval.send_approval_notice,
                                    approval.check_approval_decision, mailbox.mailbox_config, mailbox.watch_mailbox,
                                    admission.request_admission, admission.confirm_admission,
                                    admission.release_admission, continuation.continue_job_run,
                                    reconciler.reconcile_jobs, providers.start_provider_training,
                                    providers.sync_provider_training, providers.cancel_provider_training],
                        workflow_runner=workflow_runner(), activity_executor=executor, graceful_shutdown_timeout=timedelta(seconds=10),
                        max_heartbeat_throttle_interval=timedelta(seconds=5))
        # The GPU plane: dispatch workflows and the Nexus handler, in the namespace agents can reach.
        # Nothing runs there that touches the database.
        gpu_worker = Worker(gpu_client, task_queue=GPU_DISPATCH_TASK_QUEUE, workflows=[GpuDispatchWorkflow],
                            nexus_service_handlers=[GpuDispatchHandler()], workflow_runner=workflow_runner(),
                            graceful_shutdown_timeout=timedelta(seconds=5))
        log.info("worker host polling %s (namespace %s) and %s (namespace %s) on %s", CONTROL_TASK_QUEUE,
                 settings.temporal.namespace, GPU_DISPATCH_TASK_QUEUE, settings.temporal.gpu_namespace,
                 settings.temporal.address)
        async with worker, gpu_worker:
            await start_mailbox_watcher(client)
            await ensure_reconciler_schedule(client)
            await notify_admitted(db.session, client)  # admissions whose signal a crash lost
            await stop.wait()
        log.info("worker host stopped")


async def prepare_gpu_plane(client: Client, settings: Settings) -> None:
    """The GPU namespace and the Nexus endpoint into it (an operator may have made them already)."""
    cfg = settings.temporal
    try:
        await ensure_namespace(client, cfg.gpu_namespace)
        await ensure_nexus_endpoint(client, cfg.nexus_endpoint, cfg.gpu_namespace, GPU_DISPATCH_TASK_QUEUE)
    except RPCError as exc:
        if exc.status != RPCStatusCode.PERMISSION_DENIED:
            raise
        log.warning("cannot check the GPU namespace %s and Nexus endpoint %s (%s): an operator must create them "
                    "(see temporal-dev/README.md)", cfg.gpu_namespace, cfg.nexus_endpoint, exc.message)


async def start_mailbox_watcher(client: Client) -> None:
    """One watcher per namespace (signal-with-start). The signal makes a running watcher start its IMAP
    activity afresh, here, instead of waiting for the heartbeat timeout of one lost with a previous
    worker host."""
    await client.start_workflow(MailboxWatcherWorkflow.run, id=MAILBOX_WATCHER_ID, task_queue=CONTROL_TASK_QUEUE,
                                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                                start_signal=MAILBOX_CHANGED_SIGNAL, static_summary="reads approval replies (IMAP IDLE)")


def main() -> int:
    settings = load_settings()
    configure_logging(settings)
    if settings.temporal.metrics_address:  # before any client: they all report through this runtime
        try:
            serve_sdk_metrics(settings.temporal.metrics_address)
        except MetricsAddressError as exc:
            raise ConfigFileError(f"temporal.metrics_address (SIMPLETUNER_TEMPORAL_METRICS_ADDRESS): {exc}") from None
        log.info("Temporal SDK metrics at http://%s/metrics", settings.temporal.metrics_address)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        loop.run_until_complete(serve(settings, stop))
    finally:
        loop.close()
    return 0
