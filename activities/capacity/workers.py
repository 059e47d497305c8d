"""GPU agent registry: admin lifecycle, token auth, registration/heartbeats, liveness, placement.

Liveness is computed from the last heartbeat at read time (no sweeper needed to be correct).
Drain and labels are admin state: registration and heartbeats never reset them.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator
from sqlmodel import Session, col, select

from activities.request_body import RequestBody
from activities.paging import Page, PageRequest, keyset
from activities.db.models import Worker, utcnow
from activities.errors import Conflict, NotFound, Unauthorized
from activities.audit.trail import audit
from activities.secrets.tokens import hash_token, new_id, new_token
from workflows.contracts import normalize_hardware_type, pool_task_queue

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$")


def check_labels(value: dict[str, str] | None) -> dict[str, str] | None:
    """Label keys an agent's pool can be named by; values of bounded length."""
    for key, label in (value or {}).items():
        if not LABEL_RE.match(key) or len(label) > 200:
            raise ValueError(f"label {key!r}: keys are 1-64 letters, digits, '.', '_', '-', '/'; values at most "
                             "200 characters")
    return value


class WorkerCreate(RequestBody):
    model_config = ConfigDict(extra="forbid")
    name: str
    worker_type: Literal["persistent", "ephemeral"] = "persistent"
    labels: dict[str, str] = Field(default_factory=dict, max_length=64)
    local: bool = False

    _labels = field_validator("labels")(lambda value: check_labels(value))

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_RE.match(value):
            raise ValueError("use 1-64 letters, digits, '.', '_' or '-'")
        return value


class Registration(RequestBody):
    name: str | None = None
    hostname: str | None = None
    gpu_count: int = Field(1, ge=0, le=1024)
    gpu_name: str | None = None
    gpu_vram_gb: float | None = Field(None, ge=0, le=100_000)
    accelerator_type: str | None = None
    hardware_type: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")  # normalised, e.g. a100-80gb
    persistent: bool | None = None
    current_job_id: str | None = None
    version: str | None = None


class WorkerPatch(RequestBody):
    """Admin changes of an agent: its labels (they decide its pool, so placement follows at once)."""
    model_config = ConfigDict(extra="forbid")
    labels: dict[str, str] | None = Field(None, max_length=64)

    _labels = field_validator("labels")(lambda value: check_labels(value))


class Heartbeat(RequestBody):
    state: Literal["idle", "busy", "draining"] = "idle"
    current_job_id: str | None = None


def status_of(worker: Worker, timeout_s: float, now: datetime | None = None) -> str:
    now = now or utcnow()
    if worker.last_heartbeat is None:
        return "connecting"
    if worker.state == "offline" or now - worker.last_heartbeat > timedelta(seconds=timeout_s):
        return "offline"
    if worker.draining:
        return "draining"
    return "busy" if worker.state == "busy" or worker.current_job_id else "idle"


def to_dict(worker: Worker, timeout_s: float) -> dict[str, Any]:
    return {"id": worker.id, "worker_id": worker.id, "name": worker.name, "status": status_of(worker, timeout_s),
            "draining": worker.draining, "worker_type": worker.worker_type, "local": worker.local,
            "gpu_count": worker.gpu_count, "gpu_name": worker.gpu_name, "gpu_vram_gb": worker.gpu_vram_gb,
            "accelerator_type": worker.accelerator_type, "hardware_type": worker.hardware_type,
            "healthy": worker.unhealthy_since is None, "unhealthy_reason": worker.unhealthy_reason,
            "unhealthy_since": worker.unhealthy_since, "hostname": worker.hostname, "labels": worker.labels,
            "task_queue": worker.task_queue, "current_job_id": worker.current_job_id,
            "last_heartbeat": worker.last_heartbeat, "registered_at": worker.registered_at,
            "created_at": worker.created_at}


def get(session: Session, worker_id: str) -> Worker:
    worker = session.get(Worker, worker_id)
    if worker is None:
        raise NotFound(f"worker {worker_id!r} not found")
    return worker


def list_all(session: Session) -> list[Worker]:
    return list(session.exec(select(Worker).order_by(Worker.name)))


def list_page(session: Session, page: PageRequest) -> Page[Worker]:
    """Agents by name, a page at a time."""
    return keyset(session, select(Worker), [(col(Worker.name), False)], page)


def create(session: Session, body: WorkerCreate, actor: str) -> tuple[Worker, str]:
    if session.exec(select(Worker).where(Worker.name == body.name)).first() is not None:
        raise Conflict(f"a worker named {body.name!r} already exists")
    token = new_token("wt")
    worker = Worker(id=new_id("w"), name=body.name, worker_type=body.worker_type, labels=body.labels,
                    local=body.local, token_hash=hash_token(token))
    session.add(worker)
    audit(session, actor, "worker.created", "worker", worker.id, {"name": body.name, "labels": body.labels})
    return worker, token


def rotate_token(session: Session, worker_id: str, actor: str) -> str:
    worker = get(session, worker_id)
    token = new_token("wt")
    worker.token_hash = hash_token(token)
    session.add(worker)
    audit(session, actor, "worker.token_rotated", "worker", worker.id)
    return token


def set_draining(session: Session, worker_id: str, draining: bool, actor: str) -> Worker:
    """Drain (no new jobs; admin state no heartbeat or registration undoes) or undrain an agent."""
    worker = get(session, worker_id)
    worker.draining = draining
    session.add(worker)
    audit(session, actor, "worker.drained" if draining else "worker.undrained", "worker", worker.id)
    return worker


def update(session: Session, worker_id: str, patch: WorkerPatch, actor: str) -> Worker:
    """Change the labels (admin state, never reset by the agent); the pool queue follows at once."""
    worker = get(session, worker_id)
    changes: dict[str, Any] = {}
    if patch.labels is not None and patch.labels != worker.labels:
        changes["labels"] = {"from": worker.labels, "to": patch.labels}
        worker.labels = dict(patch.labels)
        if worker.task_queue is not None:  # registered: move it to the pool of its new labels
            worker.task_queue = pool_task_queue(worker.labels, worker.gpu_count, worker.local, worker.hardware_type)
    session.add(worker)
    audit(session, actor, "worker.updated", "worker", worker.id, changes)
    return worker


def delete(session: Session, worker_id: str, actor: str, timeout_s: float) -> None:
    worker = get(session, worker_id)
    status = status_of(worker, timeout_s)
    if status not in ("offline", "connecting"):
        raise Conflict(f"worker {worker.name} is {status}; only an offline worker can be deleted")
    session.delete(worker)
    audit(session, actor, "worker.deleted", "worker", worker_id, {"name": worker.name})


def authenticate(session: Session, token: str | None) -> Worker:
    if not token:
        raise Unauthorized("missing X-Worker-Token header")
    worker = session.exec(select(Worker).where(Worker.token_hash == hash_token(token))).first()
    if worker is None:
        raise Unauthorized("invalid worker token")
    return worker


def register(session: Session, worker: Worker, reg: Registration, ip: str | None) -> Worker:
    now = utcnow()
    worker.gpu_count, worker.gpu_name, worker.gpu_vram_gb = reg.gpu_count, reg.gpu_name, reg.gpu_vram_gb
    worker.accelerator_type, worker.hostname = reg.accelerator_type, reg.hostname
    worker.hardware_type = reg.hardware_type or normalize_hardware_type(reg.gpu_name, reg.accelerator_type)
    worker.task_queue = pool_task_queue(worker.labels, worker.gpu_count, worker.local, worker.hardware_type)
    worker.unhealthy_since = worker.unhealthy_reason = None
    worker.current_job_id = reg.current_job_id
    worker.state = "busy" if reg.current_job_id else "idle"
    worker.registered_at = worker.last_heartbeat = now
    session.add(worker)
    audit(session, f"worker:{worker.name}", "worker.registered", "worker", worker.id,
          {"gpu_count": reg.gpu_count, "accelerator_type": reg.accelerator_type, "hardware_type": worker.hardware_type,
           "hostname": reg.hostname}, ip=ip)
    return worker


def heartbeat(session: Session, worker: Worker, beat: Heartbeat) -> Worker:
    if worker.state == "offline":  # it disconnected: a late heartbeat must not bring it back; a live agent re-registers
        raise NotFound(f"agent {worker.name} disconnected; register again")
    worker.last_heartbeat = utcnow()
    worker.state = "busy" if beat.state == "busy" else "idle"
    worker.current_job_id = beat.current_job_id
    session.add(worker)
    return worker


def disconnect(session: Session, worker: Worker, reason: str | None) -> None:
    worker.state, worker.current_job_id = "offline", None
    session.add(worker)
    audit(session, f"worker:{worker.name}", "worker.disconnected", "worker", worker.id, {"reason": reason})
