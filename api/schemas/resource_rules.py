"""Answers of the resource rule routes: a rule (``activities.governance.resource_rules.to_dict``) and the list."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from api.schemas.base import Answer


class ResourceRule(Answer):
    id: str
    level: str
    resource_type: Literal["config", "hardware", "provider"]
    pattern: str = Field(description="a glob on the resource's name")
    action: Literal["allow", "deny"]
    description: str | None
    created_at: datetime


class ResourceRuleList(Answer):
    rules: list[ResourceRule]
