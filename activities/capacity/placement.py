"""Placement: which pool's task queue a job goes to now, or why it must wait.

The job's wishes (target, label selector, GPU count, the config's hardware glob) are read from the
database, never from the request. A pool is every live, non-draining, healthy agent with the same
labels, GPU count, locality and hardware type; it fits when it has enough GPUs, its labels match the
selector's globs, its hardware type matches the config's ``hardware_type`` glob and the owner's
resource rules allow that hardware. ``worker`` takes remote pools, ``local`` local ones, ``auto``
remote first; among fitting pools the one with the most idle agents wins.
"""

from __future__ import annotations

from sqlmodel import Session

from activities.capacity.workers import list_all, status_of
from activities.db.models import Job, Worker, as_utc, utcnow
from activities.errors import InvalidInput, NotFound
from activities.governance import resource_rules
from activities.identity.principals import levels_of
from workflows.contracts import Placement, PlacementRequest, hardware_matches, labels_match


def resolve(session: Session, req: PlacementRequest, timeout_s: float) -> Placement:
    job = session.get(Job, req.job_id)
    if job is None:
        raise NotFound(f"job {req.job_id!r} not found")
    if job.target not in ("worker", "local", "auto"):
        raise InvalidInput(f"unknown target {job.target!r}")
    config = job.frozen_config or {}
    gpu_count = job.gpu_count or int(config.get("gpu_count") or 1)
    hardware_glob = config.get("hardware_type")
    levels = levels_of(session, job.owner_id)
    now = utcnow()

    def lost_here(w: Worker) -> bool:
        lost_at = req.excluded_agents.get(w.id)
        return lost_at is not None and (w.registered_at is None or as_utc(w.registered_at) <= as_utc(lost_at))

    live = [w for w in list_all(session) if w.task_queue and not lost_here(w) and w.unhealthy_since is None
            and status_of(w, timeout_s, now) in ("idle", "busy")]
    if not live:
        return Placement(reason="no healthy agent is online")
    hardware_ok: dict[str, bool] = {}

    def fits(w: Worker) -> bool:
        if w.gpu_count < gpu_count or not labels_match(job.worker_labels, w.labels):
            return False
        hardware = w.hardware_type or "unknown"
        if hardware not in hardware_ok:
            hardware_ok[hardware] = ((not hardware_glob or hardware_matches(hardware_glob, hardware))
                                     and resource_rules.denial(session, levels, "hardware", hardware) is None)
        return hardware_ok[hardware]

    fitting = [w for w in live if fits(w)]
    wanted = {"worker": [False], "local": [True], "auto": [False, True]}[job.target]
    for local in wanted:
        pools: dict[str, list[Worker]] = {}
        for w in fitting:
            if w.local == local:
                pools.setdefault(w.task_queue, []).append(w)  # type: ignore[arg-type]
        if pools:
            queue, members = max(pools.items(), key=lambda kv: (
                sum(1 for w in kv[1] if status_of(w, timeout_s, now) == "idle"), len(kv[1]), kv[0]))
            return Placement(task_queue=queue, is_local=local, agent_count=len(members),
                             hardware_type=members[0].hardware_type)
    return Placement(reason=_why_none(job.target, job.worker_labels, gpu_count, hardware_glob, len(live)))


def _why_none(target: str, selector: dict[str, str], gpu_count: int, hardware_glob: str | None, online: int) -> str:
    kind = {"worker": "remote agent", "local": "local agent", "auto": "agent"}[target]
    wishes = [f"labels matching {selector}"] if selector else []
    wishes += [f"hardware matching {hardware_glob!r} allowed for the submitter"] if hardware_glob else []
    wish = (" with " + " and ".join(wishes)) if wishes else ""
    return f"no live, non-draining {kind}{wish} with at least {gpu_count} GPU(s) ({online} agent(s) online)"
