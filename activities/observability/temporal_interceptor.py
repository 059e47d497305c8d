"""Carries the correlation id through Temporal in headers (client and worker interceptors in one class).

Client side: starting a workflow, signalling it, querying it and sending it an update copy the id in
effect into the call's headers. Worker side: a workflow run takes the id its start carried (so a job
keeps the id of the request that submitted it, across continue-as-new); a signal, update or query
handler runs under the id its own call carried (a decision keeps its own); activities, child
workflows, external signals, continue-as-new and Nexus operations the workflow starts carry the id
in effect there; an activity and a Nexus operation handler run under the id they carried.

Headers are not trusted for anything but logs: a value that is not a safe id is ignored.
Registered on every client (``activities/temporal/client.py``, ``gpu_agent/temporal_conn.py``); a
worker built on such a client uses it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import temporalio.api.common.v1
import temporalio.client
import temporalio.converter
import temporalio.worker
from temporalio.worker import _interceptor as wi

from activities.observability import correlation

HEADER_KEY = "simpletuner-correlation-id"
_converter = temporalio.converter.PayloadConverter.default


def _with_id(headers: Mapping[str, temporalio.api.common.v1.Payload]) -> Mapping[str, temporalio.api.common.v1.Payload]:
    value = correlation.current()
    if value is None:
        return headers
    return {**headers, HEADER_KEY: _converter.to_payloads([value])[0]}


def _id_from(headers: Mapping[str, temporalio.api.common.v1.Payload] | None) -> str | None:
    payload = (headers or {}).get(HEADER_KEY)
    if payload is None:
        return None
    try:
        value = _converter.from_payloads([payload])[0]
    except Exception:  # anyone may write headers: an unreadable one is ignored
        return None
    return value if correlation.is_valid(value) else None


class _ClientOutbound(temporalio.client.OutboundInterceptor):
    async def start_workflow(self, input: temporalio.client.StartWorkflowInput) -> Any:
        input.headers = _with_id(input.headers)
        return await super().start_workflow(input)

    async def signal_workflow(self, input: temporalio.client.SignalWorkflowInput) -> None:
        input.headers = _with_id(input.headers)
        await super().signal_workflow(input)

    async def query_workflow(self, input: temporalio.client.QueryWorkflowInput) -> Any:
        input.headers = _with_id(input.headers)
        return await super().query_workflow(input)

    async def start_workflow_update(self, input: temporalio.client.StartWorkflowUpdateInput) -> Any:
        input.headers = _with_id(input.headers)
        return await super().start_workflow_update(input)

    async def start_update_with_start_workflow(self, input: temporalio.client.StartWorkflowUpdateWithStartInput) -> Any:
        input.start_workflow_input.headers = _with_id(input.start_workflow_input.headers)
        input.update_workflow_input.headers = _with_id(input.update_workflow_input.headers)
        return await super().start_update_with_start_workflow(input)


class _ActivityInbound(temporalio.worker.ActivityInboundInterceptor):
    async def execute_activity(self, input: temporalio.worker.ExecuteActivityInput) -> Any:
        with correlation.correlation(_id_from(input.headers)):
            return await super().execute_activity(input)


class _NexusInbound(temporalio.worker.NexusOperationInboundInterceptor):
    async def execute_nexus_operation_start(self, input: wi.ExecuteNexusOperationStartInput) -> Any:
        value = {k.lower(): v for k, v in (input.ctx.headers or {}).items()}.get(HEADER_KEY)
        with correlation.correlation(value if correlation.is_valid(value) else None):
            return await super().execute_nexus_operation_start(input)


class _WorkflowOutbound(temporalio.worker.WorkflowOutboundInterceptor):
    def start_activity(self, input: temporalio.worker.StartActivityInput) -> Any:
        input.headers = _with_id(input.headers)
        return super().start_activity(input)

    def start_local_activity(self, input: temporalio.worker.StartLocalActivityInput) -> Any:
        input.headers = _with_id(input.headers)
        return super().start_local_activity(input)

    async def start_child_workflow(self, input: temporalio.worker.StartChildWorkflowInput) -> Any:
        input.headers = _with_id(input.headers)
        return await super().start_child_workflow(input)

    async def signal_child_workflow(self, input: temporalio.worker.SignalChildWorkflowInput) -> None:
        input.headers = _with_id(input.headers)
        await super().signal_child_workflow(input)

    async def signal_external_workflow(self, input: temporalio.worker.SignalExternalWorkflowInput) -> None:
        input.headers = _with_id(input.headers)
        await super().signal_external_workflow(input)

    def continue_as_new(self, input: temporalio.worker.ContinueAsNewInput) -> Any:
        input.headers = _with_id(input.headers)
        return super().continue_as_new(input)

    async def start_nexus_operation(self, input: temporalio.worker.StartNexusOperationInput) -> Any:
        value = correlation.current()
        if value is not None:
            input.headers = {**(input.headers or {}), HEADER_KEY: value}
        return await super().start_nexus_operation(input)


class _WorkflowInbound(temporalio.worker.WorkflowInboundInterceptor):
    def init(self, outbound: temporalio.worker.WorkflowOutboundInterceptor) -> None:
        super().init(_WorkflowOutbound(outbound))

    async def execute_workflow(self, input: temporalio.worker.ExecuteWorkflowInput) -> Any:
        with correlation.correlation(_id_from(input.headers)):
            return await super().execute_workflow(input)

    async def handle_signal(self, input: temporalio.worker.HandleSignalInput) -> None:
        with correlation.correlation(_id_from(input.headers)):
            await super().handle_signal(input)

    async def handle_query(self, input: temporalio.worker.HandleQueryInput) -> Any:
        with correlation.correlation(_id_from(input.headers)):
            return await super().handle_query(input)

    def handle_update_validator(self, input: temporalio.worker.HandleUpdateInput) -> None:
        with correlation.correlation(_id_from(input.headers)):
            super().handle_update_validator(input)

    async def handle_update_handler(self, input: temporalio.worker.HandleUpdateInput) -> Any:
        with correlation.correlation(_id_from(input.headers)):
            return await super().handle_update_handler(input)


class CorrelationInterceptor(temporalio.client.Interceptor, temporalio.worker.Interceptor):
    def intercept_client(self, next: temporalio.client.OutboundInterceptor) -> temporalio.client.OutboundInterceptor:
        return _ClientOutbound(next)

    def intercept_activity(self, next: temporalio.worker.ActivityInboundInterceptor
                           ) -> temporalio.worker.ActivityInboundInterceptor:
        return _ActivityInbound(next)

    def intercept_nexus_operation(self, next: temporalio.worker.NexusOperationInboundInterceptor
                                  ) -> temporalio.worker.NexusOperationInboundInterceptor:
        return _NexusInbound(next)

    def workflow_interceptor_class(self, input: temporalio.worker.WorkflowInterceptorClassInput
                                   ) -> type[temporalio.worker.WorkflowInboundInterceptor]:
        return _WorkflowInbound
