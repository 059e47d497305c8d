"""Console pages for GPU agents (permission ``admin.workers``): the list, a new worker, one worker's
page, and the writes the REST admin routes offer (drain, undrain, labels, token rotation, delete),
through the same domain functions with the same audit entries.

A new or rotated token is shown once, in the answer to the form post (``no-store``), with the
``simpletuner worker`` command line that uses it; no page shows it again.
"""

from __future__ import annotations

import shlex
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError
from starlette.background import BackgroundTask

from activities.capacity import workers
from activities.capacity.workers import WorkerCreate, WorkerPatch
from activities.errors import Conflict, InvalidInput
from activities.identity.principals import Principal
from activities.paging import PageRequest
from api.agent_events import nudge_queued_jobs
from api.console import sections
from api.console.pages import _blank, _db, _labels, _see_other, _write, page, pager, posted, render, signed_in, validation_messages
from api.deps import get_state

router = APIRouter(include_in_schema=False)
sections.section("/workers", "Workers", "GPU agents: create with a token, drain, labels, rotate the token, delete.",
                 "admin.workers")
WORKER_TYPES = ("persistent", "ephemeral")


# ---- helpers ---------------------------------------------------------------------------------------

def _admin(request: Request) -> Principal:
    principal = signed_in(request)
    principal.require("admin.workers")
    return principal


def _timeout(request: Request) -> float:
    return get_state(request).settings.heartbeat_timeout_seconds


def _labels_text(labels: dict[str, str]) -> str:
    return "\n".join(f"{key}={value}" for key, value in labels.items())


def _summary(worker) -> dict[str, Any]:
    """What a token page shows of the worker (plain values, read inside the session)."""
    return {"id": worker.id, "name": worker.name, "worker_type": worker.worker_type}


# ---- list ------------------------------------------------------------------------------------------

@router.get("/workers")
@page
async def workers_list(request: Request, cursor: str | None = None) -> Response:
    principal = _admin(request)
    timeout = _timeout(request)

    def load(session):
        found = workers.list_page(session, PageRequest(limit=100, cursor=_blank(cursor)))
        return [workers.to_dict(w, timeout) for w in found.rows], found
    rows, found = await _db(request, load)
    return render(request, principal, "workers.html", workers=rows, **pager("/workers", found, cursor))


# ---- a new worker, and its token shown once --------------------------------------------------------

def _token_page(request: Request, principal: Principal, worker: dict[str, Any], token: str,
                created: bool) -> Response:
    argv = ["simpletuner", "worker", "--orchestrator-url", str(request.base_url).rstrip("/"), "--worker-token", token]
    if worker["worker_type"] == "persistent":
        argv.append("--persistent")  # without it the agent is ephemeral: it exits after one job
    return render(request, principal, "workers_token.html", worker=worker, token=token, command=shlex.join(argv),
                  created=created)


def _new_form(request: Request, principal: Principal, values: dict[str, str], errors: list[str],
              status: int = 200) -> Response:
    return render(request, principal, "workers_new.html", status=status, values=values, errors=errors,
                  worker_types=WORKER_TYPES)


def _create(session, body: WorkerCreate, actor: str) -> tuple[dict[str, Any], str]:
    worker, token = workers.create(session, body, actor=actor)
    return _summary(worker), token


@router.get("/workers/new")
@page
async def new_worker_form(request: Request) -> Response:
    return _new_form(request, _admin(request), {"worker_type": "persistent"}, [])


@router.post("/workers/new")
@page
async def new_worker_submit(request: Request) -> Response:
    principal, form = await posted(request, "admin.workers")
    try:
        body = WorkerCreate.model_validate({"name": form.get("name", "").strip(),
                                            "worker_type": form.get("worker_type", "persistent"),
                                            "labels": _labels(form.get("labels", "")),
                                            "local": form.get("local") == "yes"})
        worker, token = await _write(request, _create, body, principal.username)
    except ValidationError as exc:
        return _new_form(request, principal, form, validation_messages(exc), 422)
    except (InvalidInput, Conflict) as exc:
        return _new_form(request, principal, form, [exc.detail], exc.status_code)
    return _token_page(request, principal, worker, token, created=True)


# ---- one worker ------------------------------------------------------------------------------------

async def _worker_page(request: Request, principal: Principal, worker_id: str, errors: list[str] | None = None,
                       status: int = 200, labels: str | None = None) -> Response:
    worker = await _db(request, lambda s: workers.to_dict(workers.get(s, worker_id), _timeout(request)))
    return render(request, principal, "workers_agent.html", status=status, worker=worker, errors=errors or [],
                  labels_text=_labels_text(worker["labels"]) if labels is None else labels)


@router.get("/workers/{worker_id}")
@page
async def worker_detail(request: Request, worker_id: str) -> Response:
    return await _worker_page(request, _admin(request), worker_id)


async def _set_draining(request: Request, worker_id: str, draining: bool) -> Response:
    principal, _ = await posted(request, "admin.workers")
    await _write(request, workers.set_draining, worker_id, draining, principal.username)
    response = _see_other("/workers")
    if not draining:  # it takes jobs again: queued jobs re-check placement at once, as after the REST undrain
        response.background = BackgroundTask(nudge_queued_jobs, get_state(request).temporal)
    return response


@router.post("/workers/{worker_id}/drain")
@page
async def worker_drain(request: Request, worker_id: str) -> Response:
    return await _set_draining(request, worker_id, True)


@router.post("/workers/{worker_id}/undrain")
@page
async def worker_undrain(request: Request, worker_id: str) -> Response:
    return await _set_draining(request, worker_id, False)


@router.post("/workers/{worker_id}/labels")
@page
async def worker_labels(request: Request, worker_id: str) -> Response:
    principal, form = await posted(request, "admin.workers")
    text = form.get("labels", "")
    try:
        patch = WorkerPatch.model_validate({"labels": _labels(text)})
        await _write(request, workers.update, worker_id, patch, principal.username)
    except ValidationError as exc:
        return await _worker_page(request, principal, worker_id, validation_messages(exc), 422, text)
    except InvalidInput as exc:
        return await _worker_page(request, principal, worker_id, [exc.detail], exc.status_code, text)
    response = _see_other("/workers")
    response.background = BackgroundTask(nudge_queued_jobs, get_state(request).temporal)  # its pool changed
    return response


def _rotate(session, worker_id: str, actor: str) -> tuple[dict[str, Any], str]:
    token = workers.rotate_token(session, worker_id, actor=actor)
    return _summary(workers.get(session, worker_id)), token


@router.post("/workers/{worker_id}/token")
@page
async def worker_rotate_token(request: Request, worker_id: str) -> Response:
    principal, _ = await posted(request, "admin.workers")
    worker, token = await _write(request, _rotate, worker_id, principal.username)
    return _token_page(request, principal, worker, token, created=False)


@router.post("/workers/{worker_id}/delete")
@page
async def worker_delete(request: Request, worker_id: str) -> Response:
    principal, form = await posted(request, "admin.workers")
    try:
        if form.get("confirm") != "yes":
            raise InvalidInput("tick the box to confirm the deletion")
        await _write(request, workers.delete, worker_id, principal.username, _timeout(request))
    except (InvalidInput, Conflict) as exc:
        return await _worker_page(request, principal, worker_id, [exc.detail], exc.status_code)
    return _see_other("/workers")
