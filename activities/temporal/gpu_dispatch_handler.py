"""The Nexus handler of the GPU namespace: each ``dispatch`` operation starts a GpuDispatchWorkflow.

Registered by the worker host's GPU-namespace worker on the dispatch task queue (the endpoint's
target). The operation's input grants nothing (see ``workflows/gpu_dispatch.py``), so the handler
only starts the workflow; its result, and its cancellation, travel back through Nexus.
"""

from __future__ import annotations

import nexusrpc
from temporalio import nexus
from temporalio.common import WorkflowIDConflictPolicy

from workflows.contracts import GPU_DISPATCH_TASK_QUEUE, DispatchRequest, DispatchResult, GpuDispatchService, \
    dispatch_workflow_id
from workflows.gpu_dispatch import GpuDispatchWorkflow


@nexusrpc.handler.service_handler(service=GpuDispatchService)
class GpuDispatchHandler:
    @nexus.workflow_run_operation
    async def dispatch(self, ctx: nexus.WorkflowRunOperationContext,
                       req: DispatchRequest) -> nexus.WorkflowHandle[DispatchResult]:
        return await ctx.start_workflow(
            GpuDispatchWorkflow.run, req, id=dispatch_workflow_id(req.job_id, req.dispatch),
            task_queue=GPU_DISPATCH_TASK_QUEUE, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            static_summary=f"{req.summary} → {req.task_queue}"[:200])
