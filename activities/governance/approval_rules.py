"""Approval rules: which submissions must wait for an approver, and who may approve them. This
module keeps the rules (conditions, validation, CRUD, their order); ``approval_match`` evaluates
them against a submission. Personal bypass (``job.bypass.approval``) is the caller's check."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import ConfigDict, Field, field_validator
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from activities.request_body import RequestBody
from activities.db.models import utcnow
from activities.db.models_approvals import ApprovalRule
from activities.errors import Conflict, InvalidInput, NotFound
from activities.audit.trail import audit
from activities.identity.permissions import LEVEL_PRIORITY
from activities.identity.principals import Principal
from activities.secrets.tokens import new_id

# name -> (threshold kind, description, example threshold); kinds: number | integer | glob | none
CONDITIONS: dict[str, tuple[str, str, str | None]] = {
    "cost_exceeds": ("number", "Estimated cost of the job exceeds the threshold (USD).", "50"),
    "hardware_type": ("glob", "The config's hardware type matches the glob (e.g. a100*).", "a100*"),
    "daily_jobs_exceed": ("integer", "The submitter's jobs today (UTC), this one included, exceed the "
                                     "threshold: with 5 the 6th job of the day needs approval.", "5"),
    "first_job": ("none", "The submitter's very first job.", None),
    "config_pattern": ("glob", "The config name matches the glob (e.g. prod-*).", "prod-*"),
    "provider": ("glob", "The job's provider matches the glob: local, worker, auto or a cloud provider name.",
                 "local"),
}
MAX_NUMBER = Decimal(10) ** 12
UPDATABLE = ("name", "description", "condition", "threshold", "priority", "required_approver_level",
             "exempt_levels", "applies_to_provider", "applies_to_level", "enabled")
NULLABLE = frozenset({"description", "threshold", "applies_to_provider", "applies_to_level", "exempt_levels"})


def conditions() -> list[dict[str, Any]]:
    """The condition catalogue as the API shows it."""
    return [{"name": name, "threshold_kind": kind, "description": text, "example_threshold": example}
            for name, (kind, text, example) in CONDITIONS.items()]


def _level(value: str) -> str:
    if value not in LEVEL_PRIORITY:
        raise ValueError(f"unknown level {value!r}; one of {', '.join(LEVEL_PRIORITY)}")
    return value


def _condition(value: str) -> str:
    if value not in CONDITIONS:
        raise ValueError(f"unknown condition {value!r}; one of {', '.join(CONDITIONS)}")
    return value


def _scalar(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (str, int, float, type(None))):
        raise ValueError("threshold must be a string or a number")
    return value


Threshold = (Annotated[str, Field(max_length=200)] | Annotated[int, Field(ge=-10**12, le=10**12)]
             | Annotated[float, Field(ge=-1e12, le=1e12)])  # "50" (as the guides write it) or 50


class _RuleFields(RequestBody):
    """Field-level checks shared by create and patch; cross-field checks happen in ``_validated``."""
    model_config = ConfigDict(extra="forbid")

    @field_validator("name", check_fields=False)
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("name must not be blank")
        return v.strip() if v is not None else v

    _cond = field_validator("condition", check_fields=False)(
        lambda v: _condition(v) if v is not None else v)
    _thr = field_validator("threshold", mode="before", check_fields=False)(_scalar)
    _req = field_validator("required_approver_level", "applies_to_level", check_fields=False)(
        lambda v: _level(v) if v is not None else v)
    _exempt = field_validator("exempt_levels", check_fields=False)(
        lambda v: list(dict.fromkeys(_level(x) for x in v)) if v is not None else v)


class RuleCreate(_RuleFields):
    name: str = Field(min_length=1, max_length=100)
    description: str | None = Field(None, max_length=500)
    condition: str
    threshold: Threshold | None = None
    priority: int = Field(0, ge=-1_000_000, le=1_000_000)
    required_approver_level: str = "lead"
    exempt_levels: list[str] = Field(default_factory=list, max_length=len(LEVEL_PRIORITY))
    applies_to_provider: str | None = Field(None, min_length=1, max_length=200)
    applies_to_level: str | None = None
    enabled: bool = True


class RulePatch(_RuleFields):
    """Only the fields sent change; the merged rule is validated again as a whole."""
    name: str | None = Field(None, min_length=1, max_length=100)
    description: str | None = Field(None, max_length=500)
    condition: str | None = None
    threshold: Threshold | None = None
    priority: int | None = Field(None, ge=-1_000_000, le=1_000_000)
    required_approver_level: str | None = None
    exempt_levels: list[str] | None = Field(None, max_length=len(LEVEL_PRIORITY))
    applies_to_provider: str | None = Field(None, min_length=1, max_length=200)
    applies_to_level: str | None = None
    enabled: bool | None = None


def normalize_threshold(condition: str, value: str | int | float | None) -> str | None:
    """The threshold as stored for ``condition``: a canonical number, a non-empty glob, or None."""
    kind = CONDITIONS[condition][0]
    if kind == "none":
        return None
    text = "" if value is None else str(value).strip()
    if kind == "glob":
        if not text or len(text) > 200:
            raise InvalidInput(f"threshold must be a non-empty glob pattern (at most 200 characters) for "
                               f"condition {condition}, got {value!r}")
        return text
    try:
        number = Decimal(text)
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite() or not 0 <= number <= MAX_NUMBER:
        unit = " (USD)" if condition == "cost_exceeds" else ""
        raise InvalidInput(f"threshold must be a number from 0 to {MAX_NUMBER:f}{unit} for condition "
                           f"{condition}, got {value!r}")
    if kind == "integer":
        if number != number.to_integral_value():
            raise InvalidInput(f"threshold must be a whole number of jobs for condition {condition}, got {value!r}")
        return str(int(number))
    return "0" if number == 0 else format(number.normalize(), "f")


def _validated(fields: dict[str, Any]) -> dict[str, Any]:
    """Cross-field checks of a whole rule; returns the fields to store."""
    for key in UPDATABLE:
        if fields.get(key) is None and key not in NULLABLE:
            raise InvalidInput(f"{key} must not be null")
    out = dict(fields)
    out["threshold"] = normalize_threshold(fields["condition"], fields.get("threshold"))
    out["exempt_levels"] = list(fields.get("exempt_levels") or [])
    return out


def to_dict(rule: ApprovalRule) -> dict[str, Any]:
    return {"id": rule.id, **{key: getattr(rule, key) for key in UPDATABLE}, "created_by": rule.created_by,
            "created_at": rule.created_at, "updated_at": rule.updated_at}


def get(session: Session, rule_id: str) -> ApprovalRule:
    rule = session.get(ApprovalRule, rule_id)
    if rule is None:
        raise NotFound(f"approval rule {rule_id!r} not found")
    return rule


def list_rules(session: Session, enabled: bool | None = None) -> list[ApprovalRule]:
    """Rules in evaluation order: priority descending, then oldest first."""
    query = select(ApprovalRule)
    if enabled is not None:
        query = query.where(ApprovalRule.enabled == enabled)
    order = (col(ApprovalRule.priority).desc(), col(ApprovalRule.created_at), col(ApprovalRule.id))
    return list(session.exec(query.order_by(*order)))


def _check_name(session: Session, name: str, except_id: str | None = None) -> None:
    taken = session.exec(select(ApprovalRule.id).where(ApprovalRule.name == name)).first()
    if taken is not None and taken != except_id:
        raise Conflict(f"an approval rule named {name!r} already exists")


def _flush(session: Session, name: str) -> None:
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict(f"an approval rule named {name!r} already exists") from None


def create(session: Session, body: RuleCreate, actor: Principal, ip: str | None) -> ApprovalRule:
    fields = _validated(body.model_dump())
    _check_name(session, fields["name"])
    rule = ApprovalRule(id=new_id("ar"), created_by=actor.username, **fields)
    session.add(rule)
    _flush(session, rule.name)
    audit(session, actor.username, "approval_rule.created", "approval_rule", rule.id, fields, ip=ip)
    return rule


def patch(session: Session, rule_id: str, body: RulePatch, actor: Principal, ip: str | None) -> ApprovalRule:
    rule = get(session, rule_id)
    changes = body.model_dump(exclude_unset=True)
    merged = _validated({**{key: getattr(rule, key) for key in UPDATABLE}, **changes})
    if merged["name"] != rule.name:
        _check_name(session, merged["name"], except_id=rule.id)
    changed = {key: value for key, value in merged.items() if value != getattr(rule, key)}
    for key, value in changed.items():
        setattr(rule, key, value)
    rule.updated_at = utcnow()
    session.add(rule)
    _flush(session, rule.name)
    audit(session, actor.username, "approval_rule.updated", "approval_rule", rule.id,
          {"name": rule.name, "changes": changed}, ip=ip)
    return rule


def delete(session: Session, rule_id: str, actor: Principal, ip: str | None) -> None:
    rule = get(session, rule_id)
    session.delete(rule)
    audit(session, actor.username, "approval_rule.deleted", "approval_rule", rule_id,
          {"name": rule.name, "condition": rule.condition, "threshold": rule.threshold}, ip=ip)
