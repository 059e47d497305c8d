"""Starting a job: check every policy, derive the job id, record the submission, start TrainingJobWorkflow."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid

from pydantic import ConfigDict, Field, ValidationError, field_validator
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from sqlalchemy.exc import IntegrityError
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from activities.request_body import RequestBody
from activities.errors import InvalidInput, Unavailable
from activities.providers import registry
from activities.providers import settings as provider_settings
from activities.providers.base import ProviderRefused
from activities.governance import policy
from activities.identity.principals import Principal
from activities.jobs import jobs
from activities.observability.log_context import LogContext
from activities.runtime import Database
from activities.settings import Settings
from workflows.contracts import (
    AGENT_TARGETS, CONTROL_TASK_QUEUE, TRAINING_WORKFLOW, SA_CONFIG_NAME, SA_JOB_OWNER, SA_JOB_STATUS, SA_JOB_TARGET, JobSubmission, job_id_for,
)


class SubmitBody(RequestBody):
    model_config = ConfigDict(extra="forbid")
    config_name: str = Field(min_length=1, max_length=128)
    target: str = Field("auto", description="worker, local or auto (GPU agents), or a cloud provider (replicate)",
                        json_schema_extra={"enum": [*AGENT_TARGETS, *registry.names()]})
    worker_labels: dict[str, str] = Field(default_factory=dict, max_length=64)
    gpu_count: int | None = Field(None, ge=1, le=1024)
    priority: int | None = Field(None, ge=0, le=1000)
    idempotency_key: str | None = Field(None, min_length=1, max_length=255)
    team: str | None = Field(None, min_length=1, max_length=130)  # team (slug, org/team or id) to charge

    @field_validator("target")
    @classmethod
    def _known_target(cls, value: str) -> str:
        if value not in AGENT_TARGETS and not registry.is_provider(value):
            raise ValueError(f"unknown target {value!r}: use one of {', '.join((*AGENT_TARGETS, *registry.names()))}")
        return value


class ProviderSubmitBody(RequestBody):
    """``POST /api/cloud/{provider}/submit``: a training config name and the usual options."""
    model_config = ConfigDict(extra="forbid")
    config_name: str = Field(min_length=1, max_length=128)
    gpu_count: int | None = Field(None, ge=1, le=1024)
    priority: int | None = Field(None, ge=0, le=1000)
    idempotency_key: str | None = Field(None, min_length=1, max_length=255)
    team: str | None = Field(None, min_length=1, max_length=130)


class CloudSubmitBody(ProviderSubmitBody):
    """``POST /api/cloud/jobs/submit``: the same, with the provider named in the body (none: GPU agents)."""
    provider: str | None = Field(None, min_length=1, max_length=64)
    worker_labels: dict[str, str] = Field(default_factory=dict, max_length=64)

    def as_submission(self) -> SubmitBody:
        data = self.model_dump(exclude={"provider"}, exclude_unset=True)
        if self.provider is None:
            return submission_body(data)
        if self.worker_labels:
            raise InvalidInput("worker_labels select GPU agents; a provider job has none")
        data.pop("worker_labels", None)
        return submission_body({**data, "target": self.provider})


def submission_body(data: dict) -> SubmitBody:
    """A SubmitBody from fields already checked one by one; what is left to refuse is a 422 naming it."""
    try:
        return SubmitBody.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput("; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())) from None

log = logging.getLogger("simpletuner.api.submission")


def request_hash(body: SubmitBody) -> str:
    return hashlib.sha256(json.dumps(body.model_dump(exclude={"idempotency_key"}), sort_keys=True).encode()).hexdigest()


async def submit(body: SubmitBody, principal: Principal, db: Database, client: Client, settings: Settings,
                 ip: str | None) -> tuple[dict, bool]:
    """Returns (job dict, created). Every policy is checked first, to answer 4xx at once; then the
    submission is recorded and its workflow started, whose evaluation applies the same policies again
    from what was recorded here (and charges the job, atomically)."""
    job_id = job_id_for(principal.user_id, body.idempotency_key, uuid.uuid4().hex)
    sub = JobSubmission(job_id=job_id, owner_id=principal.user_id, owner_name=principal.username,
                        config_name=body.config_name, target=body.target, worker_labels=body.worker_labels,
                        gpu_count=body.gpu_count, priority=body.priority, idempotency_key=body.idempotency_key,
                        team=body.team, request_hash=request_hash(body), max_attempts=settings.job_max_attempts,
                        heartbeat_timeout_seconds=settings.heartbeat_timeout_seconds,
                        placement_recheck_seconds=settings.placement_recheck_seconds)

    def record() -> tuple[dict, bool]:
        with db.session() as session:
            existing = jobs.find(session, job_id)
            if existing is not None:
                jobs.create_pending(session, sub)  # raises Conflict when the same key carried another request
                return jobs.to_dict(existing), False
            if registry.is_provider(body.target):
                _provider_ready(session, body.target, principal.user_id, settings)
            verdict = policy.evaluate(session, policy.Submission(
                owner_id=principal.user_id, config_name=body.config_name, target=body.target,
                gpu_count=body.gpu_count, priority=body.priority, team=body.team),
                settings.cost.hourly_rates_usd, settings.approval_timeout_hours * 3600.0, early=True)  # 4xx
            job, _ = jobs.create_pending(session, sub, ip=ip)
            jobs.note_estimates(job, verdict.cost_estimate_usd, verdict.hourly_rate_usd, verdict.gpu_hours_estimate,
                                verdict.gpu_count)
            job.warnings = [f.message for f in verdict.findings]
            session.add(job)
            try:
                session.commit()
            except IntegrityError:  # a concurrent request with the same idempotency key recorded it first
                session.rollback()
                replay, _ = jobs.create_pending(session, sub)
                return jobs.to_dict(replay), False
            return jobs.to_dict(job), True

    # the database work runs in a thread: a writer waiting for SQLite's lock must not block the event loop
    job, created = await asyncio.to_thread(record)
    try:  # also for a replay: the request that recorded it may have died before starting the workflow
        await client.start_workflow(
            TRAINING_WORKFLOW, sub, id=job_id, task_queue=CONTROL_TASK_QUEUE,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes([
                SearchAttributePair(SA_JOB_STATUS, "pending"), SearchAttributePair(SA_JOB_OWNER, principal.username),
                SearchAttributePair(SA_CONFIG_NAME, body.config_name), SearchAttributePair(SA_JOB_TARGET, body.target)]),
            static_summary=f"{body.config_name} by {principal.username} ({body.target})")
    except WorkflowAlreadyStartedError:
        pass
    except RPCError as exc:
        if not created:
            raise Unavailable(f"Temporal is unavailable ({exc.message}); try again") from None
        await asyncio.to_thread(_start_failed, db, job_id, exc.message)
        raise Unavailable(f"job {job_id} could not be started, Temporal is unavailable ({exc.message}); "
                          "submit it again") from None
    with LogContext(job_id=job_id, user_id=principal.user_id, step="submission"):
        log.info("job %s %s (config %s, target %s)", job_id, "submitted" if created else "submitted again",
                 body.config_name, body.target)
    return job, created


def _provider_ready(session, provider: str, user_id: str, settings: Settings) -> None:
    """A provider job is refused at once when its provider cannot run it: not configured, or no token."""
    provider_settings.require_configured(provider_settings.config(session, provider))
    try:
        provider_settings.token(session, provider, user_id, settings.secret_resolver)
    except ProviderRefused as exc:
        raise InvalidInput(exc.detail) from None


def _start_failed(db: Database, job_id: str, why: str) -> None:
    with db.session() as session:
        jobs.fail_unstarted(session, job_id, f"the job's workflow could not be started: {why}")
        session.commit()
