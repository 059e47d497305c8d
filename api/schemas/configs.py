"""Answers of the training config routes: a config (``activities.jobs.configs.to_dict``) and the list."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from api.schemas.base import Answer


class TrainingConfig(Answer):
    name: str
    args: dict[str, Any] = Field(description="the training arguments (free-form)")
    command: list[str] = Field(description="argv, with {python}, {config_path}, {output_dir}, {job_dir} placeholders")
    gpu_count: int
    hardware_type: str | None = Field(description="a glob on agents' hardware types")
    estimated_hours: float | None
    env: dict[str, str]
    created_at: datetime
    updated_at: datetime


class ConfigList(Answer):
    configs: list[TrainingConfig]
