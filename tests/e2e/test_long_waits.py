"""Long waits hand over to new workflow runs (continue-as-new) with the real processes: a small
``SIMPLETUNER_WORKFLOW_MAX_HISTORY_EVENTS`` and a stream of "agents changed" hints push a waiting
job's workflow across several runs; each new run takes the job's database binding over (no activity
of it is refused), and the job ends as it would have in one run: approved by REST, approved by an
e-mail reply, or placed on an agent that appears later."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import Client

from tests.e2e.test_approvals import approval_mail, build_stack, mailbox, mail, reply, submit_pending  # noqa: F401
from tests.e2e.test_users_and_auth import bearer_for
from workflows.contracts import AGENTS_CHANGED_SIGNAL

pytestmark = pytest.mark.e2e

LIMIT = {"SIMPLETUNER_WORKFLOW_MAX_HISTORY_EVENTS": 100}


def push_across_runs(stack, job_id: str, runs: int = 3) -> int:
    """Send hints until the job's workflow has had ``runs`` runs; the number of runs."""
    async def go() -> int:
        client = await Client.connect(stack.temporal.address, namespace=stack.namespace)
        for _ in range(400):
            seen = [w async for w in client.list_workflows(f"WorkflowId = '{job_id}'")]
            if len(seen) >= runs:
                return len(seen)
            for _ in range(10):
                await client.get_workflow_handle(job_id).signal(AGENTS_CHANGED_SIGNAL)
        raise AssertionError(f"job {job_id} stayed in {len(seen)} run(s)")
    return asyncio.run(go())


def refusals(stack, job_id: str) -> list[str]:
    return [r["action"] for r in stack.sql("SELECT action FROM auditentry WHERE target_id = :j AND action LIKE "
                                           "'%refused%'", j=job_id)]


@pytest.mark.slow  # a long scenario: make slow (CI runs it after make test)
def test_approval_waits_span_runs_then_rest_and_email_decide(stack_factory, mailbox):  # noqa: F811
    dovecot, sink = mailbox
    stack = build_stack(stack_factory, dovecot, sink, **LIMIT)
    rae, lena = bearer_for(stack, "rae"), bearer_for(stack, "lena")

    job1, req1 = submit_pending(stack, rae)
    assert push_across_runs(stack, job1) >= 3
    assert stack.job(job1)["status"] == "pending_approval"
    approved = stack.expect(lena.post(f"/api/approvals/requests/{req1['id']}/approve", json={"comment": "ok"}), 200)
    assert approved["status"] == "approved"
    assert stack.wait_job(job1, "completed", timeout=90)["attempt"] == 1

    job2, req2 = submit_pending(stack, rae)
    mail2 = approval_mail(sink, job2, "leo@corp.test")  # the e-mail of the first run still answers
    assert push_across_runs(stack, job2) >= 3
    reply(dovecot, mail2, "leo@corp.test", "Approved, go ahead")
    stack.wait_job(job2, "completed", timeout=90)
    decided = stack.expect(stack.client.get(f"/api/approvals/requests/{req2['id']}"), 200)
    assert (decided["status"], decided["decided_by"], decided["channel"]) == ("approved", "leo", "email")
    assert refusals(stack, job1) == [] and refusals(stack, job2) == []


def test_a_job_waiting_for_an_agent_spans_runs_then_runs_on_the_agent_that_comes(stack_factory):
    stack = stack_factory(extra_env={k: str(v) for k, v in LIMIT.items()})
    stack.put_config("tiny")
    job_id = stack.submit(config_name="tiny", target="worker", worker_labels={"pool": "later"})["job_id"]
    stack.wait_job(job_id, "queued", timeout=30)
    assert push_across_runs(stack, job_id, runs=4) >= 4
    _, token = stack.create_worker("late", {"pool": "later"})
    stack.start_agent(token, name="late")
    job = stack.wait_job(job_id, "completed", timeout=90)
    assert (job["attempt"], job["agent_name"]) == (1, "late")
    assert refusals(stack, job_id) == []
