"""The guided set-up of a new installation, in order: sign-in methods (SSO), organizations, teams,
quotas, credentials. Each step is completed or skipped by an admin; the progress is kept in the
database (``SetupStep``), so every admin and every browser sees the same."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, select

from activities.audit.trail import audit
from activities.db.models_credentials import ProviderCredential
from activities.db.models_orgs import Organization, Quota, Team
from activities.db.models_setup import SetupStep
from activities.db.models_sso import ExternalAuthProvider
from activities.errors import InvalidInput
from activities.identity.principals import Principal
from activities.db.models import utcnow


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    purpose: str
    counted: Any  # the table whose rows show the step has something to show


STEPS = (
    Step("auth", "Sign-in methods", "Let people sign in with your identity provider (OIDC) or directory (LDAP).",
         ExternalAuthProvider),
    Step("orgs", "Organizations", "Group people and budgets: each organization has members, teams and quotas.",
         Organization),
    Step("teams", "Teams", "Teams inside an organization share quotas and approvals.", Team),
    Step("quotas", "Quotas", "Limit cost, jobs and concurrency per organization or team.", Quota),
    Step("credentials", "Credentials", "Store the API tokens jobs need (cloud providers, hubs), encrypted.",
         ProviderCredential),
)
KEYS = tuple(s.key for s in STEPS)
PERMISSION = "admin.config"  # who runs the set-up (each step's own change needs its own permission too)
STATES = ("done", "skipped")


def step(key: str) -> Step:
    for s in STEPS:
        if s.key == key:
            return s
    raise InvalidInput(f"unknown set-up step {key!r}; one of {', '.join(KEYS)}")


def progress(session: Session) -> list[dict[str, Any]]:
    """Every step in order with its state (done, skipped or todo) and how many things it has."""
    rows = {r.step: r for r in session.exec(select(SetupStep))}
    out = []
    for s in STEPS:
        row = rows.get(s.key)
        out.append({"key": s.key, "title": s.title, "purpose": s.purpose,
                    "state": row.state if row else "todo", "by": row.updated_by if row else None,
                    "at": row.updated_at if row else None,
                    "count": session.exec(select(func.count()).select_from(s.counted)).one()})
    return out


def current(steps: list[dict[str, Any]]) -> str | None:
    """The first step neither done nor skipped (None: the set-up is finished)."""
    return next((s["key"] for s in steps if s["state"] == "todo"), None)


def mark(session: Session, key: str, state: str, actor: Principal, ip: str | None) -> None:
    """Complete, skip or reopen (``todo``) a step."""
    step(key)
    if state not in (*STATES, "todo"):
        raise InvalidInput(f"unknown step state {state!r}; done, skipped or todo")
    actor.require(PERMISSION)
    row = session.get(SetupStep, key)
    if state == "todo":
        if row is not None:
            session.delete(row)
    elif row is None:
        session.add(SetupStep(step=key, state=state, updated_by=actor.username))
    else:
        row.state, row.updated_by, row.updated_at = state, actor.username, utcnow()
        session.add(row)
    audit(session, actor.username, "setup.step_marked", "setup_step", key, {"state": state}, ip=ip)
