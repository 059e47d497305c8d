"""Messages the API sends to job workflows about agents (through Temporal, never to agents)."""

from __future__ import annotations

import logging

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.errors import Conflict, Unavailable
from workflows.contracts import AGENT_STARTED_SIGNAL, AGENTS_CHANGED_SIGNAL, TRAINING_WORKFLOW, AgentStarted

log = logging.getLogger(__name__)


async def signal_agent_started(client: Client, job_id: str, started: AgentStarted) -> None:
    try:
        await client.get_workflow_handle(job_id).signal(AGENT_STARTED_SIGNAL, started)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise Conflict(f"job {job_id} is no longer running") from exc
        raise Unavailable(f"cannot tell job {job_id} about the claim yet ({exc.message}); claim again") from exc


async def tell_agent_started(client: Client, job_id: str, started: AgentStarted) -> None:
    """``signal_agent_started`` after the answer was sent: failures are logged, not raised."""
    try:
        await signal_agent_started(client, job_id, started)
    except (Conflict, Unavailable) as exc:
        log.warning("could not tell job %s about the claim of attempt %s: %s", job_id, started.attempt, exc.detail)


async def nudge_queued_jobs(client: Client) -> None:
    """An agent appeared: jobs waiting for placement re-check at once instead of at their timer."""
    query = f'WorkflowType = "{TRAINING_WORKFLOW}" AND ExecutionStatus = "Running" AND JobStatus = "queued"'
    try:
        async for wf in client.list_workflows(query):
            try:
                await client.get_workflow_handle(wf.id, run_id=wf.run_id).signal(AGENTS_CHANGED_SIGNAL)
            except RPCError as exc:  # finished in between: nothing to nudge
                log.debug("could not nudge %s: %s", wf.id, exc)
    except RPCError as exc:
        log.warning("could not list queued jobs to nudge: %s", exc)
