"""Admin API for GPU agents: create (token shown once), list, drain and undrain, change labels, rotate
token, delete. Drain and labels take effect for placement at once (queued jobs re-check)."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks

from activities.capacity import workers
from activities.capacity.workers import WorkerCreate, WorkerPatch
from api.agent_events import nudge_queued_jobs
from api.paging import PageDep
from api.deps import WorkersAdminDep, SessionDep, StateDep
from api.schemas.base import Deleted
from api.schemas.workers import Drained, TokenRotated, Worker, WorkerCreated, WorkerPage

router = APIRouter(prefix="/api/admin/workers", tags=["admin: workers"])


@router.get("", response_model=WorkerPage)
def list_workers(session: SessionDep, state: StateDep, _: WorkersAdminDep, page: PageDep) -> dict:
    timeout = state.settings.heartbeat_timeout_seconds
    found = workers.list_page(session, page)
    return {"workers": [workers.to_dict(w, timeout) for w in found.rows], **found.fields()}


@router.post("", status_code=201, response_model=WorkerCreated)
def create_worker(body: WorkerCreate, session: SessionDep, principal: WorkersAdminDep) -> dict:
    worker, token = workers.create(session, body, actor=principal.username)
    session.commit()
    return {"worker_id": worker.id, "token": token, "name": worker.name, "worker_type": worker.worker_type,
            "labels": worker.labels, "local": worker.local}


@router.post("/{worker_id}/drain", response_model=Drained)
def drain_worker(worker_id: str, session: SessionDep, state: StateDep, principal: WorkersAdminDep) -> dict:
    worker = workers.set_draining(session, worker_id, True, actor=principal.username)
    session.commit()
    return {"worker_id": worker.id, "draining": True,
            "status": workers.status_of(worker, state.settings.heartbeat_timeout_seconds)}


@router.post("/{worker_id}/undrain", response_model=Drained)
def undrain_worker(worker_id: str, session: SessionDep, state: StateDep, principal: WorkersAdminDep,
                   background: BackgroundTasks) -> dict:
    worker = workers.set_draining(session, worker_id, False, actor=principal.username)
    session.commit()
    background.add_task(nudge_queued_jobs, state.temporal)
    return {"worker_id": worker.id, "draining": False,
            "status": workers.status_of(worker, state.settings.heartbeat_timeout_seconds)}


@router.patch("/{worker_id}", response_model=Worker)
def update_worker(worker_id: str, body: WorkerPatch, session: SessionDep, state: StateDep,
                  principal: WorkersAdminDep, background: BackgroundTasks) -> dict:
    worker = workers.update(session, worker_id, body, actor=principal.username)
    session.commit()
    background.add_task(nudge_queued_jobs, state.temporal)
    return workers.to_dict(worker, state.settings.heartbeat_timeout_seconds)


@router.post("/{worker_id}/token", response_model=TokenRotated)
def rotate_token(worker_id: str, session: SessionDep, principal: WorkersAdminDep) -> dict:
    token = workers.rotate_token(session, worker_id, actor=principal.username)
    session.commit()
    return {"worker_id": worker_id, "token": token}


@router.delete("/{worker_id}", response_model=Deleted)
def delete_worker(worker_id: str, session: SessionDep, state: StateDep, principal: WorkersAdminDep) -> dict:
    workers.delete(session, worker_id, actor=principal.username, timeout_s=state.settings.heartbeat_timeout_seconds)
    session.commit()
    return {"deleted": worker_id}
