"""Jobs: submit, list, detail, cancel, logs (JSON and SSE), output downloads."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse

from activities.db.models import Job, JobLogLine
from activities.errors import NotFound
from activities.identity.principals import Principal
from activities.jobs import jobs
from activities.providers import trainings
from api import outputs, sse
from api.job_cancel import cancel_job
from api.deps import PrincipalDep, SessionDep, StateDep, client_ip, require
from activities.paging import PageRequest
from api.paging import PageDep
from api.schemas.jobs import CancelRequested, JobDetail, JobPage, Logs, Submitted
from api.schemas.media import DOWNLOAD, event_stream
from api.submission import CloudSubmitBody, SubmitBody, submit
from workflows.contracts import TERMINAL_STATUSES

router = APIRouter(tags=["jobs"])
MAX_LOG_LINE = 2**53  # log line numbers: far beyond any log; larger are refused, not looked up
SubmitterDep = Annotated[Principal, Depends(require("job.submit"))]


def visible_job(session, principal: Principal, job_id: str) -> Job:
    """Own-vs-all: a job the caller may not see does not exist for them (404, not 403)."""
    job = jobs.get(session, job_id)
    if not principal.may_see(job.owner_id):
        raise NotFound(f"job {job_id!r} not found")
    return job


@router.post("/api/queue/submit", status_code=201, response_model=Submitted,
             responses={200: {"model": Submitted,
                              "description": "The same submission again (idempotency key): the job it made"}})
async def submit_job(body: SubmitBody, state: StateDep, principal: SubmitterDep, request: Request,
                     response: Response) -> dict:
    job, created = await submit(body, principal, state.db, state.temporal, state.settings, client_ip(request))
    response.status_code = 201 if created else 200
    return {"job_id": job["job_id"], "status": job["status"], "idempotent_replay": not created, "job": job}


@router.post("/api/cloud/jobs/submit", status_code=201, response_model=Submitted,
             responses={200: {"model": Submitted,
                              "description": "The same submission again (idempotency key): the job it made"}})
async def submit_cloud_job(body: CloudSubmitBody, state: StateDep, principal: SubmitterDep, request: Request,
                           response: Response) -> dict:
    """Like ``/api/queue/submit``; ``provider`` names a cloud provider to run it on (none: GPU agents)."""
    return await submit_job(body.as_submission(), state, principal, request, response)


@router.get("/api/cloud/jobs", response_model=JobPage)
def list_jobs(session: SessionDep, principal: PrincipalDep, request: Request,
              status: str | None = None, user: str | None = None, config: str | None = None,
              target: str | None = None, page: PageDep = PageRequest()) -> dict:
    found = jobs.visible_jobs(session, principal, status, user, config, target, page)
    base = str(request.base_url).rstrip("/")
    return {"jobs": [jobs.to_dict(j, base) for j in found.rows], **found.fields()}


@router.get("/api/cloud/jobs/{job_id}", response_model=JobDetail)
def get_job(job_id: str, session: SessionDep, principal: PrincipalDep, request: Request) -> dict:
    job = visible_job(session, principal, job_id)
    answer = jobs.to_dict(job, str(request.base_url).rstrip("/"))
    training = trainings.find(session, job.id)
    return {**answer, "provider_training": trainings.to_dict(training) if training is not None else None}


@router.post("/api/cloud/jobs/{job_id}/cancel", status_code=202, response_model=CancelRequested)
async def cancel(job_id: str, state: StateDep, principal: PrincipalDep, request: Request) -> dict:
    return await cancel_job(state, principal, job_id, client_ip(request))


def _log_dict(row: JobLogLine) -> dict:
    return {"id": row.id, "attempt": row.attempt, "seq": row.seq, "line": row.line}


@router.get("/api/cloud/jobs/{job_id}/logs", response_model=Logs)
def get_logs(job_id: str, session: SessionDep, principal: PrincipalDep, after: Annotated[int, Query(ge=0, le=MAX_LOG_LINE)] = 0,
             limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
             attempt: Annotated[int | None, Query(ge=1, le=1_000_000)] = None) -> dict:
    visible_job(session, principal, job_id)
    rows = jobs.read_logs(session, job_id, after, limit, attempt)
    return {"job_id": job_id, "lines": [_log_dict(r) for r in rows],
            "next_after": rows[-1].id if rows else after}


@router.get("/api/cloud/jobs/{job_id}/logs/stream", response_class=sse.EventStreamResponse,
            responses=event_stream("`log` events, each `data:` line a log line (id, attempt, seq, line), then one "
                                   "`end` event (job_id, status) once the job has finished"))
async def stream_logs(job_id: str, state: StateDep, principal: PrincipalDep, request: Request,
                      after: Annotated[int | None, Query(ge=0, le=MAX_LOG_LINE)] = None):
    def fetch_sync(cursor: int):
        with state.db.read_session() as session:
            job = visible_job(session, principal, job_id)
            rows = jobs.read_logs(session, job_id, cursor, 500)
            frames = [(r.id, sse.frame(_log_dict(r), "log", r.id)) for r in rows]
            done = job.status in TERMINAL_STATUSES and not rows
            if done:
                frames.append((cursor, sse.frame({"job_id": job_id, "status": job.status}, "end")))
            return frames, done

    await asyncio.to_thread(fetch_sync, 0)  # 404 before the stream starts
    return sse.response(sse.tail(request, lambda c: asyncio.to_thread(fetch_sync, c), sse.last_event_id(request, after)))


@router.get("/api/cloud/jobs/{job_id}/outputs/{name:path}", response_class=FileResponse, responses=DOWNLOAD)
def download_output(job_id: str, name: str, session: SessionDep, state: StateDep,
                    principal: PrincipalDep) -> FileResponse:
    job = visible_job(session, principal, job_id)
    if not any(o["name"] == name for o in job.outputs):
        raise NotFound(f"job {job_id} has no output {name!r}")
    path: Path = outputs.stored_path(state.settings, job_id, name, job.attempt)
    if not path.is_file():
        raise NotFound(f"output {name!r} of job {job_id} is missing on this server")
    return FileResponse(path, filename=Path(name).name)

