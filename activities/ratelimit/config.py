"""``rate_limit:`` block of the settings (``SIMPLETUNER_RATE_LIMIT_*``).

``backend``: ``database`` counts in the app's database engine (PostgreSQL: a table of the app database;
SQLite: a file of its own beside the app's, so counting never waits for the app's write lock) and
``redis`` in Redis sorted sets (``redis_url``). ``rules`` come before the built-in ones; a rule with
the ``name`` of a built-in one replaces it, and keeps what it does not say of it.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from activities.ratelimit.defaults import BUILTIN_NAMES, DEFAULT_RULE

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class RateLimitRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    pattern: str | None = Field(None, min_length=1)  # a regular expression matched from the start of the path
    calls: int | None = Field(None, gt=0)
    period: float | None = Field(None, gt=0)  # seconds
    methods: list[str] | None = None  # None: every method

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
        return pattern

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, methods: list[str] | None) -> list[str] | None:
        if methods is None:
            return None
        upper = [m.upper() for m in methods]
        unknown = sorted(set(upper) - METHODS)
        if unknown or not upper:
            raise ValueError(f"methods must be some of {', '.join(sorted(METHODS))} (or left out for all); "
                             f"got {methods!r}")
        return upper

    @model_validator(mode="after")
    def _complete(self) -> "RateLimitRule":
        if self.name == DEFAULT_RULE:
            raise ValueError(f"{DEFAULT_RULE!r} is the fallback: set default_calls and default_period instead")
        if self.name not in BUILTIN_NAMES and (self.pattern is None or self.calls is None):
            raise ValueError("a rule needs pattern and calls (only a rule naming a built-in one, "
                             f"{', '.join(sorted(BUILTIN_NAMES))}, may leave them out)")
        return self


class RateLimitSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    backend: Literal["database", "redis"] = "database"
    redis_url: str | None = None
    default_calls: int = Field(100, gt=0)
    default_period: float = Field(60.0, gt=0)
    bypass_loopback: bool = False  # set by `simpletuner dev` only: loopback clients are not counted
    rules: list[RateLimitRule] = Field(default_factory=list)

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(REDIS_SCHEMES):
            raise ValueError(f"SIMPLETUNER_RATE_LIMIT_REDIS_URL must start with {', '.join(REDIS_SCHEMES)}")
        return url

    @model_validator(mode="after")
    def _redis_needs_url(self) -> "RateLimitSettings":
        if self.enabled and self.backend == "redis" and not self.redis_url:
            raise ValueError("backend is redis but no redis_url is set (SIMPLETUNER_RATE_LIMIT_REDIS_URL)")
        names = [rule.name for rule in self.rules if rule.name]
        if len(names) != len(set(names)):
            raise ValueError(f"rule names must be unique: {names}")
        return self
