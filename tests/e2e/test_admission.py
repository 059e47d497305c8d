"""Admission end to end: many concurrent submissions against global, per-user and team limits.

The admission table numbers every enqueue, admit and release with one counter, so the test replays
the exact history afterwards: no limit was exceeded at any instant, every admission took the best
eligible job (priority, then fair-share tag, then FIFO), and every slot was given back.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.e2e.test_users_and_auth import bearer_for, make_user

pytestmark = pytest.mark.e2e

QUICK = ["/bin/sh", "-c", "exit 0"]


def rows(stack) -> list[dict]:
    return stack.sql("SELECT * FROM admission")


def replay(stack, max_total: int, max_user: int, team_limits: dict[str, int]) -> list[str]:
    """Walk the admission history in order; returns the admission order."""
    table = rows(stack)
    events = sorted([(r["enqueued_seq"], "enqueue", r) for r in table] + [(r["admit_seq"], "admit", r) for r in table
                                                                           if r["admit_seq"]]
                    + [(r["release_seq"], "release", r) for r in table if r["release_seq"]], key=lambda e: e[0])
    waiting: dict[str, dict] = {}
    running: dict[str, dict] = {}
    order = []

    def key(r: dict) -> tuple:
        prio = r["priority_override"] if r["priority_override"] is not None else r["priority"]
        return (-prio, r["fair_tag"], r["enqueued_seq"])

    def eligible(r: dict) -> bool:
        per_user = sum(1 for x in running.values() if x["user_id"] == r["user_id"])
        per_team = sum(1 for x in running.values() if r["team_id"] and x["team_id"] == r["team_id"])
        return per_user < max_user and (not r["team_id"] or per_team < team_limits.get(r["team_id"], 10**9))

    for _, kind, r in events:
        job = r["job_id"]
        if kind == "enqueue":
            waiting[job] = r
        elif kind == "admit":
            assert eligible(r) and len(running) < max_total, f"{job} admitted over a limit"
            better = [w for w in waiting.values() if w is not r and key(w) < key(r) and eligible(w)]
            assert not better, f"{job} admitted before better eligible {[b['job_id'] for b in better]}"
            del waiting[job]
            running[job] = r
            order.append(job)
            team_counts = Counter(x["team_id"] for x in running.values() if x["team_id"])
            assert len(running) <= max_total
            assert all(n <= team_limits[t] for t, n in team_counts.items() if t in team_limits)
            assert max(Counter(x["user_id"] for x in running.values()).values()) <= max_user
        else:
            running.pop(job, None)
            waiting.pop(job, None)
    assert not running and not waiting, "every slot was given back"
    return order


@pytest.mark.slow
def test_two_hundred_submissions_from_twenty_users(stack):
    for i in range(5):
        _, token = stack.create_worker(f"local-{i}", {"host": "local"}, local=True)
        stack.start_agent(token, name=f"local-{i}")
    stack.expect(stack.client.put("/api/configs/quick", json={"command": QUICK, "gpu_count": 1}), 200, 201)
    stack.expect(stack.client.post("/api/queue/concurrency", json={"max_concurrent": 5, "user_max_concurrent": 2}),
                 200)
    org = stack.expect(stack.client.post("/api/orgs", json={"slug": "acme", "name": "Acme"}), 201)
    team = stack.expect(stack.client.post(f"/api/orgs/{org['id']}/teams", json={"slug": "vision", "name": "Vision"}), 201)
    stack.expect(stack.client.post(f"/api/orgs/{org['id']}/teams/{team['id']}/quotas",
                                   json={"quota_type": "concurrent_jobs", "limit": 3, "action": "block"}), 201)
    users = []
    for i in range(20):
        name = f"user{i:02d}"
        made = make_user(stack, name, "lead" if i < 3 else "researcher")
        if 3 <= i < 11:
            stack.expect(stack.client.post(f"/api/orgs/{org['id']}/teams/{team['id']}/members",
                                           json={"user_id": made["id"], "role": "member"}), 201)
        client = bearer_for(stack, name)
        client.timeout = httpx.Timeout(60.0)  # this test is about the limits, not latency: a burst on 2 cores is slow
        users.append(client)

    samples: list[tuple[int, int]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            s = stack.client.get("/api/queue/stats").json()
            samples.append((s["running"], max(s["running_by_user"].values(), default=0)))
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    submit = lambda i: users[i % 20].post("/api/queue/submit", json={"config_name": "quick", "target": "local"})
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(submit, range(200)))
    assert all(a.status_code == 201 for a in answers), [a.text for a in answers if a.status_code != 201][:3]
    job_ids = [a.json()["job_id"] for a in answers]
    stack.wait_for(lambda: stack.jobs(status="completed", limit=500)["total"] == 200, 240, "all 200 jobs to complete")
    done.set()
    sampler.join()
    assert samples and max(r for r, _ in samples) <= 5 and max(u for _, u in samples) <= 2
    order = replay(stack, 5, 2, {team["id"]: 3})
    assert sorted(order) == sorted(job_ids)
    stats = stack.expect(stack.client.get("/api/queue/stats"), 200)
    assert (stats["running"], stats["waiting"]) == (0, 0)


@pytest.mark.slow  # a long scenario: make slow (CI runs it after make test)
def test_restarts_while_jobs_wait_leak_no_slot(stack):
    _, token = stack.create_worker("local-0", {"host": "local"}, local=True)
    stack.start_agent(token, name="local-0", gpu_count=2)
    go = stack.root / "go"  # jobs run until the test creates this file: the line stays still while it looks
    stack.expect(stack.client.put("/api/configs/held", json={
        "command": ["/bin/sh", "-c", f'while [ ! -e "{go}" ]; do sleep 0.02; done'], "gpu_count": 1}), 200, 201)
    stack.expect(stack.client.post("/api/queue/concurrency", json={"max_concurrent": 1}), 200)
    make_user(stack, "rae", "researcher")
    rae = bearer_for(stack, "rae")
    job_ids = [stack.expect(rae.post("/api/queue/submit", json={"config_name": "held", "target": "local"}),
                            201)["job_id"] for _ in range(6)]
    stack.wait_for(lambda: stack.client.get("/api/queue/stats").json()["waiting"] == 5, 30, "five jobs to wait")
    waiting = stack.expect(stack.client.get("/api/queue"), 200)["waiting"]
    assert [w["position"] for w in waiting] == [1, 2, 3, 4, 5] and "max_concurrent" in waiting[0]["reason"]
    last = waiting[-1]["job_id"]
    position = stack.expect(rae.get(f"/api/queue/position/{last}"), 200)
    assert (position["position"], position["state"]) == (5, "waiting")
    stack.expect(stack.client.post(f"/api/queue/{last}/priority", json={"priority": 500}), 200)  # admin override
    assert stack.expect(stack.client.get("/api/queue"), 200)["waiting"][0]["job_id"] == last
    assert rae.post(f"/api/queue/{last}/priority", json={"priority": 900}).status_code == 403
    mine = stack.expect(rae.get("/api/queue/me"), 200)
    assert (mine["waiting_count"], mine["running_count"] + mine["waiting_for_agent_count"]) == (5, 1)
    for proc in (stack.worker_host, stack.api):
        proc.kill()
        proc.wait_exit(10)
    stack.start_api()
    stack.start_worker_host()
    stack.expect(stack.client.post("/api/queue/concurrency", json={"max_concurrent": 2}), 200)  # raise: admits at once
    stack.wait_for(lambda: stack.client.get("/api/queue/stats").json()["running"] == 2, 30, "a second slot to fill")
    go.touch()
    for job_id in job_ids:
        stack.wait_job(job_id, "completed", timeout=120)
    assert replay(stack, 2, 10**9, {})[1] == last  # the override went first after the running job
    assert stack.expect(stack.client.get("/api/queue/stats"), 200)["running"] == 0


def test_queue_stats_show_other_users_only_to_those_who_see_all_jobs(stack):
    stack.put_config("stat-cfg", steps=1)  # no agent: the admitted job holds its slot while it waits for one
    stack.expect(stack.client.post("/api/queue/concurrency", json={"max_concurrent": 1}), 200)
    for name, level in (("rae", "researcher"), ("lea", "lead"), ("vic", "viewer")):
        make_user(stack, name, level)
    rae, lea, vic = (bearer_for(stack, name) for name in ("rae", "lea", "vic"))
    stack.submit(config_name="stat-cfg", target="local")  # the admin's, admitted
    stack.wait_for(lambda: stack.client.get("/api/queue/stats").json()["running"] == 1, 30, "the admin's job to run")
    stack.expect(rae.post("/api/queue/submit", json={"config_name": "stat-cfg", "target": "local"}), 201)
    everyone = stack.wait_for(lambda: stack.client.get("/api/queue/stats").json(), 30, "rae's job to wait",
                              until=lambda s: s["waiting"] == 1)
    assert (everyone["running"], everyone["running_by_user"], everyone["waiting_for_agent"]) == (
        1, {"admin": 1}, 1), everyone
    line = stack.expect(stack.client.get("/api/queue"), 200)  # admitted, but no agent has it: not "running"
    assert line["running"] == [] and [e["state"] for e in line["waiting_for_agent"]] == ["waiting_for_agent"]
    assert line["waiting_for_agent"][0]["reason"], line
    admin_job = line["waiting_for_agent"][0]["job_id"]
    assert stack.expect(stack.client.get(f"/api/queue/position/{admin_job}"), 200)["state"] == "waiting_for_agent"
    details = stack.workflow_details(admin_job)  # the Web UI's view: status and why it waits
    assert "**queued**" in details and "waiting: " in details, details
    rae_job = line["waiting"][0]["job_id"]
    details = stack.workflow_details(rae_job)
    assert "max_concurrent" in details and "waiting: " in details, details
    assert stack.expect(lea.get("/api/queue/stats"), 200) == everyone  # job.view.all: everyone's counts
    own = stack.expect(rae.get("/api/queue/stats"), 200)  # the others' counts are not rae's business
    assert (own["running"], own["waiting"], own["running_by_user"], own["max_concurrent"]) == (0, 1, {}, 1), own
    assert {k: vic.get("/api/queue/stats").json()[k] for k in ("running", "waiting", "running_by_user")} == {
        "running": 0, "waiting": 0, "running_by_user": {}}
