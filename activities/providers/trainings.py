"""The training a cloud provider runs for a job, as last confirmed by a verified webhook or a poll.

A report is applied only if it is not older than what is recorded (``rank``: starting < processing <
terminal), so out-of-order webhooks and slow polls never move a training backwards; logs are copied
into the job's log once each (Replicate sends the whole log every time).
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from activities.db.models import utcnow
from activities.db.models_providers import ProviderTraining
from activities.jobs import jobs
from activities.providers.base import CloudProvider, TrainingState

PROVIDER_ATTEMPT = 1  # a provider job's log lines are those of its one attempt
MAX_LOG_LINES = 100_000


def find(session: Session, job_id: str) -> ProviderTraining | None:
    return session.get(ProviderTraining, job_id)


def by_training_id(session: Session, training_id: str) -> ProviderTraining | None:
    return session.exec(select(ProviderTraining).where(ProviderTraining.training_id == training_id)).first()


def start(session: Session, job_id: str, provider: str) -> ProviderTraining:
    row = find(session, job_id)
    if row is None:
        row = ProviderTraining(job_id=job_id, provider=provider)
        session.add(row)
    return row


def created(session: Session, row: ProviderTraining, provider: CloudProvider, state: TrainingState,
            credential_source: str) -> None:
    row.training_id, row.credential_source = state.training_id, credential_source
    apply(session, row, provider, state)


def apply(session: Session, row: ProviderTraining, provider: CloudProvider, state: TrainingState) -> bool:
    """Record ``state`` unless it is older than the recorded one; True when something changed."""
    rank = provider.rank(state.status)
    if rank < row.rank or (row.status in provider.terminal and state.status != row.status):
        return False  # late or contradicting a final answer: ignored
    changed = state.status != row.status
    row.status, row.rank = state.status, rank
    if state.output is not None and state.output != row.output:
        row.output, changed = state.output, True
    if state.error and state.error != row.error:
        row.error, changed = state.error[:4000], True
    if state.predict_time is not None and state.predict_time != row.predict_time:
        row.predict_time, changed = state.predict_time, True
    lines = state.logs.splitlines()[:MAX_LOG_LINES]
    if len(lines) > row.logs_lines:
        jobs.append_logs(session, row.job_id, PROVIDER_ATTEMPT, row.logs_lines, lines[row.logs_lines:])
        row.logs_lines, changed = len(lines), True
    row.updated_at = utcnow()
    session.add(row)
    return changed


def to_dict(row: ProviderTraining) -> dict[str, Any]:
    return {"provider": row.provider, "training_id": row.training_id, "status": row.status,
            "credential_source": row.credential_source,
            "output": row.output if isinstance(row.output, dict) or row.output is None else {"value": row.output},
            "error": row.error,
            "predict_time": row.predict_time, "created_at": row.created_at, "updated_at": row.updated_at}
