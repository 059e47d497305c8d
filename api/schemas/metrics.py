"""Answers of the metrics routes: the export's configuration, its catalog (categories, templates)
and a preview of what the scrape endpoint would answer."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from api.schemas.base import Answer


class MetricsConfig(Answer):
    enabled: bool = Field(description="whether GET /api/cloud/metrics/prometheus answers (404 while off)")
    categories: list[str] = Field(description="the exported categories, in catalog order")
    template: str | None = Field(description="the template whose categories these are exactly; null: hand-picked")
    updated_at: datetime | None = Field(description="null until an admin saves a configuration")
    updated_by: str | None


class MetricInfo(Answer):
    name: str = Field(description="as exposed (a counter's name ends in _total)")
    type: str = Field(description="counter, gauge or histogram")
    help: str
    labels: list[str]


class CategoryInfo(Answer):
    id: str
    title: str
    description: str
    metrics: list[MetricInfo]


class CategoryList(Answer):
    categories: list[CategoryInfo]


class TemplateInfo(Answer):
    id: str
    title: str
    description: str
    categories: list[str]


class TemplateList(Answer):
    templates: list[TemplateInfo]


class MetricsPreview(Answer):
    enabled: bool = Field(description="of the configuration previewed: whether the endpoint would answer at all")
    categories: list[str]
    template: str | None
    metrics: list[str] = Field(description="the metric families the text holds")
    content_type: str
    text: str = Field(description="the Prometheus text format 0.0.4, as the scrape endpoint would answer it")


PROMETHEUS_TEXT = {200: {"description": "The Prometheus text format 0.0.4 (text/plain; version=0.0.4)",
                         "content": {"text/plain": {"schema": {"type": "string"}}}}}
