"""`simpletuner jobs …` and `simpletuner approvals …` as researchers run them: the real command in a
subprocess, against a real stack, configured only by SIMPLETUNER_URL / SIMPLETUNER_TOKEN."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.stack import REPO_ROOT
from tests.ports import free_port
from tests.e2e.test_users_and_auth import bearer_for, make_user

pytestmark = pytest.mark.e2e

JOB_ID = re.compile(r"\bjob-[0-9a-f]{24}\b")


def cli_env(stack, token: str | None) -> dict[str, str]:
    """The stack's environment without any server setting (and without PYTHONUNBUFFERED: live output
    must be flushed by the command itself), plus the CLI's two variables."""
    env = {k: v for k, v in stack.env.items() if not k.startswith("SIMPLETUNER_") and k != "PYTHONUNBUFFERED"}
    env["SIMPLETUNER_URL"] = stack.api_url
    if token is not None:
        env["SIMPLETUNER_TOKEN"] = token
    return env


def cli(stack, *args: str, token: str | None = None, timeout: float = 120.0) -> subprocess.CompletedProcess:
    token = stack.admin_token if token is None else token
    done = subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=REPO_ROOT, env=cli_env(stack, token or None),
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    assert "Traceback" not in done.stderr, done.stderr
    return done


class Background:
    """A CLI command left running, its output in files the test polls."""

    def __init__(self, stack, tmp_path: Path, name: str, *args: str, token: str | None = None) -> None:
        self.stack = stack
        self.out_path, self.err_path = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.popen = subprocess.Popen([sys.executable, "-m", "cli.main", *args], cwd=REPO_ROOT,
                                          env=cli_env(stack, token or stack.admin_token), stdout=out, stderr=err,
                                          stdin=subprocess.DEVNULL)

    @property
    def out(self) -> str:
        return self.out_path.read_text()

    @property
    def err(self) -> str:
        return self.err_path.read_text()

    def wait_output(self, needle: str, timeout: float = 60.0) -> str:
        return self.stack.wait_for(lambda: needle in self.out and self.out, timeout,
                                   f"{needle!r} in the output of {self.popen.args[3:]}")

    def exit_code(self, timeout: float = 60.0) -> int:
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.stack.fail(f"{self.popen.args[3:]} still running after {timeout}s; output:\n{self.out}\n{self.err}")
        assert "Traceback" not in self.err, self.err
        return code

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)


@pytest.fixture
def background(stack, tmp_path):
    started: list[Background] = []

    def start(name: str, *args: str, token: str | None = None) -> Background:
        started.append(Background(stack, tmp_path, name, *args, token=token))
        return started[-1]

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def agent(stack):
    _, token = stack.create_worker("cli-agent", {"pool": "cli"})
    stack.start_agent(token, name="cli-agent")
    return stack


def columns_aligned(table: str, header: str) -> bool:
    """Every row has a value starting where the header's column starts (after the first)."""
    lines = table.splitlines()
    head = lines[0]
    start = head.index(header)
    return all(len(line) > start and line[start] != " " and line[start - 2:start] == "  " for line in lines[1:])


def test_submit_wait_list_status_and_logs(agent):
    stack = agent
    stack.put_config("quick", steps=100, step_delay_seconds=0.05)  # runs ~5 s: progress is seen
    stack.put_config("fails", steps=20, step_delay_seconds=0.01, fail_at_step=5)

    done = cli(stack, "jobs", "submit", "quick", "--label", "pool=cli", "--wait")
    assert done.returncode == 0, (done.stdout, done.stderr)
    quick = JOB_ID.search(done.stdout.splitlines()[0]).group(0)
    assert f"submitted {quick}: quick" in done.stdout
    events = [line.split(" ", 2)[2] for line in done.stdout.splitlines()[1:] if line.split(" ")[1:2] == [quick]]
    statuses = [e.split(":")[0] for e in events if not e.startswith("progress")]
    assert statuses == ["pending", "queued", "running", "completed"], done.stdout  # every event, in order
    assert "pending: quick by admin" in events and "running: on cli-agent, attempt 1" in events, events
    assert re.search(rf"{quick} progress \d+% step \d+/100 loss \d", done.stdout), done.stdout  # plain lines: no TTY
    assert f"{quick} completed" in done.stdout and "outputs: " in done.stdout and "model.npz" in done.stdout
    assert "\r" not in done.stdout and "\x1b" not in done.stdout
    job = stack.job(quick)
    assert job["status"] == "completed" and job["worker_labels"] == {"pool": "cli"}, job

    failed = cli(stack, "jobs", "submit", "fails", "--wait")
    assert failed.returncode == 1, (failed.stdout, failed.stderr)
    fails = JOB_ID.search(failed.stdout).group(0)
    error = stack.job(fails)["error"]
    assert error and f"{fails} failed: {error}" in failed.stdout, (error, failed.stdout)

    submitted = cli(stack, "jobs", "submit", "quick", "--json")
    assert submitted.returncode == 0, submitted.stderr
    answer = json.loads(submitted.stdout)
    third = answer["job_id"]
    assert answer["idempotent_replay"] is False and answer["job"]["config_name"] == "quick", answer
    waited = cli(stack, "jobs", "status", third, "--wait", "--json")
    assert waited.returncode == 0, waited.stderr
    assert json.loads(waited.stdout)["status"] == "completed"

    # list: an aligned table, newest first; --json is the API's answer; filters and pages
    listed = cli(stack, "jobs", "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["JOB", "ID", "STATUS", "CONFIG", "USER", "CREATED", "PROGRESS", "AGENT"], lines[0]
    assert [JOB_ID.search(line).group(0) for line in lines[1:]] == [third, fails, quick], listed.stdout
    assert all(columns_aligned(listed.stdout, h) for h in ("STATUS", "CONFIG", "USER", "CREATED", "PROGRESS")), \
        listed.stdout
    assert re.search(rf"{quick}\s+completed\s+quick\s+admin\s+\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\s+100%\s+cli-agent",
                     listed.stdout), listed.stdout
    as_json = json.loads(cli(stack, "jobs", "list", "--json").stdout)
    api = stack.jobs()
    assert as_json["total"] == api["total"] == 3 and as_json["next_cursor"] is None
    assert [j["job_id"] for j in as_json["jobs"]] == [j["job_id"] for j in api["jobs"]]
    only_failed = cli(stack, "jobs", "list", "--status", "failed").stdout
    assert JOB_ID.findall(only_failed) == [fails], only_failed
    assert JOB_ID.findall(cli(stack, "jobs", "list", "--config", "quick").stdout) == [third, quick]
    assert len(JOB_ID.findall(cli(stack, "jobs", "list", "--user", "admin").stdout)) == 3
    nobody = cli(stack, "jobs", "list", "--user", "nobody")
    assert nobody.returncode == 0 and nobody.stdout == "" and "no jobs" in nobody.stderr
    first = cli(stack, "jobs", "list", "--limit", "1")
    assert JOB_ID.findall(first.stdout) == [third] and "1 of 3 jobs" in first.stderr, (first.stdout, first.stderr)
    cursor = re.search(r"--cursor (\S+)", first.stderr).group(1)
    assert JOB_ID.findall(cli(stack, "jobs", "list", "--limit", "1", "--cursor", cursor).stdout) == [fails]
    every = json.loads(cli(stack, "jobs", "list", "--limit", "1", "--all", "--json").stdout)
    assert [j["job_id"] for j in every["jobs"]] == [third, fails, quick] and every["next_cursor"] is None
    bad = cli(stack, "jobs", "list", "--status", "finished")
    assert bad.returncode == 4 and "unknown status 'finished'" in bad.stderr and "(HTTP 422)" in bad.stderr

    # status: one field a line
    shown = cli(stack, "jobs", "status", fails)
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"^status\s+failed$", shown.stdout, re.M), shown.stdout
    assert re.search(rf"^error\s+{re.escape(error)}$", shown.stdout, re.M), shown.stdout
    assert re.search(r"^agent\s+cli-agent \(cpu\)$", shown.stdout, re.M), shown.stdout
    assert re.search(r"^progress\s+\d+% step \d+/20", shown.stdout, re.M), shown.stdout
    assert json.loads(cli(stack, "jobs", "status", fails, "--json").stdout) == stack.job(fails)

    # logs: every line as stored, also with --json and --follow (an ended job: all, then the end)
    stored = [line["line"] for line in stack.logs(quick)]
    printed = cli(stack, "jobs", "logs", quick)
    assert printed.returncode == 0 and printed.stdout.splitlines() == stored and stored, printed.stdout
    assert [r["line"] for r in json.loads(cli(stack, "jobs", "logs", quick, "--json").stdout)["lines"]] == stored
    followed = cli(stack, "jobs", "logs", quick, "--follow")
    assert followed.returncode == 0 and followed.stdout.splitlines() == stored
    followed_failed = cli(stack, "jobs", "logs", fails, "-f")
    assert followed_failed.returncode == 1 and "simulated failure at step 5" in followed_failed.stdout


def test_follow_logs_ctrl_c_and_cancel(agent, background):
    stack = agent
    stack.put_config("long", steps=100000, step_delay_seconds=0.05)
    submit = background("submit", "jobs", "submit", "long", "--wait")
    job_id = JOB_ID.search(submit.wait_output("submitted ")).group(0)
    submit.wait_output(f"{job_id} running")
    submit.wait_output(f"{job_id} progress")

    follow = background("follow", "jobs", "logs", job_id, "--follow")
    interrupted = background("interrupted", "jobs", "logs", job_id, "--follow")
    follow.wait_output("step 20/100000")  # lines arrive while the job runs
    interrupted.wait_output("step 20/100000")
    interrupted.popen.send_signal(signal.SIGINT)
    assert interrupted.exit_code(30) == 130
    assert interrupted.err == ""  # quietly

    cancelled = cli(stack, "jobs", "cancel", job_id)
    assert cancelled.returncode == 0 and cancelled.stdout.strip() == f"cancel requested for {job_id}", cancelled
    assert submit.exit_code() == 3, (submit.out, submit.err)
    assert f"{job_id} cancelled" in submit.out
    assert follow.exit_code() == 3, (follow.out, follow.err)
    streamed, stored = follow.out.splitlines(), [line["line"] for line in stack.logs(job_id)]
    assert streamed and streamed == stored[:len(streamed)], (streamed[-3:], stored[-3:])
    assert stack.job(job_id)["status"] == "cancelled"

    assert cli(stack, "jobs", "status", job_id, "--wait").returncode == 3
    again = cli(stack, "jobs", "cancel", job_id)
    assert again.returncode == 4 and f"job {job_id} is already cancelled (HTTP 409)" in again.stderr, again.stderr

    # cancel --wait of a queued job (no agent has that label): the exit code says it ended cancelled
    queued = json.loads(cli(stack, "jobs", "submit", "long", "--label", "pool=nobody", "--json").stdout)["job_id"]
    stack.wait_job(queued, "queued", timeout=30)
    waiting = cli(stack, "jobs", "status", queued)
    assert re.search(r"^waiting\s+\S", waiting.stdout, re.M), waiting.stdout
    ended = cli(stack, "jobs", "cancel", queued, "--wait")
    assert ended.returncode == 3 and f"{queued} cancelled" in ended.stdout, (ended.stdout, ended.stderr)


def test_approvals_list_approve_reject(agent):
    stack = agent
    stack.put_config("gated-cli", steps=2)
    stack.expect(stack.client.post("/api/approvals/rules", json={
        "name": "gate", "condition": "config_pattern", "threshold": "gated-*", "required_approver_level": "lead"}), 201)
    for name, level in (("rae", "researcher"), ("lena", "lead")):
        make_user(stack, name, level)
    rae = bearer_for(stack, "rae").headers["Authorization"].removeprefix("Bearer ")
    lena = bearer_for(stack, "lena").headers["Authorization"].removeprefix("Bearer ")

    jobs = []
    for _ in range(2):
        done = cli(stack, "jobs", "submit", "gated-cli", token=rae)
        assert done.returncode == 0, done.stderr
        jobs.append(JOB_ID.search(done.stdout).group(0))
    a, b = jobs
    for job_id in jobs:
        stack.wait_job(job_id, "pending_approval", timeout=30)
    requests = {r["job_id"]: r["id"] for r in stack.expect(stack.client.get("/api/approvals/requests"), 200)["requests"]}

    listed = cli(stack, "approvals", "list", token=lena)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[0].split()[:6] == ["REQUEST", "JOB", "STATUS", "USER", "CONFIG", "RULE"]
    for job_id in jobs:
        assert re.search(rf"{requests[job_id]}\s+{job_id}\s+pending\s+rae\s+gated-cli\s+gate\s", listed.stdout)
    pending = json.loads(cli(stack, "approvals", "list", "--pending", "--json", token=lena).stdout)
    assert {r["id"] for r in pending["requests"]} == set(requests.values()) and pending["total"] == 2
    shown = cli(stack, "jobs", "status", a, token=rae).stdout
    assert re.search(r"^status\s+pending_approval$", shown, re.M) and re.search(r"^waiting\s+\S", shown, re.M), shown

    refused = cli(stack, "approvals", "approve", requests[a], token=rae)
    assert refused.returncode == 4, refused
    assert refused.stderr.strip() == "error: missing permission 'admin.approve' (HTTP 403)", refused.stderr
    assert JOB_ID.findall(cli(stack, "approvals", "list", token=rae).stdout) == [b, a]  # her own requests

    approved = cli(stack, "approvals", "approve", requests[a], "--comment", "go ahead", token=lena)
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout.startswith(f"approved {requests[a]} (job {a} of rae"), approved.stdout
    watched = cli(stack, "jobs", "status", a, "--wait", token=rae)
    assert watched.returncode == 0, (watched.stdout, watched.stderr)
    assert f"{a} approval.required: " in watched.stdout and f"{a} approval.granted: by lena: go ahead" in watched.stdout
    assert f"{a} completed" in watched.stdout

    rejected = cli(stack, "approvals", "reject", b, "-m", "not now", "--json", token=lena)  # by job id
    assert rejected.returncode == 0, rejected.stderr
    assert json.loads(rejected.stdout)["status"] == "rejected"
    ended = cli(stack, "jobs", "status", b, "--wait", token=rae)
    assert ended.returncode == 3 and "rejected by lena: not now" in ended.stdout, ended.stdout

    twice = cli(stack, "approvals", "approve", requests[a], token=lena)
    assert twice.returncode == 4 and "is already approved (HTTP 409)" in twice.stderr, twice.stderr
    decided = cli(stack, "approvals", "list", "--status", "approved", token=lena).stdout
    assert JOB_ID.findall(decided) == [a] and re.search(r"\blena\s*$", decided.splitlines()[1]), decided


@pytest.mark.parametrize("args, token, code, needle", [
    (["jobs", "list"], "st_not_a_key", 4, "error: invalid API key or login token (HTTP 401)"),
    (["jobs", "list"], "", 4, "missing Authorization: Bearer header or login session (HTTP 401); "
                              "set SIMPLETUNER_TOKEN or pass --token"),
    (["jobs", "status", "job-000000000000000000000000"], None, 4, "job 'job-000000000000000000000000' not found"),
    (["jobs", "logs", "job-000000000000000000000000", "--follow"], None, 4, "not found (HTTP 404)"),
    (["jobs", "cancel", "job-000000000000000000000000"], None, 4, "not found (HTTP 404)"),
    (["jobs", "submit", "no-such-config"], None, 4, "no-such-config"),
    (["jobs", "submit", "x", "--gpus", "0"], None, 4, "gpu_count"),
    (["jobs", "list", "--limit", "0"], None, 4, "limit"),
    (["approvals", "approve", "apr_missing"], None, 4, "approval request 'apr_missing' not found (HTTP 404)"),
    (["approvals", "reject", "job-000000000000000000000000"], None, 4, "has no approval request"),
    (["jobs", "submit"], None, 2, "the following arguments are required: config"),
    (["jobs", "list", "--limit", "many"], None, 2, "invalid int value: 'many'"),
    (["jobs", "submit", "x", "--label", "nolabel"], None, 2, "expected KEY=VALUE"),
    (["jobs", "frobnicate"], None, 2, "invalid choice: 'frobnicate'"),
    (["approvals", "list", "--status", "maybe"], None, 2, "invalid choice: 'maybe'"),
    (["jobs", "list", "--url", "localhost:8001"], None, 2, "must start with http:// or https://"),
])
def test_refusals_and_usage_errors(shared_stack, args, token, code, needle):
    done = cli(shared_stack, *args, token=token)
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert needle in done.stderr, done.stderr
    assert done.stdout == ""


def test_unreachable_api_exits_5(shared_stack):
    url = f"http://127.0.0.1:{free_port()}"
    for args, env_url in ((["jobs", "list"], url), (["jobs", "logs", "job-x", "--follow"], url),
                          (["approvals", "list", "--url", url], shared_stack.api_url)):  # --url wins over the env
        env = {**cli_env(shared_stack, "st_whatever"), "SIMPLETUNER_URL": env_url}
        done = subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=REPO_ROOT, env=env, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 5, (args, done.stdout, done.stderr)
        assert done.stderr.startswith(f"error: cannot reach the API at {url}: "), done.stderr
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
