"""The job CLI's formatting: tables, progress, the live view, SSE parsing and API error messages."""

from __future__ import annotations

import io
from datetime import datetime

import httpx
import pytest

from cli.api_client import EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_USAGE, ApiClient, CliError, error_detail, parse_sse
from cli.job_view import (
    LiveView, event_text, fields, job_rows, percent_of, progress_bar, progress_text, status_detail, table, when,
)


def local(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def test_table_aligns_columns_and_shows_missing_values_as_dashes():
    text = table(["ID", "STATUS", "NOTE"], [["job-1", "running", None], ["job-22", "completed", "ok"]])
    assert text.splitlines() == ["ID      STATUS     NOTE",
                                 "job-1   running    -",
                                 "job-22  completed  ok"]


def test_fields_align_names_and_leave_out_empty_values():
    assert fields([("job", "job-1"), ("error", None), ("progress", "50%"), ("cost", "")]) == \
        "job       job-1\nprogress  50%"


def test_times_are_local_and_to_the_second():
    assert when("2024-05-01T12:00:03.123456Z") == local("2024-05-01T12:00:03+00:00")
    assert when("2024-05-01T12:00:03") == local("2024-05-01T12:00:03+00:00")  # naive: UTC
    assert when(None) is None and when("soon") == "soon"


@pytest.mark.parametrize("progress, percent, text", [
    (None, None, None),
    ({}, None, None),
    ({"step": 90, "total_steps": 200, "loss": 0.314159, "percent": 45.0}, 45.0, "45% step 90/200 loss 0.3142"),
    ({"step": 3, "total_steps": 4}, 75.0, "75% step 3/4"),
    ({"step": 7}, None, "step 7"),
    ({"percent": 99.9, "epoch": 2}, 99.9, "99% epoch 2"),  # never rounds up to 100 % before the end
    ({"percent": 140}, 100.0, "100%"),
    ({"loss": "nan?"}, None, None),
])
def test_progress_percent_and_text(progress, percent, text):
    assert percent_of(progress) == percent
    assert progress_text(progress) == text


def test_progress_bar():
    assert progress_bar(0, 10) == "[----------]"
    assert progress_bar(45, 10) == "[####------]"
    assert progress_bar(100, 10) == "[##########]"
    assert progress_bar(250, 4) == "[####]"


def test_status_detail_says_why_a_job_waits_where_it_runs_and_why_it_ended():
    assert status_detail({"status": "queued", "queue_reason": "no agent with gpu_type=a100"}) == \
        "no agent with gpu_type=a100"
    assert status_detail({"status": "running", "agent_name": "a1", "attempt": 2, "max_attempts": 3}) == \
        "on a1, attempt 2/3"
    assert status_detail({"status": "failed", "error": "exit code 3"}) == "exit code 3"
    assert status_detail({"status": "completed", "error": None}) == ""


def test_job_rows():
    job = {"job_id": "job-1", "status": "running", "config_name": "tiny", "owner": "rae",
           "created_at": "2024-05-01T12:00:03Z", "progress": {"percent": 45.5}, "agent_name": "gpu-1"}
    lines = job_rows([job, {**job, "job_id": "job-2", "status": "queued", "progress": None, "agent_name": None}])
    assert lines.splitlines()[0].split() == ["JOB", "ID", "STATUS", "CONFIG", "USER", "CREATED", "PROGRESS", "AGENT"]
    assert lines.splitlines()[1].split() == ["job-1", "running", "tiny", "rae", *local("2024-05-01T12:00:03+00:00")
                                             .split(), "45%", "gpu-1"]
    assert lines.splitlines()[2].split()[-2:] == ["-", "-"]


def test_event_text():
    assert event_text({"event_type": "job.submitted", "status": "pending",
                       "data": {"config_name": "tiny", "owner": "rae"}}) == "pending: tiny by rae"
    assert event_text({"event_type": "job.started", "status": "running",
                       "data": {"attempt": 1, "agent_name": "gpu-1"}}) == "running: on gpu-1, attempt 1"
    assert event_text({"event_type": "job.cancelled", "status": "cancelled",
                       "data": {"error": "rejected by lena: no"}}) == "cancelled: rejected by lena: no"
    assert event_text({"event_type": "approval.granted", "status": None,
                       "data": {"approver": "lena", "comment": "ok"}}) == "approval.granted: by lena: ok"
    assert event_text({"event_type": "quota.warning", "status": "pending", "data": {"message": "over 5 jobs"}}) == \
        "quota.warning: over 5 jobs"


RUNNING = {"job_id": "job-1", "status": "running", "progress": {"step": 5, "total_steps": 10, "percent": 50.0}}


def test_live_view_plain_lines_when_not_a_terminal():
    out = io.StringIO()
    view = LiveView(out, tty=False)
    view.event({"job_id": "job-1", "event_type": "job.started", "status": "running", "data": {"agent_name": "a"},
                "created_at": "2024-05-01T12:00:03Z"})
    view.progress(RUNNING)
    view.progress({**RUNNING, "progress": {"step": 6, "total_steps": 10, "percent": 55.0}})  # same 10 %: no line
    view.progress({**RUNNING, "progress": {"step": 7, "total_steps": 10, "percent": 70.0}})
    view.polled({"job_id": "job-1", "status": "failed", "error": "exit code 3"})
    view.close()
    lines = [line.split(" ", 1)[1] for line in out.getvalue().splitlines()]
    assert lines == ["job-1 running: on a", "job-1 progress 50% step 5/10", "job-1 progress 70% step 7/10",
                     "job-1 failed: exit code 3"]
    assert out.getvalue().splitlines()[0].startswith(local("2024-05-01T12:00:03+00:00")[-8:])
    assert "\r" not in out.getvalue()


def test_live_view_redraws_a_bar_on_a_terminal():
    out = io.StringIO()
    view = LiveView(out, tty=True)
    view.event({"job_id": "job-1", "event_type": "job.started", "status": "running", "data": {}})
    view.progress(RUNNING)
    view.progress({**RUNNING, "progress": {"step": 6, "total_steps": 10, "percent": 60.0}})
    view.event({"job_id": "job-1", "event_type": "job.completed", "status": "completed", "data": {}})
    view.polled({"job_id": "job-1", "status": "completed"})  # the event said so already: nothing more
    view.close()
    text = out.getvalue()
    assert "\r\x1b[K[############------------] 50% step 5/10" in text
    assert "\r\x1b[K[##############----------] 60% step 6/10\r\x1b[K" in text  # the bar is cleared for a line
    assert text.endswith("job-1 completed\n") and text.count("completed") == 1


def test_progress_of_a_job_not_running_is_not_drawn():
    out = io.StringIO()
    view = LiveView(out, tty=True)
    view.event({"job_id": "job-1", "event_type": "job.queued", "status": "queued", "data": {}})
    view.progress({**RUNNING, "status": "queued"})
    assert "%" not in out.getvalue()


def test_parse_sse_frames_ids_events_and_keepalives():
    lines = ["id: 7", "event: log", 'data: {"line": "hello"}', "", ": keepalive", "",
             "event: end", 'data: {"status": "completed"}', "", "data: not json", ""]
    assert list(parse_sse(lines)) == [("7", "log", {"line": "hello"}), (None, "end", {"status": "completed"}),
                                      (None, "message", "not json")]


@pytest.mark.parametrize("status, body, message", [
    (404, {"detail": "job 'x' not found"}, "job 'x' not found"),
    (422, {"detail": [{"loc": ["query", "limit"], "msg": "too small"}]}, "query.limit: too small"),
    (502, "<html>\n  Bad   gateway</html>", "<html> Bad gateway</html>"),
    (403, None, "Forbidden"),
])
def test_error_detail(status, body, message):
    if isinstance(body, dict):
        response = httpx.Response(status, json=body)
    else:
        response = httpx.Response(status, text=body or "")
    assert error_detail(response) == message


def client_answering(status: int, body: dict, token: str | None = "st_key") -> ApiClient:
    api = ApiClient("http://api.test", token)
    api._http = httpx.Client(base_url=api.url, transport=httpx.MockTransport(
        lambda request: httpx.Response(status, json=body)))
    return api


def test_api_refusals_and_outages_map_to_exit_codes():
    with pytest.raises(CliError) as refused:
        client_answering(409, {"detail": "job job-1 is already cancelled"}).post("/api/cloud/jobs/job-1/cancel")
    assert (str(refused.value), refused.value.code) == ("job job-1 is already cancelled (HTTP 409)", EXIT_REFUSED)
    with pytest.raises(CliError) as anonymous:
        client_answering(401, {"detail": "missing Authorization"}, token=None).get("/api/cloud/jobs")
    assert str(anonymous.value).endswith("(HTTP 401); set SIMPLETUNER_TOKEN or pass --token")
    with pytest.raises(CliError) as down:
        client_answering(503, {"detail": "Temporal is unavailable: x"}).get("/api/cloud/jobs")
    assert down.value.code == EXIT_UNREACHABLE and "HTTP 503" in str(down.value)


@pytest.mark.parametrize("url, token", [("localhost:8001", None), ("http://h", "two words"), ("http://h", "clé")])
def test_unusable_url_or_token_is_a_usage_error(url, token):
    with pytest.raises(CliError) as bad:
        ApiClient(url, token)
    assert bad.value.code == EXIT_USAGE


def test_help_documents_the_exit_codes(capsys):
    from cli.main import build_parser

    with pytest.raises(SystemExit) as done:
        build_parser().parse_args(["jobs", "submit", "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for line in ("0    done", "1    the job failed", "3    the job was cancelled", "4    the API refused",
                 "5    the API cannot be reached", "130  interrupted"):
        assert line in text
