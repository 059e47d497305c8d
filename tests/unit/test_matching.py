"""Label globs, pool queue names, job ids, agent liveness and placement."""

from __future__ import annotations

from datetime import timedelta

from activities.db.engine import init_db, make_engine, session
from activities.db.models import Worker, utcnow
from activities.capacity.workers import resolve_placement, status_of
from workflows.contracts import PlacementRequest, job_id_for, labels_match, pool_task_queue


def test_label_globs():
    labels = {"gpu_type": "a100-80g", "team": "nlp"}
    assert labels_match({}, labels)
    assert labels_match({"gpu_type": "a100*"}, labels)
    assert labels_match({"gpu_type": "a100*", "team": "nlp"}, labels)
    assert not labels_match({"gpu_type": "h100*"}, labels)
    assert not labels_match({"region": "*"}, labels)  # a missing key never matches
    assert not labels_match({"team": "NLP"}, labels)  # case-sensitive


def test_pool_queue_is_canonical():
    a = pool_task_queue({"x": "1", "y": "2"}, 2, False)
    assert a == pool_task_queue({"y": "2", "x": "1"}, 2, False)
    assert a != pool_task_queue({"x": "1", "y": "2"}, 4, False) != pool_task_queue({"x": "1", "y": "2"}, 2, True)


def test_job_ids():
    assert job_id_for("u1", "k", "aa") == job_id_for("u1", "k", "bb")
    assert job_id_for("u1", "k", "aa") != job_id_for("u2", "k", "aa")
    assert job_id_for("u1", None, "ab" * 16) == "job-" + ("ab" * 16)[:24]


def _agent(name, labels, gpus=1, local=False, age=0.0, draining=False, state="idle"):
    return Worker(id=f"w_{name}", name=name, labels=labels, token_hash=name, gpu_count=gpus, local=local,
                  draining=draining, state=state, task_queue=pool_task_queue(labels, gpus, local),
                  last_heartbeat=utcnow() - timedelta(seconds=age), registered_at=utcnow())


def test_status_from_heartbeat_age():
    assert status_of(_agent("a", {}), 10) == "idle"
    assert status_of(_agent("a", {}, age=11), 10) == "offline"
    assert status_of(_agent("a", {}, draining=True), 10) == "draining"
    assert status_of(_agent("a", {}, state="offline"), 10) == "offline"
    assert status_of(Worker(id="w", name="n", token_hash="t"), 10) == "connecting"


def test_placement(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/t.db")
    init_db(engine)
    with session(engine) as s:
        s.add(_agent("a100", {"gpu_type": "a100-80g"}, gpus=2))
        s.add(_agent("dead", {"gpu_type": "h100"}, gpus=8, age=60))
        s.add(_agent("drained", {"gpu_type": "h100"}, gpus=8, draining=True))
        s.add(_agent("local", {"host": "local"}, gpus=1, local=True))
        s.commit()

        def place(target="worker", labels=None, gpus=1, exclude=()):
            lost = {agent: utcnow() for agent in exclude}
            return resolve_placement(s, PlacementRequest(job_id="j", target=target, worker_labels=labels or {},
                                                         gpu_count=gpus, excluded_agents=lost), 30)

        assert place(labels={"gpu_type": "a100*"}).task_queue == pool_task_queue({"gpu_type": "a100-80g"}, 2, False)
        h100 = place(labels={"gpu_type": "h100*"})
        assert h100.task_queue is None and "h100*" in h100.reason
        assert place(gpus=4).task_queue is None
        assert place("local").is_local and place("local").task_queue
        assert not place("auto").is_local
        assert place("auto", exclude=["w_a100"]).is_local
        assert place("worker", exclude=["w_a100"]).task_queue is None


def test_lost_agent_is_eligible_again_after_it_registers(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/t.db")
    init_db(engine)
    with session(engine) as s:
        agent = _agent("a", {"pool": "p"})
        s.add(agent)
        s.commit()
        lost = {"w_a": utcnow()}
        req = PlacementRequest(job_id="j", target="worker", worker_labels={}, gpu_count=1, excluded_agents=lost)
        assert resolve_placement(s, req, 30).task_queue is None
        agent.registered_at = utcnow() + timedelta(seconds=1)
        s.add(agent)
        s.commit()
        assert resolve_placement(s, req, 30).task_queue == agent.task_queue
