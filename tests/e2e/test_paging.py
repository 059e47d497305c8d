"""Every list endpoint pages: ``limit`` and the ``next_cursor`` of the previous page walk the whole
list once, in order, with ``total``; a foreign cursor and an out-of-range limit answer 422."""

from __future__ import annotations

import pytest

from tests.e2e.test_users_and_auth import make_user

pytestmark = pytest.mark.e2e

LISTS = {"/api/cloud/jobs": "jobs", "/api/users": "users", "/api/admin/workers": "workers", "/api/audit": "entries",
         "/api/approvals/requests": "requests", "/api/queue": "waiting"}


def walk(stack, path: str, key: str, limit: int = 2) -> tuple[list[dict], int]:
    items, cursor, total = [], None, None
    for _ in range(1000):
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        page = stack.expect(stack.client.get(path, params=params), 200)
        assert len(page[key]) <= limit and "next_cursor" in page and "total" in page, page
        items += page[key]
        total = page["total"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items, total
    raise AssertionError(f"{path} never ended")


def test_every_list_walks_by_cursor(stack):
    for i in range(5):
        make_user(stack, f"pager{i}", "researcher")
        stack.create_worker(f"pager-agent-{i}", {"pool": "none"})
    stack.expect(stack.client.post("/api/queue/concurrency", json={"max_concurrent": 1}), 200)
    stack.put_config("tiny")
    jobs = [stack.submit(config_name="tiny", target="worker", worker_labels={"pool": "nowhere"})["job_id"]
            for _ in range(5)]
    stack.wait_for(lambda: len(stack.client.get("/api/queue").json()["waiting"]) >= 4, 30, "four jobs in line")
    for path, key in LISTS.items():
        whole = stack.expect(stack.client.get(path, params={"limit": 1000}), 200)
        items, total = walk(stack, path, key)
        assert items == whole[key], path  # the same rows, in the same order, each once
        assert total == whole["total"] == len(whole[key]), path
    walked, _ = walk(stack, "/api/cloud/jobs", "jobs")
    assert [j["job_id"] for j in walked] == jobs[::-1]  # newest first
    local = stack.submit(config_name="tiny", target="local")["job_id"]
    by_target = {t: [j["job_id"] for j in stack.expect(stack.client.get("/api/cloud/jobs", params={"target": t}),
                                                       200)["jobs"]] for t in ("local", "worker")}
    assert by_target == {"local": [local], "worker": jobs[::-1]}


@pytest.mark.parametrize("path", list(LISTS))
def test_bad_paging_is_refused_by_name(shared_stack, path):
    for params, field in (({"cursor": "not-a-cursor"}, "cursor"), ({"limit": 0}, "limit"), ({"limit": 1001}, "limit")):
        answer = shared_stack.client.get(path, params=params)
        assert answer.status_code == 422 and field in answer.text, (path, params, answer.text)
