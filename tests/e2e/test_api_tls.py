"""The API served over HTTPS (``simpletuner server --ssl`` with a certificate from a private CA): an
agent given the CA with ``--ca-bundle`` registers and runs a job over it, one without refuses to talk
to it with a clear message, and the job CLI lists jobs with ``SIMPLETUNER_CA_BUNDLE``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.e2e.stack import REPO_ROOT
from tests.servers.tls_proxy import make_pki

pytestmark = pytest.mark.e2e


def job_cli(stack, *args: str, ca_bundle: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in stack.env.items() if not k.startswith("SIMPLETUNER_")}
    env.update(SIMPLETUNER_URL=stack.api_url, SIMPLETUNER_TOKEN=stack.admin_token)
    if ca_bundle is not None:
        env["SIMPLETUNER_CA_BUNDLE"] = ca_bundle
    done = subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert "Traceback" not in done.stderr, done.stderr
    return done


@pytest.mark.slow  # a long scenario: make slow (CI runs it after make test)
def test_agent_and_cli_over_https_with_a_private_ca(stack_factory, tmp_path):
    pki = make_pki(tmp_path / "pki")
    stack = stack_factory(api_tls=pki)
    assert stack.api_url.startswith("https://127.0.0.1:")

    # without the CA the agent stops before sending its token, saying why
    untrusting_id, untrusting_token = stack.create_worker("agent-no-ca", {"pool": "tls-untrusted"})
    refused = stack.start_agent(untrusting_token, name="agent-no-ca", wait=False)
    assert refused.wait_exit(60) == 2
    log = refused.log_text()
    assert f"the API at {stack.api_url} presented a TLS certificate this agent does not trust" in log, log
    assert "--ca-bundle" in log and "Traceback" not in log
    assert stack.worker(untrusting_id)["status"] in ("connecting", "offline")  # it never registered

    # with it, the agent registers, claims, reports and finishes a job over HTTPS
    worker_id, token = stack.create_worker("agent-ca", {"pool": "tls"})
    agent = stack.start_agent(token, name="agent-ca", extra_args=["--ca-bundle", str(pki["ca"])])
    stack.put_config("quick", steps=3)
    job_id = stack.submit(config_name="quick", target="worker", worker_labels={"pool": "tls"})["job_id"]
    assert stack.wait_job(job_id, "completed", timeout=90)["agent_id"] == worker_id
    assert stack.logs(job_id), "the agent's log lines reached the API"
    assert "does not trust" not in agent.log_text()

    # the job CLI: trusted with SIMPLETUNER_CA_BUNDLE, refused with a clear message without it
    listed = job_cli(stack, "jobs", "list", "--json", ca_bundle=str(pki["ca"]))
    assert listed.returncode == 0, listed.stderr
    assert job_id in [job["job_id"] for job in json.loads(listed.stdout)["jobs"]]
    unlisted = job_cli(stack, "jobs", "list", ca_bundle=None)
    assert unlisted.returncode == 5, (unlisted.stdout, unlisted.stderr)
    assert f"cannot reach the API at {stack.api_url}: its TLS certificate is not trusted" in unlisted.stderr
    assert "SIMPLETUNER_CA_BUNDLE" in unlisted.stderr
