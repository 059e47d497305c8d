"""The Prometheus export's configuration, kept in the database so every API replica serves the same:
whether the scrape endpoint answers, and which categories it exports. Until an admin saves one, the
export is off with the ``standard`` template's categories. Each change is audited in its transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import Field
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from activities.audit.trail import audit
from activities.db.models import utcnow
from activities.db.models_metrics import MetricsConfig
from activities.errors import InvalidInput
from activities.observability import metrics_catalog as catalog
from activities.request_body import RequestBody

ROW_ID = 1
CategoryId = Literal[catalog.CATEGORY_IDS]  # type: ignore[valid-type]
TemplateId = Literal[catalog.TEMPLATE_IDS]  # type: ignore[valid-type]


class MetricsConfigBody(RequestBody):
    """A change of the configuration: only the fields given change. ``template`` sets the categories
    to the template's (giving both, they must agree)."""
    enabled: bool | None = None
    categories: list[CategoryId] | None = Field(None, min_length=1, max_length=len(catalog.CATEGORY_IDS) * 2)
    template: TemplateId | None = None


@dataclass(frozen=True)
class Current:
    enabled: bool
    categories: tuple[str, ...]
    updated_at: datetime | None = None
    updated_by: str | None = None

    @property
    def template(self) -> str | None:
        return catalog.template_of(self.categories)


DEFAULT = Current(enabled=False, categories=catalog.template(catalog.DEFAULT_TEMPLATE).categories)


def get(session: Session) -> Current:
    row = session.get(MetricsConfig, ROW_ID)
    return DEFAULT if row is None else _current(row)


def _current(row: MetricsConfig) -> Current:
    return Current(bool(row.enabled), catalog.ordered(c for c in row.categories if c in catalog.CATEGORY_IDS),
                   row.updated_at, row.updated_by)


def proposed(current: Current, body: MetricsConfigBody) -> Current:
    """``current`` with ``body`` applied, checked; nothing is stored."""
    categories = current.categories
    if body.categories is not None:
        categories = catalog.ordered(body.categories)
    if body.template is not None:
        chosen = catalog.template(body.template).categories
        if body.categories is not None and set(categories) != set(chosen):
            raise InvalidInput(f"categories {', '.join(categories)} differ from those of template {body.template!r} "
                               f"({', '.join(chosen)}): give one of them")
        categories = chosen
    enabled = current.enabled if body.enabled is None else body.enabled
    return Current(enabled, categories, current.updated_at, current.updated_by)


def _locked_row(session: Session) -> MetricsConfig:
    """The row, made if missing (two first saves at once cannot both insert it), locked until commit."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(MetricsConfig).values(id=ROW_ID, enabled=DEFAULT.enabled,
                                                 categories=list(DEFAULT.categories), updated_at=utcnow())
                    .on_conflict_do_nothing(index_elements=["id"]))
    return session.get(MetricsConfig, ROW_ID, with_for_update=True, populate_existing=True)


def _store(session: Session, row: MetricsConfig, new: Current, actor: str, ip: str | None, action: str,
           details: dict[str, Any]) -> Current:
    row.enabled, row.categories = new.enabled, list(new.categories)
    row.updated_at, row.updated_by = utcnow(), actor
    session.add(row)
    audit(session, actor, action, "metrics_config", "prometheus",
          {**details, "enabled": new.enabled, "categories": list(new.categories)}, ip=ip)
    return Current(new.enabled, new.categories, row.updated_at, actor)


def put(session: Session, body: MetricsConfigBody, actor: str, ip: str | None) -> Current:
    """Applied to the row as it is once locked, so two changes at once both count (a refused change
    rolls back with the caller's transaction)."""
    row = _locked_row(session)
    return _store(session, row, proposed(_current(row), body), actor, ip, "metrics.config_changed", {})


def apply_template(session: Session, template_id: str, actor: str, ip: str | None) -> Current:
    """The template's categories; whether the export is on stays as it was."""
    chosen = catalog.template(template_id)
    row = _locked_row(session)
    return _store(session, row, Current(bool(row.enabled), chosen.categories), actor, ip,
                  "metrics.template_applied", {"template": chosen.id})


def to_dict(config: Current) -> dict[str, Any]:
    return {"enabled": config.enabled, "categories": list(config.categories), "template": config.template,
            "updated_at": config.updated_at, "updated_by": config.updated_by}
