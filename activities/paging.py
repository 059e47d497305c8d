"""Paging for list endpoints: ``limit`` (default 100, at most 1000) and an opaque ``cursor``.

Tables are paged by key (keyset): a page is "the next ``limit`` rows after this key" in the list's
order, answered from the index on those columns, so page 500 costs what page 1 does and rows added
meanwhile never shift a page. The cursor is the last row's key, base64url JSON; a cursor that does
not decode is a 422 naming it. Lists computed in memory (the admission line) are paged by position.
``offset`` stays for older clients and applies only without a cursor.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Sequence, TypeVar

from sqlalchemy import DateTime, Integer, and_, func, or_
from sqlmodel import Session, select

from activities.errors import InvalidInput

T = TypeVar("T")
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000


@dataclass(frozen=True)
class PageRequest:
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None
    offset: int = 0


@dataclass
class Page(Generic[T]):
    rows: list[T]
    total: int
    next_cursor: str | None

    def fields(self) -> dict[str, Any]:
        """What every paged answer adds to its list."""
        return {"total": self.total, "next_cursor": self.next_cursor}


def encode(values: Sequence[Any]) -> str:
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    return base64.urlsafe_b64encode(json.dumps(plain, separators=(",", ":")).encode()).decode().rstrip("=")


def decode(cursor: str, kinds: Sequence[type]) -> list[Any]:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(values, list) or len(values) != len(kinds):
            raise ValueError("wrong shape")
        return [_typed(v, kind) for v, kind in zip(values, kinds)]
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("cursor: not a cursor of this list (use the next_cursor of its previous page)") from None


def _typed(value: Any, kind: type) -> Any:
    if kind is datetime:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError("a time without its zone")
        return moment
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("not an integer")
        return value
    if not isinstance(value, str):
        raise ValueError("not a string")
    return value


def _kind(column) -> type:
    sql_type = column.type
    sql_type = getattr(sql_type, "impl", sql_type)  # a TypeDecorator (sqlmodel's aware datetime): what it stores
    return datetime if isinstance(sql_type, DateTime) else int if isinstance(sql_type, Integer) else str


def keyset(session: Session, query, order: Sequence[tuple[Any, bool]], page: PageRequest) -> Page:
    """One page of ``query`` in ``order`` ((column, descending) pairs, unique together) after
    ``page.cursor``; ``total`` counts every row of ``query``."""
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    columns = [column for column, _ in order]
    if page.cursor:
        values = decode(page.cursor, [_kind(c) for c in columns])
        query = query.where(or_(*[
            and_(*[columns[j] == values[j] for j in range(i)], column < values[i] if desc else column > values[i])
            for i, (column, desc) in enumerate(order)]))
    elif page.offset:
        query = query.offset(page.offset)
    query = query.order_by(*[column.desc() if desc else column.asc() for column, desc in order]).limit(page.limit + 1)
    rows = list(session.exec(query))
    more = len(rows) > page.limit
    rows = rows[:page.limit]
    next_cursor = encode([getattr(rows[-1], c.key) for c in columns]) if more and rows else None
    return Page(rows, total, next_cursor)


def positional(items: Sequence[T], page: PageRequest) -> Page[T]:
    """A page of a list computed in memory: the cursor is the position after the last item."""
    start = decode(page.cursor, [int])[0] if page.cursor else page.offset
    if start < 0:
        raise InvalidInput("cursor: not a cursor of this list")
    end = start + page.limit
    return Page(list(items[start:end]), len(items), encode([end]) if end < len(items) else None)
