"""Answers of the approval rule routes: a rule (``activities.governance.approval_rules.to_dict``),
the rule list and the condition catalogue."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from api.schemas.base import Answer


class ApprovalRule(Answer):
    id: str
    name: str
    description: str | None
    condition: str = Field(description="one of GET /api/approvals/conditions")
    threshold: str | None = Field(description="a canonical number or a glob, as the condition takes; null for none")
    priority: int = Field(description="higher is evaluated first")
    required_approver_level: str
    exempt_levels: list[str]
    applies_to_provider: str | None
    applies_to_level: str | None
    enabled: bool
    created_by: str | None
    created_at: datetime
    updated_at: datetime


class RuleList(Answer):
    rules: list[ApprovalRule] = Field(description="in evaluation order")


class Condition(Answer):
    name: str
    threshold_kind: Literal["number", "integer", "glob", "none"]
    description: str
    example_threshold: str | None


class ConditionList(Answer):
    conditions: list[Condition]
