"""Activities of a job that runs on a cloud provider: create its training, read it (what webhooks
recorded, or a poll), cancel it.

Each runs only for the job's own workflow run (``binding``). Provider calls go through the provider's
circuit breaker: a failure that is worth retrying (unreachable, 5xx, 429) is counted and answered as
"try again in N seconds", so the workflow waits durably on a timer instead of failing the job; an
answer that says the request itself is wrong (a bad token, an unknown version) fails the job with it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from sqlmodel import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.audit.trail import audit
from activities.capacity import dispatches
from activities.db.models import Job, utcnow
from activities.errors import DomainError
from activities.observability.log_context import LogContext
from activities.providers import circuit, registry, trainings
from activities.providers import settings as provider_settings
from activities.providers.base import ProviderCallError, ProviderRefused, TrainingRequest, TrainingState
from activities.settings import Settings
from activities.storage.credentials import job_storage_env
from activities.temporal.binding import bound_job
from workflows.contracts import ERR_INVALID_SUBMISSION, ProviderStart, ProviderSync, ProviderSyncRequest

log = logging.getLogger("simpletuner.worker_host.providers")
RETRY_CREATE_SECONDS = 10.0  # a failed create is tried again this soon (unless the circuit opened)


def _failed(message: str) -> ApplicationError:
    return ApplicationError(message, type=ERR_INVALID_SUBMISSION, non_retryable=True)


class ProviderActivities:
    def __init__(self, session_factory: Callable[[], Session], cipher: Any, settings: Settings) -> None:
        self._session = session_factory
        self._cipher = cipher  # decrypts the submitters' own provider credentials
        self._settings = settings

    def _threshold(self) -> tuple[int, float]:
        s = self._settings
        return s.provider_circuit_failure_threshold, s.provider_circuit_cooldown_seconds

    def _prepare(self, job_id: str) -> dict[str, Any]:
        """Everything a call needs, read in one transaction: the job, its provider's settings, the token."""
        with self._session() as session:
            job = bound_job(session, job_id)
            provider = registry.get(job.target)
            row = provider_settings.config(session, job.target)
            training = trainings.find(session, job_id)
            source = training.credential_source if training is not None else None
            user = None if source == "global" else job.owner_id
            token, source = provider_settings.token(session, job.target, user, self._settings.secret_resolver,
                                                    cipher=self._cipher)
            session.commit()
            return {"job": job, "provider": provider, "row": row, "token": token, "source": source,
                    "training_id": training.training_id if training else None,
                    "polling": provider_settings.polling(row, self._settings)}

    def _refusal(self, job_id: str) -> str | None:
        with self._session() as session:
            job = bound_job(session, job_id)
            why = dispatches.refusal(session, job)
            if why is not None:
                audit(session, "system:workflow", "job.dispatch_refused", "job", job_id, {"reason": why})
                session.commit()
            return why

    def _storage_env(self, job_id: str) -> dict[str, str]:
        """The job's storage credential for the training's inputs (``AWS_ENDPOINT_URL_S3``, ...): it can
        only reach this API at its public URL, so without ``SIMPLETUNER_PUBLIC_URL`` there is none."""
        public = self._settings.public_url
        if not public:
            log.warning("job %s: no SIMPLETUNER_PUBLIC_URL: the training gets no storage credential and cannot "
                        "upload outputs to this server", job_id)
            return {}
        with self._session() as session:
            env = job_storage_env(session, job_id, public)
            session.commit()
            return env

    def _circuit_check(self, provider: str) -> circuit.CircuitOpen | None:
        with self._session() as session:
            try:
                circuit.before_call(session, provider)
            except circuit.CircuitOpen as exc:
                return exc
        return None

    def _count(self, provider: str, error: str | None) -> None:
        with self._session() as session:
            if error is None:
                circuit.record_success(session, provider)
            else:
                threshold, cooldown = self._threshold()
                circuit.record_failure(session, provider, error, threshold, cooldown)
            session.commit()

    @activity.defn(name="start_provider_training")
    async def start_provider_training(self, job_id: str) -> ProviderStart:
        with LogContext(job_id=job_id, step="provider_start"):
            try:
                ctx = await asyncio.to_thread(self._prepare, job_id)
            except (ProviderRefused, DomainError) as exc:
                raise _failed(exc.detail) from None
            provider, row, job, polling = ctx["provider"], ctx["row"], ctx["job"], ctx["polling"]
            if ctx["training_id"]:  # created by an earlier attempt of this activity
                return ProviderStart(training_id=ctx["training_id"], poll_seconds=polling.interval_seconds)
            why = await asyncio.to_thread(self._refusal, job_id)
            if why is not None:  # nothing runs by asking: evaluated, approved, admitted, as for agents
                raise _failed(why)
            try:
                provider_settings.require_configured(row)
            except DomainError as exc:
                raise _failed(exc.detail) from None
            opened = await asyncio.to_thread(self._circuit_check, provider.name)
            if opened is not None:
                return self._wait(opened, polling.interval_seconds)
            inputs = dict((job.frozen_config or {}).get("args") or {})
            inputs.update(await asyncio.to_thread(self._storage_env, job_id))
            request = TrainingRequest(job_id=job_id, version=row.version or "", destination=row.destination,
                                      input=inputs, webhook_url=row.webhook_url)
            try:
                async with provider_settings.connection(row, self._settings.outbound_http, ctx["token"]) as conn:
                    state = await provider.create_training(conn, request)
            except ProviderCallError as exc:
                await asyncio.to_thread(self._count, provider.name, exc.detail)
                opened = await asyncio.to_thread(self._circuit_check, provider.name)
                retry = min(polling.interval_seconds, RETRY_CREATE_SECONDS)
                log.warning("job %s: creating the %s training failed (%s); %s", job_id, provider.name, exc.detail,
                            "the circuit is open" if opened else f"trying again in {retry:.0f} s")
                if opened is not None:
                    return self._wait(opened, polling.interval_seconds)
                return ProviderStart(reason=f"{provider.name} call failed ({exc.detail}); trying again",
                                     retry_in_seconds=retry, poll_seconds=polling.interval_seconds)
            except ProviderRefused as exc:
                raise _failed(exc.detail) from None
            await asyncio.to_thread(self._record_created, job_id, provider, state, ctx["source"])
            log.info("job %s: %s training %s created (credential: %s)", job_id, provider.name, state.training_id,
                     ctx["source"])
            return ProviderStart(training_id=state.training_id, poll_seconds=polling.interval_seconds)

    @staticmethod
    def _wait(opened: circuit.CircuitOpen, interval: float) -> ProviderStart:
        seconds = max(1.0, (opened.retry_at - utcnow()).total_seconds())
        return ProviderStart(reason=opened.detail, retry_in_seconds=seconds, poll_seconds=interval)

    def _record_created(self, job_id: str, provider, state, source: str) -> None:
        with self._session() as session:
            bound_job(session, job_id)
            row = trainings.start(session, job_id, provider.name)
            trainings.created(session, row, provider, state, source)
            circuit.record_success(session, provider.name)
            session.commit()

    @activity.defn(name="sync_provider_training")
    async def sync_provider_training(self, req: ProviderSyncRequest) -> ProviderSync:
        """The training as recorded; with ``poll``, asked of the provider first (through the breaker)."""
        with LogContext(job_id=req.job_id, step="provider_sync"):
            reason = None
            if req.poll:
                reason = await self._poll(req.job_id)
            return await asyncio.to_thread(self._read, req.job_id, reason)

    async def _poll(self, job_id: str) -> str | None:
        try:
            ctx = await asyncio.to_thread(self._prepare, job_id)
        except DomainError as exc:
            return f"cannot poll: {exc.detail}"
        provider, row = ctx["provider"], ctx["row"]
        if not ctx["training_id"]:
            return None
        opened = await asyncio.to_thread(self._circuit_check, provider.name)
        if opened is not None:
            return opened.detail
        try:
            async with provider_settings.connection(row, self._settings.outbound_http, ctx["token"]) as conn:
                state = await provider.get_training(conn, ctx["training_id"])
        except ProviderCallError as exc:
            await asyncio.to_thread(self._count, provider.name, exc.detail)
            return f"{provider.name} poll failed: {exc.detail}"
        except ProviderRefused as exc:
            return f"{provider.name} poll refused: {exc.detail}"
        await asyncio.to_thread(self._apply, job_id, provider, state)
        return None

    def _apply(self, job_id: str, provider, state) -> None:
        with self._session() as session:
            bound_job(session, job_id)
            row = trainings.find(session, job_id)
            if row is not None and row.training_id == state.training_id:
                trainings.apply(session, row, provider, state)
            circuit.record_success(session, provider.name)
            session.commit()

    def _read(self, job_id: str, reason: str | None) -> ProviderSync:
        with self._session() as session:
            job = bound_job(session, job_id)
            provider = registry.get(job.target)
            row = trainings.find(session, job_id)
            if row is None or row.training_id is None:
                return ProviderSync(provider_status="creating", job_status="queued", reason=reason)
            status = provider.job_status(row.status)
            if row.status in provider.terminal and row.predict_time is not None:  # failed runs are billed too
                cost = provider.actual_cost_usd(_state_of(row), job.hourly_rate_usd, job.gpu_count or 1)
                _record_cost(session, job, row.predict_time, cost)
            session.commit()
            return ProviderSync(training_id=row.training_id, provider_status=row.status, job_status=status,
                                terminal=row.status in provider.terminal, error=row.error,
                                reason=reason or f"{row.status} on {provider.name} (training {row.training_id})")

    @activity.defn(name="cancel_provider_training")
    async def cancel_provider_training(self, job_id: str) -> bool:
        """Ask the provider to cancel the job's training; True when it accepted (or it had ended)."""
        with LogContext(job_id=job_id, step="provider_cancel"):
            ctx = await asyncio.to_thread(self._prepare, job_id)
            provider, row = ctx["provider"], ctx["row"]
            if not ctx["training_id"]:
                return True
            try:
                async with provider_settings.connection(row, self._settings.outbound_http, ctx["token"]) as conn:
                    state = await provider.cancel_training(conn, ctx["training_id"])
            except ProviderCallError as exc:
                await asyncio.to_thread(self._count, provider.name, exc.detail)
                raise  # retried by the activity's retry policy
            except ProviderRefused as exc:
                log.warning("job %s: %s refused the cancel: %s", job_id, provider.name, exc.detail)
                return False
            await asyncio.to_thread(self._apply, job_id, provider, state)
            log.info("job %s: %s training %s cancel requested (%s)", job_id, provider.name, ctx["training_id"],
                     state.status)
            return True


def _state_of(row) -> TrainingState:
    return TrainingState(training_id=row.training_id or "", status=row.status, predict_time=row.predict_time)


def _record_cost(session: Session, job: Job, predict_time: float, cost: float | None) -> None:
    """Compute seconds the provider billed, as GPU-hours and cost (the run time of a provider job)."""
    job.gpu_hours = round(predict_time / 3600.0 * (job.gpu_count or 1), 6)
    if cost is not None:
        job.cost_usd = cost
    session.add(job)
