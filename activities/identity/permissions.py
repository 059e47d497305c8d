"""Levels, permissions and the grant matrix (enterprise guide, section 10).

Effective permissions of a user = the union of their levels' grants, then per-user overrides
(granted=true adds, granted=false removes).
"""

from __future__ import annotations

from collections.abc import Iterable

from workflows.contracts import LEVEL_PRIORITY

LEVEL_DESCRIPTIONS: dict[str, str] = {
    "viewer": "Read-only access to job history and logs.",
    "researcher": "Standard access: submits jobs and manages their own API keys.",
    "lead": "Approves pending jobs and sees the team's resource usage.",
    "admin": "Full system access, including users and rule configuration.",
}

PERMISSIONS: dict[str, tuple[str, str]] = {  # name -> (category, description)
    "job.submit": ("job", "Submit training jobs"),
    "job.view.own": ("job", "See one's own jobs, logs and outputs"),
    "job.view.all": ("job", "See every user's jobs, logs and outputs"),
    "job.cancel.own": ("job", "Cancel one's own jobs"),
    "job.cancel.all": ("job", "Cancel anyone's jobs"),
    "job.priority.high": ("job", "Submit with raised priority"),
    "job.bypass.queue": ("job", "Skip queue limits"),
    "job.bypass.approval": ("job", "Skip approval rules"),
    "config.view": ("config", "See training configs"),
    "config.create": ("config", "Create training configs"),
    "config.edit.own": ("config", "Edit or delete one's own configs"),
    "config.edit.all": ("config", "Edit or delete any config"),
    "admin.users": ("admin", "Manage users, levels, permissions and identity providers"),
    "admin.approve": ("admin", "Approve or reject pending jobs"),
    "admin.audit": ("admin", "Read the audit log"),
    "admin.config": ("admin", "Change system configuration"),
    "admin.workers": ("admin", "Manage GPU agents"),
    "queue.approve": ("queue", "Approve queued jobs"),
    "queue.manage": ("queue", "Change queue limits and priorities"),
    "org.view": ("org", "See organizations"),
    "org.create": ("org", "Create organizations"),
    "team.view": ("org", "See teams"),
    "team.create": ("org", "Create teams"),
    "team.manage.members": ("org", "Add and remove team members"),
}

_VIEWER = {"job.view.own", "config.view", "org.view", "team.view"}
_RESEARCHER = _VIEWER | {"job.submit", "job.cancel.own", "config.create", "config.edit.own"}
_LEAD = _RESEARCHER | {"job.view.all", "job.cancel.all", "job.priority.high", "config.edit.all", "admin.approve",
                       "admin.audit", "queue.approve", "team.manage.members"}
LEVEL_GRANTS: dict[str, frozenset[str]] = {
    "viewer": frozenset(_VIEWER),
    "researcher": frozenset(_RESEARCHER),
    "lead": frozenset(_LEAD),
    "admin": frozenset(PERMISSIONS),
}


def highest_level(levels: Iterable[str]) -> str | None:
    known = [lv for lv in levels if lv in LEVEL_PRIORITY]
    return max(known, key=LEVEL_PRIORITY.__getitem__) if known else None


def effective_permissions(levels: Iterable[str], overrides: dict[str, bool]) -> frozenset[str]:
    granted: set[str] = set()
    for level in levels:
        granted |= LEVEL_GRANTS.get(level, frozenset())
    for name, allow in overrides.items():
        (granted.add if allow else granted.discard)(name)
    return frozenset(granted)
