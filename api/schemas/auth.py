"""Answers of sign-in and personal API keys: a browser session (password or SSO), a bearer token,
sign-out and the keys (``activities.identity.api_keys.to_dict``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from api.schemas.base import Answer
from api.schemas.users import User


class SessionLogin(Answer):
    """A browser session: the ``st_session`` cookie is set; writes send ``csrf_token`` in ``csrf_header``."""
    user: User
    csrf_token: str
    csrf_header: str = Field(description="the header name writes carry the token in")
    expires_in: int = Field(description="seconds the session lasts")


class BearerLogin(Answer):
    """``mode: bearer``: no cookie; the client sends ``Authorization: Bearer <access_token>``."""
    user: User
    access_token: str
    token_type: Literal["bearer"]
    expires_in: int = Field(description="seconds the token lasts")


class LoggedOut(Answer):
    logged_out: Literal[True]


class ApiKey(Answer):
    id: str
    name: str
    prefix: str = Field(description="the key's first characters, to recognise it")
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    active: bool


class ApiKeyList(Answer):
    api_keys: list[ApiKey]


class ApiKeyCreated(ApiKey):
    key: str = Field(description="the key itself, shown only in this answer")


class Revoked(Answer):
    revoked: str = Field(description="the key's id")
