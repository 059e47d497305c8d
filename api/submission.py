"""Starting a job: validate, derive the job id, start TrainingJobWorkflow, write the pending row."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from activities.errors import InvalidInput, NotFound
from activities.runtime import Database
from activities.jobs import configs
from activities.jobs import jobs
from activities.governance import resource_rules
from api import submission_checks
from activities.identity.principals import Principal
from activities.settings import Settings
from workflows.contracts import (
    CONTROL_TASK_QUEUE, TRAINING_WORKFLOW, SA_CONFIG_NAME, SA_JOB_OWNER, SA_JOB_STATUS, SA_JOB_TARGET, JobSubmission, job_id_for,
)


class SubmitBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    config_name: str = Field(min_length=1, max_length=128)
    target: Literal["worker", "local", "auto"] = "auto"
    worker_labels: dict[str, str] = Field(default_factory=dict, max_length=64)
    gpu_count: int | None = Field(None, ge=1, le=1024)
    priority: int | None = Field(None, ge=0, le=1000)
    idempotency_key: str | None = Field(None, min_length=1, max_length=255)
    team: str | None = Field(None, min_length=1, max_length=130)  # team (slug, org/team or id) to charge


def request_hash(body: SubmitBody) -> str:
    return hashlib.sha256(json.dumps(body.model_dump(exclude={"idempotency_key"}), sort_keys=True).encode()).hexdigest()


async def submit(body: SubmitBody, principal: Principal, db: Database, client: Client, settings: Settings,
                 ip: str | None) -> tuple[dict, bool]:
    """Returns (job dict, created). Nothing is written unless the workflow started."""
    job_id = job_id_for(principal.user_id, body.idempotency_key, uuid.uuid4().hex)
    sub = JobSubmission(job_id=job_id, owner_id=principal.user_id, owner_name=principal.username,
                        config_name=body.config_name, target=body.target, worker_labels=body.worker_labels,
                        gpu_count=body.gpu_count, priority=body.priority, idempotency_key=body.idempotency_key,
                        team=body.team,
                        request_hash=request_hash(body), max_attempts=settings.job_max_attempts,
                        heartbeat_timeout_seconds=settings.heartbeat_timeout_seconds,
                        placement_recheck_seconds=settings.placement_recheck_seconds)
    def check() -> tuple[dict | None, list]:
        with db.session() as session:
            try:
                config = configs.get(session, body.config_name)
            except NotFound:
                raise InvalidInput(f"unknown config_name {body.config_name!r}") from None
            resource_rules.check(session, principal.levels, "config", config.name)
            resource_rules.check(session, principal.levels, "hardware", config.hardware_type)
            resource_rules.check(session, principal.levels, "provider", body.target)
            existing = jobs.find(session, job_id)
            if existing is not None:
                jobs.create_pending(session, sub)  # raises Conflict when the same key carried another request
                return jobs.to_dict(existing), []
            # raises Forbidden for a blocking quota or cost limit
            return None, submission_checks.check(session, principal, body.team, body.target, config, body.gpu_count,
                                                 settings)

    # the database work runs in a thread: a writer waiting for SQLite's lock must not block the event loop
    replayed, findings = await asyncio.to_thread(check)
    if replayed is not None:
        return replayed, False
    created = True
    try:
        await client.start_workflow(
            TRAINING_WORKFLOW, sub, id=job_id, task_queue=CONTROL_TASK_QUEUE,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes([
                SearchAttributePair(SA_JOB_STATUS, "pending"), SearchAttributePair(SA_JOB_OWNER, principal.username),
                SearchAttributePair(SA_CONFIG_NAME, body.config_name), SearchAttributePair(SA_JOB_TARGET, body.target)]),
            static_summary=f"{body.config_name} by {principal.username} ({body.target})")
    except WorkflowAlreadyStartedError:
        created = False  # a concurrent request with the same idempotency key won
    def insert() -> dict:
        with db.session() as session:
            job, _ = jobs.create_pending(session, sub, ip=ip)  # the workflow's evaluation may have inserted it
            if created:  # this request started the workflow: its findings belong to the job
                submission_checks.record(session, job, findings)
            session.commit()
            return jobs.to_dict(job)

    return await asyncio.to_thread(insert), created
