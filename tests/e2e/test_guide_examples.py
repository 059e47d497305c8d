"""The guides' and the README's curl examples, run as written against a started stack.

Every example this platform implements (``tests/e2e/guide_examples.py``) is sent with the real
``curl`` binary, so the wire form is exactly curl's: a ``-d`` without ``-H Content-Type`` goes out
as ``application/x-www-form-urlencoded``, as it does for the guides' readers. Examples run in the
guide's order, except where a later one needs what another creates; ids the guide writes as
literals are the ids created earlier in the same test. Each must answer its 2xx, and where cheap
its effect is checked through the API.

A failing example does not stop the others: each test collects its failures and reports them all
at the end (command, status, answer). When an example that creates something fails, the same
request is made once more as JSON with the admin key, only so that the examples depending on it
still run and report on their own; the failure stays reported.

The worker orchestration guide and the operations guide send no API key after their first
command: they presuppose single-user mode (no login for callers on loopback), so they run
against a stack configured that way.
"""

from __future__ import annotations

import json
import os
import re
import string
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.guide_examples import ENTERPRISE, ENTERPRISE_INLINE, OPERATIONS, README, WORKERS, Example

pytestmark = pytest.mark.e2e

_HOST = re.compile(r"^(?:(https?)://)?(?:localhost|127\.0\.0\.1|your-public-url)(?::\d+)?(?=/)")
_PROXY_VARS = re.compile(r"^(https?|all|no|ftp)_proxy$", re.IGNORECASE)
JOB_TIMEOUT = 120.0


@dataclass
class Answer:
    status: int
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


@dataclass
class Failure:
    example: Example
    answer: Answer | None
    problem: str


class GuideRun:
    """Runs examples against one stack, keeps the ids they create and collects what fails."""

    def __init__(self, stack) -> None:
        self.stack = stack
        self.values: dict[str, Any] = {}
        self.failures: list[Failure] = []
        self.env = {k: v for k, v in os.environ.items() if not _PROXY_VARS.match(k)}

    # ---- the request as curl sends it

    def _fill(self, text: str, example: Example, as_json: bool) -> str:
        for literal, template in example.fill:
            if literal in text:
                values = {k: json.dumps(v) if as_json else str(v) for k, v in self.values.items()}
                text = text.replace(literal, string.Template(template).substitute(values))
        return text

    def url(self, example: Example) -> str:
        address = self.stack.api_url.split("://", 1)[1]

        def base(match: re.Match) -> str:
            return f"http://{address}" if match.group(1) else address  # a scheme-less URL stays scheme-less
        url, found = _HOST.subn(base, example.url)
        assert found == 1, f"{example.key}: no host to replace in {example.url!r}"
        return self._fill(url, example, as_json=False)

    def argv(self, example: Example) -> list[str]:
        argv = ["curl", "-q", "-sS"]  # -q: no ~/.curlrc; -sS: quiet but errors shown (the guides use -s)
        if example.method:
            argv += ["-X", example.method]
        argv += [*example.flags, self.url(example)]
        for header in example.headers:
            argv += ["-H", header.replace("$ADMIN_TOKEN", self.stack.admin_token)
                                 .replace("$TOKEN", self.stack.admin_token)]
        if example.body is not None:
            argv += ["-d", self._fill(example.body, example, as_json=True)]
        return argv + ["-w", "\n%{http_code}"]

    def send(self, example: Example) -> Answer:
        done = subprocess.run(self.argv(example), capture_output=True, text=True, timeout=60, env=self.env)
        assert done.returncode == 0, f"{example.key}: curl exited {done.returncode}: {done.stderr}"
        text, _, code = done.stdout.rpartition("\n")
        return Answer(int(code), text)

    # ---- running and recording

    def run(self, example: Example, keep: Callable[[Any], dict[str, Any]] | None = None,
            effect: Callable[[Any], Any] | None = None) -> Any:
        """Send the example; on its expected status store ``keep(answer JSON)`` in the values and
        check ``effect(answer JSON)``. Returns the answer's JSON (or, when the example failed but
        creates something later examples need, the JSON of the same request sent as JSON), else None."""
        missing = sorted(example.needs - self.values.keys())
        if missing:
            self.failures.append(Failure(example, None, f"not run: needs {', '.join(missing)} from an earlier "
                                                        f"example that failed"))
            return None
        answer = self.send(example)
        if answer.status != example.status:
            problem = f"answered {answer.status}, expected {example.status}"
            data = self._as_json(example) if keep else None
            if keep:
                problem += ("; the same request sent as JSON succeeded, so later examples still ran" if data is not None
                            else "; the same request sent as JSON failed too")
            self.failures.append(Failure(example, answer, problem))
            if data is not None:
                self.values.update(keep(data))
            return data
        data = _json_or_text(answer)
        if keep:
            self.values.update(keep(data))
        if effect:
            try:
                effect(data)
            except Exception as exc:  # noqa: BLE001 - reported with the others
                self.failures.append(Failure(example, answer, f"succeeded but its effect is not visible: "
                                                              f"{type(exc).__name__}: {str(exc)[:1500]}"))
        return data

    def _as_json(self, example: Example) -> Any:
        body = self._fill(example.body, example, as_json=True) if example.body is not None else None
        path = re.sub(r"^(?:https?://)?[^/]+", "", self.url(example))
        answer = self.stack.client.request(example.method or "GET", path, content=body,
                                           headers={"Content-Type": "application/json"})
        return answer.json() if answer.is_success else None

    def finish(self) -> None:
        if not self.failures:
            return
        lines = [f"{len(self.failures)} guide example(s) do not work as written:"]
        for failure in self.failures:
            ex = failure.example
            lines += [f"\n[{ex.key}] {ex.where}", f"  {ex.shown()}", f"  -> {failure.problem}"]
            if failure.answer is not None:
                lines.append(f"  answer {failure.answer.status}: {failure.answer.text[:1500]}")
        pytest.fail("\n".join(lines), pytrace=False)


def _json_or_text(answer: Answer) -> Any:
    try:
        return answer.json()
    except ValueError:
        return answer.text


def _by_key(examples: tuple[Example, ...]) -> dict[str, Example]:
    return {ex.key.split("/", 1)[1]: ex for ex in examples}


def _get(stack, path: str) -> Any:
    return stack.expect(stack.client.get(path), 200)


def _check(condition: Any, message: str) -> None:
    if not condition:
        raise AssertionError(message)


# ---- Enterprise guide ------------------------------------------------------------------------

def test_enterprise_guide(stack):
    ex = _by_key(ENTERPRISE)
    inline = _by_key(ENTERPRISE_INLINE)
    run = GuideRun(stack)
    run.values["provider"] = "local"

    for name in ("health-live", "health-ready", "health-deep"):
        run.run(inline[name])

    def rule_listed(_: Any) -> None:
        rules = {r["name"]: r for r in _get(stack, "/api/approvals/rules")["rules"]}
        _check("high_cost" in rules, f"no rule high_cost in {sorted(rules)}")
        rule = rules["high_cost"]
        _check((rule["condition"], str(rule["threshold"]), rule["required_approver_level"], rule["exempt_levels"])
               == ("cost_exceeds", "50", "lead", ["admin"]), f"rule stored as {rule}")
    run.run(ex["approval-rule-high-cost"], effect=rule_listed)

    def provider_stored(name: str, kind: str, secret: str) -> Callable[[Any], None]:
        def check(_: Any) -> None:
            got = _get(stack, f"/api/cloud/external-auth/providers/{name}")
            _check(got["provider_type"] == kind and got["enabled"] is True, f"provider stored as {got}")
            _check(got["config"][secret] not in ("your-client-secret", "service-account-password"),
                   f"{secret} is returned in clear: {got['config']}")
        return check
    run.run(ex["sso-keycloak-oidc"], effect=provider_stored("keycloak", "oidc", "client_secret"))
    run.run(ex["sso-ldap-active-directory"], effect=provider_stored("corporate-ad", "ldap", "bind_password"))

    def researcher(data: Any) -> None:
        got = _get(stack, f"/api/users/{data['id']}")
        _check((got["username"], got["email"], got["level_names"]) == ("jsmith", "researcher@company.com",
                                                                       ["researcher"]), f"user stored as {got}")
    run.run(ex["create-researcher"], keep=lambda d: {"user_id": d["id"]}, effect=researcher)

    def granted(_: Any) -> None:
        got = _get(stack, f"/api/users/{run.values['user_id']}")
        _check("admin.approve" in got["permissions"], f"permissions are {got['permissions']}")
    run.run(ex["grant-permission"], effect=granted)

    def org_visible(data: Any) -> None:
        got = _get(stack, f"/api/orgs/{data['id']}")
        _check((got["name"], got["slug"]) == ("ML Research", "ml-research"), f"org stored as {got}")
        _check(any(o["id"] == data["id"] for o in _get(stack, "/api/orgs")["orgs"]), "the org is not listed")
    run.run(ex["create-org"], keep=lambda d: {"org_id": d["id"]}, effect=org_visible)

    def ceiling(_: Any) -> None:
        quotas = _get(stack, f"/api/orgs/{run.values['org_id']}/quotas")["quotas"]
        _check([(q["quota_type"], q["limit"], q["action"]) for q in quotas] == [("concurrent_jobs", 100, "block")],
               f"org quotas are {quotas}")
    run.run(ex["org-quota-ceiling"], effect=ceiling)
    run.run(inline["org-quotas"])

    def team_visible(data: Any) -> None:
        teams = _get(stack, f"/api/orgs/{run.values['org_id']}/teams")["teams"]
        _check([(t["name"], t["slug"]) for t in teams] == [("NLP Team", "nlp")], f"teams are {teams}")
    run.run(ex["create-team"], keep=lambda d: {"team_id": d["id"]}, effect=team_visible)

    def member(_: Any) -> None:
        members = _get(stack, f"/api/orgs/{run.values['org_id']}/teams/{run.values['team_id']}/members")["members"]
        _check([(m["username"], m["role"]) for m in members] == [("jsmith", "member")], f"members are {members}")
    run.run(ex["add-team-member"], effect=member)

    def cost_limit(_: Any) -> None:
        got = _get(stack, "/api/cloud/providers/local/config")
        _check((got["cost_limit_enabled"], got["cost_limit_amount"], got["cost_limit_period"], got["cost_limit_action"])
               == (True, 500.0, "monthly", "warn"), f"provider config is {got}")
    run.run(ex["provider-cost-limit"], effect=cost_limit)

    def limit_status(data: Any) -> None:
        _check(any(p.get("provider") == "local" for p in data["providers"]), f"no status of 'local' in {data}")
    run.run(inline["cost-limit-status"], effect=limit_status)

    def channel(data: Any) -> None:
        got = _get(stack, f"/api/cloud/notifications/channels/{data['id']}")
        _check((got["name"], got["smtp_host"], got["smtp_port"], got["smtp_use_tls"])
               == ("Primary Email", "smtp.gmail.com", 587, True), f"channel stored as {got}")
    run.run(ex["email-channel"], effect=channel)

    def limits(_: Any) -> None:
        got = _get(stack, "/api/queue/concurrency")
        _check((got["max_concurrent"], got["user_max_concurrent"]) == (10, 3), f"concurrency is {got}")
    run.run(inline["queue-concurrency"], effect=limits)

    def users_listed(data: Any) -> None:
        _check({"admin", "jsmith"} <= {u["username"] for u in data["users"]}, f"users are {data['users']}")
    run.run(inline["list-users"], effect=users_listed)
    run.run(inline["list-approval-requests"])
    run.run(inline["audit"])
    run.finish()


# ---- Worker orchestration guide and operations guide (no API key: single-user mode) -----------

def test_worker_guide_and_operations_guide(stack_factory):
    stack = stack_factory(start=False)
    stack.enterprise_config.write_text("auth:\n  single_user_mode: true\n")
    stack.start()
    for config in ("my-training-config", "my-config"):  # the configs the guide submits
        stack.put_config(config, steps=1)
    ex = _by_key(WORKERS)
    ops = _by_key(OPERATIONS)
    run = GuideRun(stack)
    agents: dict[str, Any] = {}

    def agent_for(name: str) -> Callable[[Any], dict[str, Any]]:
        def keep(data: Any) -> dict[str, Any]:
            agents[name] = stack.start_agent(data["token"], name=name, wait=False)
            stack.wait_worker(data["worker_id"], "idle", timeout=45)
            return {f"{name}_id": data["worker_id"]}
        return keep

    def answer_names(name: str) -> Callable[[Any], None]:
        def check(data: Any) -> None:
            _check(data["name"] == name and data["token"] and data["worker_id"], f"answer is {data}")
        return check
    run.run(ex["create-token"], keep=agent_for("gpu-worker-1"), effect=answer_names("gpu-worker-1"))

    def completes(on: str | None = None) -> Callable[[Any], None]:
        def check(data: Any) -> None:
            job = stack.wait_job(data["job_id"], "completed", timeout=JOB_TIMEOUT)
            _check(on is None or job["agent_name"] == on, f"job ran on {job['agent_name']}, expected {on}")
        return check
    run.run(ex["submit-to-worker"], keep=lambda d: {"job_id": d["job_id"]}, effect=completes("gpu-worker-1"))
    run.run(ex["submit-gpu-requirement"], effect=completes("gpu-worker-1"))
    run.run(ex["create-with-labels"], keep=agent_for("worker-1"), effect=answer_names("worker-1"))
    run.run(ex["submit-label-team"], effect=completes("worker-1"))
    run.run(ex["submit-label-glob"], effect=completes())

    def listed(data: Any) -> None:
        names = {w["name"] for w in data["workers"]}
        _check({"gpu-worker-1", "worker-1"} <= names, f"workers listed: {sorted(names)}")
    run.run(ex["list"], effect=listed)

    run.values["worker_id"] = run.values.get("gpu-worker-1_id")
    if run.values["worker_id"] is None:
        del run.values["worker_id"]

    def draining(data: Any) -> None:
        _check(data["draining"] is True, f"answer is {data}")
        _check(stack.worker(run.values["worker_id"]).get("draining") is True,
               "the worker list does not show it draining")
    run.run(ex["drain"], effect=draining)

    def rotated(data: Any) -> None:
        _check(data["token"] and data["worker_id"] == run.values["worker_id"], f"answer is {data}")
    run.run(ex["rotate-token"], effect=rotated)

    # The guide deletes a worker only once it is offline: stop its agent and wait for that.
    if "gpu-worker-1" in agents and "worker_id" in run.values:
        agents["gpu-worker-1"].terminate_and_wait()
        stack.wait_worker(run.values["worker_id"], "offline", timeout=4 * stack.heartbeat_timeout + 30)

    def gone(_: Any) -> None:
        ids = {w["id"] for w in stack.workers()}
        _check(run.values["worker_id"] not in ids, "the deleted worker is still listed")
    run.run(ex["delete"], effect=gone)

    # Operations guide
    run.run(ops["health-head"])
    if "job_id" not in run.values:  # its job comes from the worker guide's first submission
        run.values["job_id"] = stack.submit(config_name="my-config", target="worker")["job_id"]

    def job_answer(data: Any) -> None:
        _check(data["job_id"] == run.values["job_id"], f"answer is {data}")
    run.run(ops["job-status"], effect=job_answer)
    run.finish()


# ---- README ----------------------------------------------------------------------------------

def test_readme(stack):
    ex = _by_key(README)
    run = GuideRun(stack)

    def agent(data: Any) -> dict[str, Any]:
        stack.start_agent(data["token"], name="gpu-worker-1", wait=False)
        stack.wait_worker(data["worker_id"], "idle", timeout=45)
        return {"worker_id": data["worker_id"]}
    run.run(ex["create-agent"], keep=agent)
    run.run(ex["first-job"], keep=lambda d: {"job_id": d["job_id"]},
            effect=lambda d: stack.wait_job(d["job_id"], "completed", timeout=JOB_TIMEOUT))

    def status(data: Any) -> None:
        _check(data["job_id"] == run.values["job_id"], f"answer is {data}")
    run.run(ex["job-status"], effect=status)

    def rule_listed(data: Any) -> None:
        got = _get(stack, f"/api/approvals/rules/{data['id']}")
        _check((got["name"], got["condition"], got["exempt_levels"]) == ("high_cost", "cost_exceeds", ["admin"]),
               f"rule stored as {got}")
    run.run(ex["approval-rule"], effect=rule_listed)

    def metrics_on(data: Any) -> None:
        _check((data["enabled"], data["template"]) == (True, "standard"), f"answer is {data}")
    run.run(ex["metrics-enable"], effect=metrics_on)

    def scraped(text: Any) -> None:
        _check(isinstance(text, str) and "simpletuner_jobs_by_status{status=\"completed\"} 1.0" in text,
               f"scrape answered {str(text)[:500]}")
    run.run(ex["metrics-scrape"], effect=scraped)
    run.finish()
