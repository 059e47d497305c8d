"""How the job commands show things: aligned tables, one field a line, progress, and a job's events
followed live (a redrawn bar on a terminal, plain lines otherwise). No HTTP here."""

from __future__ import annotations

import json
import shutil
import sys
import time
from datetime import datetime, timezone
from typing import Any, TextIO


def emit(document: Any) -> None:
    """``--json``: the API's answer as one document."""
    print(json.dumps(document, indent=2, default=str))


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """Left-aligned columns two spaces apart; ``None`` shows as ``-``."""
    cells = [[("-" if v is None or v == "" else str(v)) for v in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)


def when(value: str | None) -> str | None:
    """An API timestamp in local time, to the second."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def percent_of(progress: dict[str, Any] | None) -> float | None:
    if not progress:
        return None
    if isinstance(progress.get("percent"), (int, float)):
        return max(0.0, min(100.0, float(progress["percent"])))
    step, total = progress.get("step"), progress.get("total_steps")
    if isinstance(step, (int, float)) and isinstance(total, (int, float)) and total > 0:
        return max(0.0, min(100.0, 100.0 * step / total))
    return None


def progress_text(progress: dict[str, Any] | None) -> str | None:
    """``45% step 90/200 loss 0.3142`` from what the training reported (None when it reported nothing)."""
    if not progress:
        return None
    parts = []
    percent = percent_of(progress)
    if percent is not None:
        parts.append(f"{int(percent)}%")
    step, total = progress.get("step"), progress.get("total_steps")
    if step is not None:
        parts.append(f"step {step}/{total}" if total is not None else f"step {step}")
    if progress.get("epoch") is not None:
        parts.append(f"epoch {progress['epoch']}")
    loss = progress.get("loss")
    if isinstance(loss, (int, float)):
        parts.append(f"loss {loss:.4g}")
    return " ".join(parts) or None


def progress_bar(percent: float, width: int = 30) -> str:
    filled = int(round(width * max(0.0, min(100.0, percent)) / 100.0))
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def status_detail(job: dict[str, Any]) -> str:
    """What to say about a job's status besides its name (from a job, or a job event's data)."""
    status = job.get("status")
    if status in ("pending_approval", "queued", "pending") and job.get("queue_reason"):
        return job["queue_reason"]
    if status == "running":
        attempt = job.get("attempt")
        if attempt and job.get("max_attempts"):
            attempt = f"{attempt}/{job['max_attempts']}"
        return ", ".join(p for p in (f"on {job['agent_name']}" if job.get("agent_name") else None,
                                     f"attempt {attempt}" if attempt else None) if p)
    if status in ("failed", "cancelled") and job.get("error"):
        return job["error"]
    return ""


def job_rows(jobs: list[dict[str, Any]]) -> str:
    return table(["JOB ID", "STATUS", "CONFIG", "USER", "CREATED", "PROGRESS", "AGENT"],
                 [[j["job_id"], j["status"], j.get("config_name"), j.get("owner"), when(j.get("created_at")),
                   (f"{int(p)}%" if (p := percent_of(j.get("progress"))) is not None else None), j.get("agent_name")]
                  for j in jobs])


def fields(rows: list[tuple[str, Any]]) -> str:
    """``name  value`` lines, names aligned; empty values are left out."""
    rows = [(k, str(v)) for k, v in rows if v not in (None, "")]
    width = max((len(k) for k, _ in rows), default=0)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def job_details(job: dict[str, Any]) -> str:
    labels = ", ".join(f"{k}={v}" for k, v in (job.get("worker_labels") or {}).items())
    agent = job.get("agent_name")
    if agent and job.get("hardware_type"):
        agent += f" ({job['hardware_type']})"
    costs = [f"estimate ${job['cost_estimate_usd']:.2f}" if job.get("cost_estimate_usd") is not None else None,
             f"actual ${job['cost_usd']:.2f}" if job.get("cost_usd") is not None else None]
    waiting = job.get("queue_reason") if job["status"] in ("pending", "pending_approval", "queued") else None
    rows = [("job", job["job_id"]), ("status", job["status"]), ("waiting", waiting), ("error", job.get("error")),
            ("config", job.get("config_name")), ("owner", job.get("owner")),
            ("target", f"{job.get('target')} ({labels})" if labels else job.get("target")),
            ("gpus", job.get("gpu_count")), ("attempt", f"{job.get('attempt')} of {job.get('max_attempts')}"),
            ("agent", agent), ("progress", progress_text(job.get("progress"))),
            ("created", when(job.get("created_at"))), ("started", when(job.get("started_at"))),
            ("finished", when(job.get("finished_at"))), ("cost", ", ".join(c for c in costs if c))]
    rows += [("warning", w) for w in job.get("warnings") or []]
    rows += [("output", f"{o['name']} ({o.get('size', '?')} bytes) {o.get('url', '')}".rstrip())
             for o in job.get("outputs") or []]
    return fields(rows)


def print_page(page: dict[str, Any], key: str, rows: str, what: str, again: str) -> None:
    """The table, and on stderr what it leaves out (the total, the next page)."""
    if not page[key]:
        print(f"no {what}", file=sys.stderr)
        return
    print(rows)
    if page.get("next_cursor"):
        print(f"{len(page[key])} of {page.get('total')} {what}; next page: {again} --cursor {page['next_cursor']}",
              file=sys.stderr)


# ---- following a job ---------------------------------------------------------------------------

def clock(value: str | None = None) -> str:
    """HH:MM:SS, local time, of an API timestamp (now without one)."""
    return (when(value) or time.strftime("%Y-%m-%d %H:%M:%S"))[-8:]


def event_text(event: dict[str, Any]) -> str:
    """A job event as the watch shows it: ``running: on agent-1, attempt 1``, ``approval.granted: by lena``."""
    data = event.get("data") or {}
    if event.get("event_type", "").startswith("job.") and event.get("status"):
        label = event["status"]
        detail = status_detail({**data, "status": label}) or (
            f"{data['config_name']} by {data.get('owner')}" if data.get("config_name") else "")
    else:
        label = event.get("event_type") or "event"
        by = f"by {data['approver']}" if data.get("approver") else None
        detail = ": ".join(p for p in (by, data.get("message") or data.get("reason") or data.get("comment")) if p)
    return f"{label}: {detail}" if detail else label


class LiveView:
    """Events as lines; progress as a redrawn bar on a terminal, else a line each 10 %."""

    def __init__(self, out: TextIO, tty: bool | None = None) -> None:
        self.out = out
        self.tty = out.isatty() if tty is None else tty
        self.status: str | None = None
        self.bucket: int | None = None
        self.bar_shown = False

    def event(self, event: dict[str, Any]) -> None:
        if event.get("status"):
            self.status, self.bucket = event["status"], None
        self._line(f"{clock(event.get('created_at'))} {event['job_id']} {event_text(event)}")

    def polled(self, job: dict[str, Any]) -> None:
        """A status seen by polling the job, shown when no event said so (the event feed is down)."""
        if job["status"] != self.status:
            self.status = job["status"]
            detail = status_detail(job)
            self._line(f"{clock()} {job['job_id']} {job['status']}" + (f": {detail}" if detail else ""))

    def progress(self, job: dict[str, Any]) -> None:
        text = progress_text(job.get("progress"))
        if job["status"] != "running" or self.status not in (None, "running") or text is None:
            return
        percent = percent_of(job.get("progress"))
        if self.tty:
            width = shutil.get_terminal_size((80, 20)).columns
            bar = f"{progress_bar(percent, 24)} " if percent is not None else ""
            self.out.write("\r\x1b[K" + (bar + text)[: width - 1])
            self.out.flush()
            self.bar_shown = True
        else:
            bucket = int(percent // 10) if percent is not None else None
            if bucket != self.bucket:
                self.bucket = bucket
                self._line(f"{clock()} {job['job_id']} progress {text}")

    def close(self) -> None:
        if self.bar_shown:
            self.out.write("\n")
            self.out.flush()
            self.bar_shown = False

    def _line(self, text: str) -> None:
        if self.bar_shown:
            self.out.write("\r\x1b[K")
            self.bar_shown = False
        self.out.write(text + "\n")
        self.out.flush()
