"""`simpletuner jobs submit|list|status|logs|cancel`: training jobs over the REST API, for researchers.

Tables by default, ``--json`` for scripts. ``--wait`` follows a job until it ends (a progress bar on a
terminal, plain lines otherwise) and the exit code says how it ended (see ``api_client.EXIT_CODES_HELP``).
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
import time
from typing import Any

from cli.api_client import (
    EXIT_CODES_HELP, EXIT_FOR_STATUS, EXIT_OK, EXIT_UNREACHABLE, ApiClient, CliError, command, connection_options,
    fetch_pages,
)
from cli.job_view import LiveView, emit, job_details, job_rows, print_page

TERMINAL = frozenset(EXIT_FOR_STATUS)
POLL_SECONDS = 1.0
OUTAGE_SECONDS = 60.0  # while waiting, how long the API may be unreachable before giving up (exit 5)
LOG_PAGE = 1000
EVENT_GRACE_POLLS = 10  # polls that saw the job ended before its event arrived: then it ends anyway


# ---- following a job ---------------------------------------------------------------------------

class EventFeed:
    """The job's events from ``GET /api/events/stream?job_id=``, read by a background thread (from its
    first event, so a watch shows how the job got where it is). Progress is not an event: it is polled."""

    def __init__(self, api: ApiClient, job_id: str) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._api = api.copy()
        self.alive = True
        threading.Thread(target=self._read, args=(job_id,), name="job-events", daemon=True).start()

    def _read(self, job_id: str) -> None:
        try:
            for _, data in self._api.stream("/api/events/stream", job_id=job_id):
                if isinstance(data, dict) and data.get("job_id") == job_id:
                    self.events.put(data)
        except Exception:  # noqa: BLE001 - without the feed the watch still polls the job
            pass
        finally:
            self.alive = False

    def next(self, timeout: float) -> dict[str, Any] | None:
        try:
            return self.events.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return None


def _poll(api: ApiClient, job_id: str, outage: list[float]) -> dict[str, Any] | None:
    """The job, or None while the API is unreachable (for up to ``OUTAGE_SECONDS``, e.g. a restart)."""
    try:
        job = api.get(f"/api/cloud/jobs/{job_id}")
    except CliError as exc:
        if exc.code != EXIT_UNREACHABLE:
            raise
        outage.append(time.monotonic())
        if outage[-1] - outage[0] > OUTAGE_SECONDS:
            raise
        return None
    outage.clear()
    return job


def follow(api: ApiClient, job_id: str, view: LiveView | None) -> dict[str, Any]:
    """Show the job's events and progress until it ends; returns the ended job."""
    feed = EventFeed(api, job_id) if view is not None else None
    outage: list[float] = []
    next_poll, late = 0.0, 0
    try:
        while True:
            wait = next_poll - time.monotonic()
            event = feed.next(wait) if feed is not None else None
            if event is not None:
                view.event(event)  # type: ignore[union-attr]
                if event.get("status") in TERMINAL:
                    next_poll = 0.0
                continue
            if feed is None and wait > 0:
                time.sleep(wait)
            next_poll = time.monotonic() + POLL_SECONDS
            job = _poll(api, job_id, outage)
            if job is None:
                continue
            if view is None or feed is None:
                if job["status"] in TERMINAL:
                    return job
                continue
            if not feed.alive:
                view.polled(job)
            view.progress(job)
            if job["status"] in TERMINAL:
                late += 1  # its event normally follows at once; a slow or broken feed is not waited for long
                if view.status == job["status"] or late > EVENT_GRACE_POLLS or not feed.alive:
                    view.polled(job)
                    return job
    finally:
        if view is not None:
            view.close()


def finish(api: ApiClient, job_id: str, as_json: bool) -> int:
    """``--wait``: follow the job, then print the final state; the exit code says how it ended."""
    job = follow(api, job_id, None if as_json else LiveView(sys.stdout))
    if as_json:
        emit(job)
    elif job.get("outputs"):
        print("outputs: " + ", ".join(o["name"] for o in job["outputs"]))
    return EXIT_FOR_STATUS[job["status"]]


# ---- commands ----------------------------------------------------------------------------------

def _label(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


@command
def submit(api: ApiClient, args: argparse.Namespace) -> int:
    body = {"config_name": args.config, "target": args.target, "worker_labels": dict(args.label or []),
            "gpu_count": args.gpus, "priority": args.priority, "team": args.team,
            "idempotency_key": args.idempotency_key}
    answer = api.post("/api/queue/submit", {k: v for k, v in body.items() if v is not None})
    job_id = answer["job_id"]
    if args.json and not args.wait:
        emit(answer)
        return EXIT_OK
    if not args.json:
        again = " (already submitted with this idempotency key)" if answer.get("idempotent_replay") else ""
        print(f"submitted {job_id}{again}: {args.config}, {answer['status']}", flush=True)
        for warning in answer.get("job", {}).get("warnings") or []:
            print(f"warning: {warning}", file=sys.stderr)
    return finish(api, job_id, args.json) if args.wait else EXIT_OK


@command
def list_jobs(api: ApiClient, args: argparse.Namespace) -> int:
    params = {"status": args.status, "user": args.user, "config": args.config, "limit": args.limit,
              "cursor": args.cursor}
    page = fetch_pages(api, "/api/cloud/jobs", "jobs", params, args.all)
    if args.json:
        emit(page)
    else:
        print_page(page, "jobs", job_rows(page["jobs"]), "jobs", "simpletuner jobs list")
    return EXIT_OK


@command
def status(api: ApiClient, args: argparse.Namespace) -> int:
    if args.wait:
        return finish(api, args.job_id, args.json)
    job = api.get(f"/api/cloud/jobs/{args.job_id}")
    if args.json:
        emit(job)
    else:
        print(job_details(job))
    return EXIT_OK


@command
def logs(api: ApiClient, args: argparse.Namespace) -> int:
    if args.follow:
        return _follow_logs(api, args)
    params = {"attempt": args.attempt, "limit": LOG_PAGE, "after": 0}
    page = api.get(f"/api/cloud/jobs/{args.job_id}/logs", **params)
    document, lines = page, list(page["lines"])
    while len(page["lines"]) == LOG_PAGE:
        page = api.get(f"/api/cloud/jobs/{args.job_id}/logs", **{**params, "after": page["next_after"]})
        lines += page["lines"]
    if args.json:
        emit({**document, "lines": lines, "next_after": page["next_after"]})
        return EXIT_OK
    shown = None
    for row in lines:
        shown = _log_line(row, shown)
    return EXIT_OK


def _log_line(row: dict[str, Any], shown_attempt: int | None, flush: bool = False) -> int:
    """Print one log line (with a marker where a new attempt starts); returns its attempt."""
    if shown_attempt is not None and row["attempt"] != shown_attempt:
        print(f"----- attempt {row['attempt']} -----")
    print(row["line"], flush=flush)
    return row["attempt"]


def _follow_logs(api: ApiClient, args: argparse.Namespace) -> int:
    shown = None
    for event, data in api.stream(f"/api/cloud/jobs/{args.job_id}/logs/stream"):
        if event == "log" and (args.attempt is None or data.get("attempt") == args.attempt):
            if args.json:
                print(json.dumps(data), flush=True)
            else:
                shown = _log_line(data, shown, flush=True)
        elif event == "end":
            if args.json:
                print(json.dumps(data), flush=True)
            return EXIT_FOR_STATUS.get(data.get("status"), EXIT_OK)
    return EXIT_OK  # not reached: the stream resumes until its end event


@command
def cancel(api: ApiClient, args: argparse.Namespace) -> int:
    answer = api.post(f"/api/cloud/jobs/{args.job_id}/cancel")
    if args.wait:
        if not args.json:
            print(f"cancel requested for {args.job_id}", flush=True)
        return finish(api, args.job_id, args.json)
    if args.json:
        emit(answer)
    else:
        print(f"cancel requested for {args.job_id}")
    return EXIT_OK


def add_parser(sub: argparse._SubParsersAction) -> None:
    common = connection_options()
    fmt = argparse.RawDescriptionHelpFormatter
    jobs = sub.add_parser("jobs", help="submit and follow training jobs over the REST API", epilog=EXIT_CODES_HELP,
                          formatter_class=fmt, description="Submit, list, inspect, follow and cancel jobs.")
    commands = jobs.add_subparsers(dest="jobs_command", required=True, metavar="COMMAND")

    def leaf(name: str, func, help_text: str) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, parents=[common], help=help_text, description=help_text,
                                     epilog=EXIT_CODES_HELP, formatter_class=fmt)
        parser.set_defaults(func=func)
        return parser

    p = leaf("submit", submit, "submit a job on a stored config")
    p.add_argument("config", help="the config's name (GET /api/configs)")
    p.add_argument("--target", choices=("auto", "worker", "local"), default="auto")
    p.add_argument("--label", action="append", type=_label, metavar="KEY=VALUE",
                   help="only agents with this label (repeatable; values may be globs, e.g. gpu_type=a100*)")
    p.add_argument("--gpus", type=int, metavar="N", help="GPU count (default: the config's)")
    p.add_argument("--priority", type=int, help="0-1000 (needs job.priority.high)")
    p.add_argument("--team", help="team to charge (slug, org/team or id)")
    p.add_argument("--idempotency-key", help="submitting again with the same key returns the same job")
    p.add_argument("--wait", action="store_true", help="follow the job until it ends; the exit code says how")

    p = leaf("list", list_jobs, "list jobs, newest first (researchers see their own)")
    p.add_argument("--status", help="pending, pending_approval, queued, running, completed, failed or cancelled")
    p.add_argument("--user", help="owner's username or id")
    p.add_argument("--config", help="config name")
    p.add_argument("--limit", type=int, help="rows per page (API default 100, at most 1000)")
    p.add_argument("--cursor", help="next page: the cursor printed with the previous one")
    p.add_argument("--all", action="store_true", help="every page")

    p = leaf("status", status, "show a job")
    p.add_argument("job_id")
    p.add_argument("--wait", action="store_true", help="follow the job until it ends; the exit code says how")

    p = leaf("logs", logs, "print a job's log lines")
    p.add_argument("job_id")
    p.add_argument("-f", "--follow", action="store_true",
                   help="stream new lines until the job ends (exit code: how it ended; --json: one object a line)")
    p.add_argument("--attempt", type=int, help="only this attempt's lines")

    p = leaf("cancel", cancel, "cancel a job")
    p.add_argument("job_id")
    p.add_argument("--wait", action="store_true", help="then follow the job until it ends")
