"""Rate limits in a real ``simpletuner server`` process, over real sockets (the harness turns them off
for every other test): the counted answers' headers, the 429 and its audit entry, and the health
probe that is never counted."""

from __future__ import annotations

import json
import time

import pytest

pytestmark = pytest.mark.e2e


def test_a_real_server_counts_per_address_and_audits_the_refusal(stack_factory):
    stack = stack_factory(start=False, extra_env={"SIMPLETUNER_RATE_LIMIT_ENABLED": "true",
                                                  "SIMPLETUNER_RATE_LIMIT_DEFAULT_CALLS": "4"})
    stack.start_api()
    for _ in range(6):  # the start-up's own probe and these are never counted
        live = stack.anon.get("/api/cloud/health/live")
        assert live.status_code == 200 and "x-ratelimit-limit" not in live.headers
    answers = [stack.anon.get("/api/cloud/jobs", headers={"User-Agent": "e2e-probe"}) for _ in range(4)]
    assert [a.status_code for a in answers] == [401] * 4
    assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["3", "2", "1", "0"]
    assert int(answers[0].headers["x-ratelimit-reset"]) >= time.time() + 55

    refused = stack.client.get("/api/cloud/jobs")  # signed in or not: the address has used its share
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert refused.json()["detail"].startswith("too many requests from this address")
    rows = stack.sql("SELECT ip, target_id, details FROM auditentry WHERE action = 'rate_limit.exceeded'")
    assert len(rows) == 1 and rows[0]["ip"] == "127.0.0.1" and rows[0]["target_id"] == "default"
    details = rows[0]["details"] if isinstance(rows[0]["details"], dict) else json.loads(rows[0]["details"])
    assert (details["path"], details["method"]) == ("/api/cloud/jobs", "GET")
    assert details["user_agent"].startswith("python-httpx/")  # the refused request's own User-Agent
