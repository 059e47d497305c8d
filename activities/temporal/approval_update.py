"""Sending an approval decision to a job's workflow (REST and e-mail replies alike).

The decision is the ``decide_approval`` Workflow Update, addressed by workflow id (so to the job's
current run) with the decision's message id as the update id. A run that is handing over to its next
one (continue-as-new) answers ``ERR_WORKFLOW_CONTINUING`` instead of taking it; the decision is then
sent again until the next run, which already holds the pending request, takes it.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from workflows.contracts import APPROVAL_DECISION_UPDATE, ERR_WORKFLOW_CONTINUING, ApprovalDecision, ApprovalOutcome

HANDOVER_WAIT_SECONDS = 30.0


async def send_decision(client: Client, job_id: str, decision: ApprovalDecision,
                        rpc_timeout: timedelta | None = None) -> ApprovalOutcome:
    """The outcome; WorkflowUpdateFailedError when the workflow refused it, RPCError when Temporal did."""
    loop = asyncio.get_running_loop()
    deadline, delay = loop.time() + HANDOVER_WAIT_SECONDS, 0.05
    while True:
        try:
            return await client.get_workflow_handle(job_id).execute_update(
                APPROVAL_DECISION_UPDATE, decision, id=decision.message_id, result_type=ApprovalOutcome,
                rpc_timeout=rpc_timeout)
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            if not (isinstance(cause, ApplicationError) and cause.type == ERR_WORKFLOW_CONTINUING) \
                    or loop.time() > deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)
