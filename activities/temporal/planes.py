"""The two planes on a Temporal cluster: the GPU namespace and the Nexus endpoint into it.

The worker host makes sure both exist when it starts (idempotently), so ``simpletuner dev`` and a
fresh cluster need nothing by hand. On a production cluster an operator may create them instead
and withhold the operator permissions; then the check only logs what is missing.
"""

from __future__ import annotations

import asyncio
import logging

from google.protobuf.duration_pb2 import Duration
from temporalio.api.nexus.v1 import EndpointSpec, EndpointTarget
from temporalio.api.operatorservice.v1 import (
    CreateNexusEndpointRequest, ListNexusEndpointsRequest, UpdateNexusEndpointRequest,
)
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

log = logging.getLogger(__name__)
RETENTION_DAYS = 7


async def ensure_namespace(client: Client, name: str) -> bool:
    """Register ``name`` if the cluster lacks it; True when it was created."""
    try:
        await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=name))
        return False
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
    try:
        await client.workflow_service.register_namespace(RegisterNamespaceRequest(
            namespace=name, workflow_execution_retention_period=Duration(seconds=RETENTION_DAYS * 86400)))
    except RPCError as exc:
        if exc.status != RPCStatusCode.ALREADY_EXISTS:
            raise
        return False
    log.info("registered namespace %s", name)
    return True


async def ensure_nexus_endpoint(client: Client, name: str, namespace: str, task_queue: str,
                                patience: float = 30.0) -> str:
    """Create the endpoint ``name`` → (``namespace``, ``task_queue``), or point an existing one there.
    Returns "created", "updated" or "unchanged". A namespace registered a moment ago may not be known
    to every part of the cluster yet: that is waited out for up to ``patience`` seconds."""
    delay, waited = 0.2, 0.0
    while True:
        try:
            return await _ensure_endpoint(client, name, namespace, task_queue)
        except RPCError as exc:
            if "not found" not in exc.message.lower() or waited >= patience:
                raise
            log.info("namespace %s not visible yet (%s); retrying in %.1f s", namespace, exc.message, delay)
        await asyncio.sleep(delay)
        waited += delay
        delay = min(delay * 2, 5.0)


async def _ensure_endpoint(client: Client, name: str, namespace: str, task_queue: str) -> str:
    target = EndpointTarget(worker=EndpointTarget.Worker(namespace=namespace, task_queue=task_queue))
    found = await client.operator_service.list_nexus_endpoints(ListNexusEndpointsRequest(name=name, page_size=10))
    existing = next((e for e in found.endpoints if e.spec.name == name), None)
    if existing is None:
        try:
            await client.operator_service.create_nexus_endpoint(CreateNexusEndpointRequest(
                spec=EndpointSpec(name=name, target=target)))
        except RPCError as exc:
            if exc.status != RPCStatusCode.ALREADY_EXISTS:
                raise
            return "unchanged"  # another worker host created it a moment ago
        log.info("created Nexus endpoint %s -> %s/%s", name, namespace, task_queue)
        return "created"
    worker = existing.spec.target.worker
    if worker.namespace == namespace and worker.task_queue == task_queue:
        return "unchanged"
    await client.operator_service.update_nexus_endpoint(UpdateNexusEndpointRequest(
        id=existing.id, version=existing.version, spec=EndpointSpec(name=name, target=target)))
    log.warning("Nexus endpoint %s pointed at %s/%s; now %s/%s", name, worker.namespace, worker.task_queue,
                namespace, task_queue)
    return "updated"
