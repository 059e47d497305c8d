"""Bad requests: each gets a 4xx with a JSON ``detail`` naming the problem, and writes nothing."""

from __future__ import annotations

import json

import pytest

from tests.e2e.stack import detail_text

pytestmark = pytest.mark.e2e

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def api_stack(shared_stack):
    return shared_stack


@pytest.fixture
def unchanged(api_stack):
    """Asserts at teardown that the test wrote no job (read model) and started no workflow."""
    jobs, workflows = api_stack.job_count(), api_stack.workflow_count()
    yield api_stack
    assert api_stack.job_count() == jobs, "a refused request must not create a job"
    assert api_stack.workflow_count() == workflows, "a refused request must not start a workflow"


def _refused(response, status: int | tuple[int, ...], *words: str) -> str:
    statuses = (status,) if isinstance(status, int) else status
    assert response.status_code in statuses, (response.status_code, response.text[:1000])
    assert response.headers.get("content-type", "").startswith("application/json"), response.headers
    detail = detail_text(response)
    assert detail, f"error responses carry a detail: {response.text[:1000]}"
    if words:
        assert any(word.lower() in detail for word in words), f"detail should name {words}: {detail}"
    return detail


def _submit(stack, **overrides):
    body = {"config_name": "tiny-numpy", "target": "worker", "worker_labels": {}, **overrides}
    return stack.client.post("/api/queue/submit", json=body)


def test_unknown_config(unchanged):
    _refused(_submit(unchanged, config_name="no-such-config-e2e"), (400, 404, 422), "no-such-config-e2e")


def test_malformed_json(unchanged):
    response = unchanged.client.post("/api/queue/submit", content=b'{"config_name": "tiny-numpy", "target": ',
                                     headers={"Content-Type": "application/json"})
    _refused(response, (400, 422), "json")


def test_body_not_an_object(unchanged):
    response = unchanged.client.post("/api/queue/submit", content=b'["tiny-numpy"]',
                                     headers={"Content-Type": "application/json"})
    _refused(response, (400, 422))


def test_missing_config_name(unchanged):
    response = unchanged.client.post("/api/queue/submit", json={"target": "worker"})
    _refused(response, (400, 422), "config_name")


def test_unknown_target(unchanged):
    _refused(_submit(unchanged, target="the-cloud"), (400, 422), "target")


@pytest.mark.parametrize("labels", [
    {"gpu": {"type": "a100"}},
    ["a100"],
    {"gpu_count": 2},
    {"gpu_type": None},
    "gpu_type=a100",
], ids=["nested-dict", "list", "int-value", "null-value", "string"])
def test_worker_labels_must_be_a_flat_string_map(unchanged, labels):
    _refused(_submit(unchanged, worker_labels=labels), (400, 422), "worker_labels")


@pytest.mark.parametrize("gpu_count", [0, -1])
def test_gpu_count_must_be_positive(unchanged, gpu_count):
    _refused(_submit(unchanged, gpu_count=gpu_count), (400, 422), "gpu_count")


def test_body_over_1_mib(unchanged):
    body = json.dumps({"config_name": "tiny-numpy", "target": "worker",
                       "worker_labels": {"pad": "x" * (MiB + 64)}}).encode()
    response = unchanged.client.post("/api/queue/submit", content=body, headers={"Content-Type": "application/json"})
    _refused(response, 413, "large", "limit", "size", "bytes")


def test_body_over_1_mib_chunked_without_length(unchanged):
    body = json.dumps({"config_name": "tiny-numpy", "target": "worker",
                       "worker_labels": {"pad": "x" * (MiB + 64)}}).encode()

    def chunks():
        for start in range(0, len(body), 64 * 1024):
            yield body[start:start + 64 * 1024]

    response = unchanged.client.post("/api/queue/submit", content=chunks(),
                                     headers={"Content-Type": "application/json"})
    _refused(response, 413, "large", "limit", "size", "bytes")


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer st_admin_wrong"}, {"Authorization": "Basic eDp5"},
                                     {"Authorization": "Bearer"}],
                         ids=["missing", "wrong", "not-bearer", "empty"])
def test_admin_bearer_required(unchanged, headers):
    stack = unchanged
    body = {"config_name": "tiny-numpy", "target": "worker"}
    _refused(stack.anon.post("/api/queue/submit", json=body, headers=headers), 401)
    _refused(stack.anon.get("/api/cloud/jobs", headers=headers), 401)
    _refused(stack.anon.get("/api/admin/workers", headers=headers), 401)
    _refused(stack.anon.post("/api/admin/workers", headers=headers,
                             json={"name": "sneaky", "worker_type": "persistent", "labels": {}, "local": False}), 401)
    assert "sneaky" not in [w["name"] for w in stack.workers()]


def test_worker_token_wrong_or_rotated(unchanged):
    stack = unchanged
    for token in ("wt_definitely_wrong", ""):
        _refused(stack.worker_heartbeat(token), 401)
    _refused(stack.anon.post("/api/workers/register", json={"name": "x", "gpu_count": 1}), 401)

    worker_id, old = stack.create_worker("rotated-e2e", {"pool": "bad-input"})
    assert stack.worker_heartbeat(old).status_code == 200
    new = stack.rotate_token(worker_id)
    _refused(stack.worker_heartbeat(old), 401)
    _refused(stack.anon.post("/api/workers/register", headers={"X-Worker-Token": old},
                             json={"name": "rotated-e2e", "gpu_count": 1}), 401)
    assert stack.worker_heartbeat(new).status_code == 200
    # The admin bearer is not a worker token.
    _refused(stack.worker_heartbeat(stack.admin_token), 401)


@pytest.mark.parametrize("method,path", [
    ("GET", "/api/cloud/jobs/{id}"),
    ("POST", "/api/cloud/jobs/{id}/cancel"),
    ("GET", "/api/cloud/jobs/{id}/logs"),
    ("GET", "/api/cloud/jobs/{id}/outputs/model.npz"),
], ids=["get", "cancel", "logs", "output"])
def test_unknown_job_is_404(unchanged, method, path):
    job_id = "job-00000000deadbeef00000000"
    response = unchanged.client.request(method, path.format(id=job_id))
    _refused(response, 404, job_id, "not found")


def test_unknown_job_status_report_from_agent_is_404(unchanged):
    stack = unchanged
    _, token = stack.create_worker("reporter-e2e", {"pool": "bad-input-2"})
    response = stack.anon.post("/api/workers/job/job-00000000deadbeef00000000/status",
                               headers={"X-Worker-Token": token},
                               json={"status": "progress", "attempt": 1, "progress": None, "logs": [],
                                     "log_offset": 0})
    _refused(response, 404)
    claim = stack.anon.post("/api/workers/job/job-00000000deadbeef00000000/claim", headers={"X-Worker-Token": token},
                            json={"attempt": 1})
    _refused(claim, 404)
    for bad in ({"status": "running", "attempt": 1}, {"status": "exited", "attempt": 1},
                {"status": "progress", "attempt": 1, "exit_code": 0}, {"status": "exited", "attempt": 0, "exit_code": 0}):
        _refused(stack.anon.post("/api/workers/job/job-00000000deadbeef00000000/status",
                                 headers={"X-Worker-Token": token}, json=bad), 422)


BIG = 2**63
OUT_OF_BOUNDS = [  # (method, path, body, the field the 422 names)
    ("GET", f"/api/cloud/jobs?offset={BIG}", None, "offset"),
    ("GET", f"/api/cloud/jobs?limit={BIG}", None, "limit"),
    ("GET", f"/api/cloud/jobs/job-x/logs?after={BIG}", None, "after"),
    ("GET", f"/api/cloud/jobs/job-x/logs?attempt={BIG}", None, "attempt"),
    ("GET", f"/api/events/stream?last_event_id={BIG}", None, "last_event_id"),
    ("PUT", "/api/configs/bounds-e2e", {"command": ["true"], "gpu_count": BIG}, "gpu_count"),
    ("PUT", "/api/configs/bounds-e2e", {"command": ["true"], "gpu_count": True}, "gpu_count"),
    ("PUT", "/api/configs/bounds-e2e", {"command": ["true"], "estimated_hours": False}, "estimated_hours"),
    ("PUT", "/api/configs/bounds-e2e", {"command": ["true"], "estimated_hours": "2"}, "estimated_hours"),
    ("POST", "/api/queue/submit", {"config_name": "tiny-numpy", "target": "worker", "gpu_count": True}, "gpu_count"),
    ("POST", "/api/queue/submit", {"config_name": "tiny-numpy", "target": "worker", "priority": BIG}, "priority"),
    ("POST", "/api/queue/concurrency", {"max_concurrent": BIG}, "max_concurrent"),
    ("POST", "/api/quotas", {"scope": "level", "level": "researcher", "quota_type": "daily_jobs", "limit": BIG},
     "limit"),
    ("POST", "/api/approvals/rules", {"name": "r", "condition": "cost_exceeds", "threshold": BIG,
                                      "required_approver_level": "lead"}, "threshold"),
    ("POST", "/api/users", {"username": "bools-e2e", "password": "Sturdy-Passw0rd-9", "is_active": 1}, "is_active"),
]


@pytest.mark.parametrize("method,path,body,field", OUT_OF_BOUNDS,
                         ids=[f"{m} {p.split('?')[0]} {f}" for m, p, _, f in OUT_OF_BOUNDS])
def test_numbers_out_of_bounds_or_of_the_wrong_kind_are_422(unchanged, method, path, body, field):
    response = unchanged.client.request(method, path, json=body)
    _refused(response, 422, field)


def test_infinity_and_a_huge_last_event_id_are_refused(unchanged):
    stack = unchanged
    infinite = stack.client.put("/api/configs/bounds-e2e", content=b'{"command": ["true"], "estimated_hours": Infinity}',
                                headers={"Content-Type": "application/json"})
    assert infinite.status_code in (400, 422), infinite.text
    with stack.client.stream("GET", "/api/events/stream", headers={"Last-Event-ID": str(BIG)}) as response:
        assert response.status_code == 422 and "Last-Event-ID" in response.read().decode()
    assert stack.client.get("/api/configs/bounds-e2e").status_code == 404
