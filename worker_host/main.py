"""The worker host: a Temporal Worker for TrainingJobWorkflow and the control-plane activities."""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from temporalio.worker import Worker

from activities.control import ControlActivities
from activities.runtime import configure_logging, load_config_dir, open_database
from activities.settings import Settings, load_settings
from activities.temporal_client import connect_with_retry, ensure_search_attributes
from workflows.contracts import CONTROL_TASK_QUEUE
from workflows.training_job import TrainingJobWorkflow

log = logging.getLogger("simpletuner.worker_host")


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    db = open_database(settings)
    load_config_dir(settings, db)
    client = await connect_with_retry(settings.temporal, stop)
    if client is None:
        return
    await ensure_search_attributes(client)
    control = ControlActivities(db.session, settings.heartbeat_timeout_seconds)
    with ThreadPoolExecutor(max_workers=16, thread_name_prefix="control-activity") as executor:
        worker = Worker(client, task_queue=CONTROL_TASK_QUEUE, workflows=[TrainingJobWorkflow],
                        activities=[control.evaluate_submission, control.resolve_placement, control.record_transition],
                        activity_executor=executor, graceful_shutdown_timeout=timedelta(seconds=10))
        log.info("worker host polling %s on %s (namespace %s)", CONTROL_TASK_QUEUE, settings.temporal.address,
                 settings.temporal.namespace)
        async with worker:
            await stop.wait()
        log.info("worker host stopped")


def main() -> int:
    settings = load_settings()
    configure_logging(settings)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        loop.run_until_complete(serve(settings, stop))
    finally:
        loop.close()
    return 0
