"""A short schemathesis run against a running API, as an admin and as a researcher: no answer is a
5xx, and every answer (status, content type, body) is one the OpenAPI document declares. The
response models let it reuse ids from earlier answers, so it also reaches existing resources."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.stack import Stack
from tests.e2e.test_users_and_auth import bearer_for, make_user

pytestmark = pytest.mark.e2e
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
ST = Path(sys.executable).parent / "st"
# A channel the run creates names an SMTP server that does not exist, so its test message answers the
# documented 503 ("SMTP delivery failed"): the right answer there, not a server error.
CONFIG = """
[[operations]]
include-path = "/api/cloud/notifications/channels/{channel_id}/test"
include-method = "POST"
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "503"]
"""


@pytest.fixture(scope="module")
def api(shared_stack):
    make_user(shared_stack, "rita", "researcher")
    return shared_stack


def fuzz(stack: Stack, token: str, tmp: Path) -> subprocess.CompletedProcess:
    (tmp / "schemathesis.toml").write_text(CONFIG)
    return subprocess.run(
        [str(ST), "--config-file", str(tmp / "schemathesis.toml"), "run", f"{stack.api_url}/openapi.json",
         "--checks", CHECKS, "-H", f"Authorization: Bearer {token}",
         "--max-examples", "1", "--seed", "1", "--phases", "coverage,fuzzing", "--request-timeout", "20",
         "--exclude-path-regex", "/stream$", "--max-failures", "50", "--no-color"],
        capture_output=True, text=True, timeout=900, cwd=tmp)


@pytest.mark.parametrize("who", ["admin", "researcher"])
def test_no_5xx_and_every_answer_as_documented(api: Stack, who: str, tmp_path):
    token = api.admin_token if who == "admin" else bearer_for(api, "rita").headers["Authorization"].split()[1]
    run = fuzz(api, token, tmp_path)
    report = run.stdout[-12000:] + run.stderr[-2000:]
    assert run.returncode == 0, report
    assert "Tested:" in run.stdout, report
