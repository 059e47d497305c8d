"""What happens when a request is refused for its rate: listeners are told (metrics count there) and
the audit trail records the client address, path, method and User-Agent.

Audit entries go through a session of their own, after the 429 is decided and without anything else
of the request. A flood must not turn into a flood of audit writes, so each API process records the
first refusal of a client under a rule and then none until that window lets the client in again;
listeners hear of every refusal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlmodel import Session

from activities.audit.trail import audit

log = logging.getLogger(__name__)
ACTION = "rate_limit.exceeded"
MAX_USER_AGENT = 512
_MAX_QUIET = 10_000  # remembered (rule, client) pairs per process before the stale ones are dropped


@dataclass(frozen=True)
class Violation:
    ip: str
    path: str
    method: str
    user_agent: str | None
    rule: str
    limit: int
    period: float
    retry_after: int
    at: float  # unix time


# Called with every Violation (in the request's task: keep it quick, never raise). The metrics module
# appends its counter here.
VIOLATION_LISTENERS: list[Callable[[Violation], None]] = []


def on_violation(violation: Violation) -> None:
    for listener in list(VIOLATION_LISTENERS):
        try:
            listener(violation)
        except Exception:  # a listener's bug must not turn a 429 into a 500
            log.exception("rate-limit violation listener failed")


class AuditThrottle:
    """Per process: whether a refusal should be written to the audit trail (see the module docstring)."""

    def __init__(self) -> None:
        self._quiet_until: dict[tuple[str, str], float] = {}

    def should_record(self, violation: Violation) -> bool:
        key = (violation.rule, violation.ip)
        if self._quiet_until.get(key, 0.0) > violation.at:
            return False
        if len(self._quiet_until) >= _MAX_QUIET:
            self._quiet_until = {k: t for k, t in self._quiet_until.items() if t > violation.at}
        self._quiet_until[key] = violation.at + violation.retry_after
        return True


def record(session_factory: Callable[[], Session], violation: Violation) -> None:
    """The audit entry, in a transaction of its own (blocking: run it in a worker thread)."""
    details = {"path": violation.path, "method": violation.method,
               "user_agent": (violation.user_agent or "")[:MAX_USER_AGENT], "rule": violation.rule,
               "limit": violation.limit, "period_seconds": violation.period, "retry_after": violation.retry_after}
    with session_factory() as session:
        audit(session, "anonymous", ACTION, "rate_limit", violation.rule, details, ip=violation.ip)
        session.commit()
