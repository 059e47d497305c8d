"""Answers of the provider credential routes: a credential without its value
(``activities.secrets.credentials.to_dict``), listings, stale checks and validation."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from api.schemas.base import Answer


class Credential(Answer):
    id: str
    user_id: str
    provider: str
    credential_name: str
    fingerprint: str = Field(description="the value's last 4 characters, or empty for short values")
    created_at: datetime
    rotated_at: datetime | None
    last_used_at: datetime | None
    age_days: int = Field(description="days since it was set or last rotated")
    stale: bool


class CredentialSet(Credential):
    created: bool = Field(description="true: created (201); false: an existing value replaced (200)")


class CredentialListing(Answer):
    user_id: str
    stale_after_days: int
    credentials: list[Credential]


class StaleCredential(Credential):
    username: str


class StaleCheck(Answer):
    stale_after_days: int
    count: int
    credentials: list[StaleCredential] = Field(description="every user's stale credentials, oldest first")


class Resolved(Answer):
    provider: str
    credential_name: str
    global_env_var: str = Field(description="the environment variable that would serve as the global fallback")
    resolved: Literal[True]
    source: Literal["user", "global"]
    stale: bool | None = Field(description="for the caller's own credential; null for the global one")


class Unresolved(Answer):
    provider: str
    credential_name: str
    global_env_var: str
    resolved: Literal[False]
    source: None
    detail: str = Field(description="why it does not resolve")
