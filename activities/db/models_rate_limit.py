"""Rate-limit counters (``activities/ratelimit``): one row per rule and client address, holding the
times of the requests counted in its current window. Rows past ``expires_at`` are deleted."""

from __future__ import annotations

from sqlalchemy import JSON, Column
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


class RateLimitWindow(SQLModel, table=True):
    key: str = Field(primary_key=True, max_length=300)  # "<rule>|<client address>"
    client: str = Field(max_length=64)
    hits: list = Field(default_factory=list, sa_column=Column(JSON().with_variant(JSONB(), "postgresql"),
                                                              nullable=False))  # unix times, oldest first
    allowed: bool = True  # whether the last request was counted (read back by the PostgreSQL upsert)
    expires_at: float = Field(index=True)  # unix time after which the row counts nothing
