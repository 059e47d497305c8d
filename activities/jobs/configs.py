"""Training configs: stored in the database, optionally seeded from SIMPLETUNER_CONFIG_DIR."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ConfigDict, Field, ValidationError, field_validator
from sqlmodel import Session, select

from activities.request_body import RequestBody
from activities.db.models import TrainingConfig, utcnow
from activities.errors import InvalidInput, NotFound
from activities.audit.trail import audit
from workflows.contracts import TrainingConfigSpec

log = logging.getLogger(__name__)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class ConfigBody(RequestBody):
    """What a client may PUT; unknown fields are refused so typos surface."""
    model_config = ConfigDict(extra="forbid")
    args: dict[str, Any] = Field(default_factory=dict)
    command: list[str] = Field(default_factory=list)
    gpu_count: int = Field(1, ge=1, le=1024)
    hardware_type: str | None = Field(None, max_length=100)
    estimated_hours: float | None = Field(None, ge=0, le=100_000)
    env: dict[str, str] = Field(default_factory=dict)

    @field_validator("command")
    @classmethod
    def _command_not_blank(cls, value: list[str]) -> list[str]:
        if any(not part for part in value):
            raise ValueError("command entries must be non-empty strings")
        return value


def validate_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise InvalidInput(f"invalid config name {name!r}: use 1-128 letters, digits, '.', '_' or '-'")
    return name


def to_dict(config: TrainingConfig) -> dict[str, Any]:
    return {"name": config.name, "args": config.args, "command": config.command, "gpu_count": config.gpu_count,
            "hardware_type": config.hardware_type, "estimated_hours": config.estimated_hours, "env": config.env,
            "created_at": config.created_at, "updated_at": config.updated_at}


def to_spec(config: TrainingConfig) -> TrainingConfigSpec:
    return TrainingConfigSpec(name=config.name, args=config.args, command=config.command, env=config.env,
                              gpu_count=config.gpu_count, hardware_type=config.hardware_type,
                              estimated_hours=config.estimated_hours)


def find(session: Session, name: str) -> TrainingConfig | None:
    return session.get(TrainingConfig, name)


def get(session: Session, name: str) -> TrainingConfig:
    config = find(session, name)
    if config is None:
        raise NotFound(f"config {name!r} not found")
    return config


def list_all(session: Session) -> list[TrainingConfig]:
    return list(session.exec(select(TrainingConfig).order_by(TrainingConfig.name)))


def upsert(session: Session, name: str, body: ConfigBody, actor: str, owner_id: str | None = None) -> tuple[TrainingConfig, bool]:
    validate_name(name)
    config = session.get(TrainingConfig, name)
    created = config is None
    if created:
        config = TrainingConfig(name=name, owner_id=owner_id)
    elif all(getattr(config, field) == value for field, value in body.model_dump().items()):
        return config, False  # unchanged: no write, no audit entry
    for field, value in body.model_dump().items():
        setattr(config, field, value)
    config.updated_at = utcnow()
    session.add(config)
    audit(session, actor, "config.created" if created else "config.updated", "config", name)
    return config, created


def delete(session: Session, name: str, actor: str) -> None:
    session.delete(get(session, name))
    audit(session, actor, "config.deleted", "config", name)


def load_directory(session: Session, directory: Path) -> list[str]:
    """Upsert every ``*.json``/``*.yaml`` config in ``directory``; ``{config_dir}`` in a command is
    replaced by the file's directory. A broken file is reported and skipped, never half-loaded."""
    loaded: list[str] = []
    for path in sorted(directory.glob("*")):
        if path.suffix not in (".json", ".yaml", ".yml") or not path.is_file():
            continue
        try:
            raw = json.loads(path.read_text()) if path.suffix == ".json" else yaml.safe_load(path.read_text())
            if not isinstance(raw, dict):
                raise ValueError("top level must be a mapping")
            name = str(raw.pop("name", path.stem))
            raw["command"] = [part.replace("{config_dir}", str(path.parent.resolve()))
                              for part in raw.get("command", [])]
            body = ConfigBody.model_validate(raw)
            upsert(session, name, body, actor="system:config-dir")
            loaded.append(name)
        except (ValueError, ValidationError, InvalidInput, yaml.YAMLError) as exc:
            log.error("skipping config file %s: %s", path, exc)
    return loaded
