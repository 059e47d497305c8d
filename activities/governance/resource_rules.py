"""Resource rules: which configs, hardware and providers a level may use.

For each resource type, the rules of the caller's levels whose glob matches the value are
considered: any matching ``allow`` wins ("most permissive wins"); otherwise a matching ``deny``
refuses; with no matching rule the resource is allowed. Hardware globs match normalised hardware
types with or without a ``gpu-``/``nvidia-`` prefix (``gpu-t4*`` matches ``t4``). Fail closed: a job
that names no hardware is refused where the levels' rules deny some hardware, since what it would
run on cannot be checked.
"""

from __future__ import annotations

import fnmatch
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator
from sqlmodel import Session, col, select

from activities.request_body import RequestBody
from activities.db.models_rules import ResourceRule
from activities.errors import Forbidden, NotFound
from activities.audit.trail import audit
from activities.identity.permissions import LEVEL_PRIORITY
from activities.identity.principals import Principal
from activities.secrets.tokens import new_id
from workflows.contracts import hardware_matches

RESOURCE_TYPES = ("config", "hardware", "provider")


class RuleBody(RequestBody):
    model_config = ConfigDict(extra="forbid")
    level: str
    resource_type: Literal["config", "hardware", "provider"]
    pattern: str = Field(min_length=1, max_length=200)
    action: Literal["allow", "deny"]
    description: str | None = Field(None, max_length=500)

    @field_validator("level")
    @classmethod
    def _level(cls, v: str) -> str:
        if v not in LEVEL_PRIORITY:
            raise ValueError(f"unknown level {v!r}; one of {', '.join(LEVEL_PRIORITY)}")
        return v


def to_dict(rule: ResourceRule) -> dict[str, Any]:
    return {"id": rule.id, "level": rule.level, "resource_type": rule.resource_type, "pattern": rule.pattern,
            "action": rule.action, "description": rule.description, "created_at": rule.created_at}


def describe(rule: ResourceRule) -> str:
    return f"rule {rule.id} ({rule.level}: {rule.resource_type} {rule.pattern!r} {rule.action})"


def get(session: Session, rule_id: str) -> ResourceRule:
    rule = session.get(ResourceRule, rule_id)
    if rule is None:
        raise NotFound(f"resource rule {rule_id!r} not found")
    return rule


def list_all(session: Session, level: str | None = None) -> list[ResourceRule]:
    query = select(ResourceRule)
    if level:
        query = query.where(ResourceRule.level == level)
    return list(session.exec(query.order_by(ResourceRule.level, ResourceRule.resource_type, ResourceRule.created_at)))


def create(session: Session, body: RuleBody, actor: Principal, ip: str | None) -> ResourceRule:
    rule = ResourceRule(id=new_id("rr"), **body.model_dump())
    session.add(rule)
    audit(session, actor.username, "resource_rule.created", "resource_rule", rule.id, body.model_dump(), ip=ip)
    return rule


def replace(session: Session, rule_id: str, body: RuleBody, actor: Principal, ip: str | None) -> ResourceRule:
    rule = get(session, rule_id)
    for key, value in body.model_dump().items():
        setattr(rule, key, value)
    session.add(rule)
    audit(session, actor.username, "resource_rule.updated", "resource_rule", rule.id, body.model_dump(), ip=ip)
    return rule


def delete(session: Session, rule_id: str, actor: Principal, ip: str | None) -> None:
    rule = get(session, rule_id)
    session.delete(rule)
    audit(session, actor.username, "resource_rule.deleted", "resource_rule", rule_id,
          {"level": rule.level, "resource_type": rule.resource_type, "pattern": rule.pattern, "action": rule.action},
          ip=ip)


def _rules(session: Session, levels: tuple[str, ...], resource_type: str) -> list[ResourceRule]:
    return list(session.exec(select(ResourceRule).where(ResourceRule.resource_type == resource_type,
                                                        col(ResourceRule.level).in_(levels))))


def _matches(rule: ResourceRule, value: str) -> bool:
    if rule.resource_type == "hardware":
        return hardware_matches(rule.pattern, value)
    return fnmatch.fnmatchcase(value, rule.pattern)


def denial(session: Session, levels: tuple[str, ...], resource_type: str, value: str | None) -> str | None:
    """Why ``value`` is not allowed for these levels, or None when it is."""
    rules = _rules(session, levels, resource_type)
    if value is None:
        restricting = next((r for r in rules if r.action == "deny"), None)
        if resource_type == "hardware" and restricting is not None:
            return (f"the config names no hardware_type, and hardware is restricted for your level by resource "
                    f"{describe(restricting)}: set hardware_type on the config")
        return None
    matching = [r for r in rules if _matches(r, value)]
    if any(r.action == "allow" for r in matching):
        return None
    denied = next((r for r in matching if r.action == "deny"), None)
    return f"{resource_type} {value!r} is denied by resource {describe(denied)}" if denied is not None else None


def check(session: Session, levels: tuple[str, ...], resource_type: str, value: str | None) -> None:
    """Raise Forbidden naming the denying rule when ``value`` is not allowed for these levels."""
    reason = denial(session, levels, resource_type, value)
    if reason is not None:
        raise Forbidden(reason)
