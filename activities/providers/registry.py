"""The cloud providers this control plane can run trainings on, by name (= the job's ``target``)."""

from __future__ import annotations

from activities.errors import NotFound
from activities.providers.base import CloudProvider
from activities.providers.replicate import ReplicateProvider

PROVIDERS: dict[str, CloudProvider] = {"replicate": ReplicateProvider()}


def names() -> list[str]:
    return sorted(PROVIDERS)


def is_provider(target: str | None) -> bool:
    return target in PROVIDERS


def get(name: str) -> CloudProvider:
    try:
        return PROVIDERS[name]
    except KeyError:
        raise NotFound(f"unknown cloud provider {name!r}; known: {', '.join(names())}") from None
