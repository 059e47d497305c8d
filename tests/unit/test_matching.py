"""Label globs, hardware types, pool queue names, job ids, agent liveness and placement (which reads
the job's wishes from the database, never from the request)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from activities.capacity.placement import resolve
from activities.capacity.workers import status_of
from activities.db.engine import init_db, make_engine, session
from activities.db.models import Job, User, UserLevel, Worker, utcnow
from activities.db.models_rules import ResourceRule
from workflows.contracts import (
    PlacementRequest, hardware_matches, job_id_for, labels_match, normalize_hardware_type, pool_task_queue,
)


def test_label_globs():
    labels = {"gpu_type": "a100-80g", "team": "nlp"}
    assert labels_match({}, labels)
    assert labels_match({"gpu_type": "a100*"}, labels)
    assert labels_match({"gpu_type": "a100*", "team": "nlp"}, labels)
    assert not labels_match({"gpu_type": "h100*"}, labels)
    assert not labels_match({"region": "*"}, labels)  # a missing key never matches
    assert not labels_match({"team": "NLP"}, labels)  # case-sensitive


@pytest.mark.parametrize("name, accelerator, expected", [
    ("NVIDIA A100-SXM4-80GB", "cuda", "a100-80gb"), ("NVIDIA A100-SXM4-40GB", "cuda", "a100-40gb"),
    ("NVIDIA H100 80GB HBM3", "cuda", "h100-80gb"), ("NVIDIA H200", "cuda", "h200"), ("Tesla T4", "cuda", "t4"),
    ("NVIDIA GeForce RTX 4090", "cuda", "rtx4090"), ("NVIDIA L40S", "cuda", "l40s"), ("NVIDIA A10G", "cuda", "a10g"),
    ("Tesla V100-SXM2-16GB", "cuda", "v100-16gb"), ("CPU", "cpu", "cpu"), (None, None, "cpu"),
])
def test_hardware_types_are_normalised_from_the_gpu_name(name, accelerator, expected):
    assert normalize_hardware_type(name, accelerator) == expected


def test_hardware_globs_ignore_case_and_vendor_prefixes():
    assert hardware_matches("a100*", "a100-80gb") and hardware_matches("gpu-a100*", "a100-80gb")
    assert hardware_matches("*-80gb", "h100-80gb") and hardware_matches("GPU-T4*", "t4")
    assert not hardware_matches("a100*", "h100-80gb") and not hardware_matches("t4", "cpu")


def test_pool_queue_is_canonical():
    a = pool_task_queue({"x": "1", "y": "2"}, 2, False)
    assert a == pool_task_queue({"y": "2", "x": "1"}, 2, False)
    assert a != pool_task_queue({"x": "1", "y": "2"}, 4, False) != pool_task_queue({"x": "1", "y": "2"}, 2, True)
    assert pool_task_queue({}, 1, False, "a100-80gb") != pool_task_queue({}, 1, False, "h100")


def test_job_ids():
    assert job_id_for("u1", "k", "aa") == job_id_for("u1", "k", "bb")
    assert job_id_for("u1", "k", "aa") != job_id_for("u2", "k", "aa")
    assert job_id_for("u1", None, "ab" * 16) == "job-" + ("ab" * 16)[:24]


def _agent(name, labels, gpus=1, local=False, age=0.0, draining=False, state="idle", hardware="cpu"):
    return Worker(id=f"w_{name}", name=name, labels=labels, token_hash=name, gpu_count=gpus, local=local,
                  draining=draining, state=state, hardware_type=hardware,
                  task_queue=pool_task_queue(labels, gpus, local, hardware),
                  last_heartbeat=utcnow() - timedelta(seconds=age), registered_at=utcnow())


def test_status_from_heartbeat_age():
    assert status_of(_agent("a", {}), 10) == "idle"
    assert status_of(_agent("a", {}, age=11), 10) == "offline"
    assert status_of(_agent("a", {}, draining=True), 10) == "draining"
    assert status_of(_agent("a", {}, state="offline"), 10) == "offline"
    assert status_of(Worker(id="w", name="n", token_hash="t"), 10) == "connecting"


@pytest.fixture
def db(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/t.db")
    init_db(engine)
    with session(engine) as s:
        s.add(User(id="u1", username="rita"))
        s.add(UserLevel(user_id="u1", level="researcher"))
        s.commit()
        yield s


def _place(s, target="worker", labels=None, gpus=1, hardware=None, exclude=(), request_labels=None):
    """Record the job's wishes in its row; the request itself only names the job (its own selector
    fields are ignored, as a forged request's would be)."""
    job = s.get(Job, "j") or Job(id="j", owner_id="u1", owner_name="rita", config_name="c", target=target,
                                 request_hash="")
    job.target, job.worker_labels, job.gpu_count = target, labels or {}, gpus
    job.frozen_config = {"name": "c", "command": ["x"], "gpu_count": gpus, "hardware_type": hardware}
    s.add(job)
    s.commit()
    lost = {agent: utcnow() for agent in exclude}
    return resolve(s, PlacementRequest(job_id="j", target="local", worker_labels=request_labels or {"x": "forged"},
                                       gpu_count=1, excluded_agents=lost), 30)


def test_placement(db):
    s = db
    s.add(_agent("a100", {"gpu_type": "a100-80g"}, gpus=2, hardware="a100-80gb"))
    s.add(_agent("dead", {"gpu_type": "h100"}, gpus=8, age=60, hardware="h100"))
    s.add(_agent("drained", {"gpu_type": "h100"}, gpus=8, draining=True, hardware="h100"))
    s.add(_agent("local", {"host": "local"}, gpus=1, local=True))
    s.commit()
    a100_queue = pool_task_queue({"gpu_type": "a100-80g"}, 2, False, "a100-80gb")
    assert _place(s, labels={"gpu_type": "a100*"}).task_queue == a100_queue
    h100 = _place(s, labels={"gpu_type": "h100*"})
    assert h100.task_queue is None and "h100*" in h100.reason
    assert _place(s, gpus=4).task_queue is None
    assert _place(s, "local").is_local and _place(s, "local").task_queue
    assert not _place(s, "auto").is_local
    assert _place(s, "auto", exclude=["w_a100"]).is_local
    assert _place(s, "worker", exclude=["w_a100"]).task_queue is None


def test_the_configs_hardware_glob_and_the_owners_resource_rules_pick_the_pool(db):
    s = db
    s.add(_agent("a100", {}, hardware="a100-80gb"))
    s.add(_agent("t4", {}, hardware="t4"))
    s.commit()
    assert _place(s, hardware="a100*").hardware_type == "a100-80gb"
    assert _place(s, hardware="gpu-t4*").hardware_type == "t4"
    assert _place(s, hardware="h100*").task_queue is None
    s.add(ResourceRule(id="rr1", level="researcher", resource_type="hardware", pattern="a100*", action="deny"))
    s.commit()
    assert _place(s, hardware="*").hardware_type == "t4"  # the a100 pool is denied to a researcher
    refused = _place(s, hardware="a100*")
    assert refused.task_queue is None and "allowed for the submitter" in refused.reason


def test_unhealthy_agents_are_left_out(db):
    s = db
    agent = _agent("silent", {})
    agent.unhealthy_since = utcnow()
    s.add(agent)
    s.commit()
    assert _place(s).task_queue is None
    agent.unhealthy_since = None
    s.add(agent)
    s.commit()
    assert _place(s).task_queue == agent.task_queue


def test_lost_agent_is_eligible_again_after_it_registers(db):
    s = db
    agent = _agent("a", {"pool": "p"})
    s.add(agent)
    s.commit()
    assert _place(s, exclude=["w_a"]).task_queue is None
    agent.registered_at = utcnow() + timedelta(seconds=1)
    s.add(agent)
    s.commit()
    assert _place(s, exclude=["w_a"]).task_queue == agent.task_queue
