"""The Administration index (``/admin``): each console page module that administers something names
its section here when it is imported, with the permission that shows it. The index and the main
navigation list only the sections the signed-in principal may open; the pages check again."""

from __future__ import annotations

from dataclasses import dataclass

from activities.identity.principals import Principal


@dataclass(frozen=True)
class Section:
    url: str
    title: str
    summary: str
    permission: str | None  # None: every signed-in principal


SECTIONS: list[Section] = []


def section(url: str, title: str, summary: str, permission: str | None) -> None:
    if any(s.url == url for s in SECTIONS):
        raise ValueError(f"two administration sections at {url}")
    SECTIONS.append(Section(url, title, summary, permission))


def visible(principal: Principal | None) -> list[Section]:
    if principal is None:
        return []
    return sorted((s for s in SECTIONS if s.permission is None or principal.has(s.permission)), key=lambda s: s.title)
