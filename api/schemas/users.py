"""Answers of the user routes: a user (``activities.identity.users.to_dict``), the list, ``/me``
and the level and permission catalogue."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from api.schemas.base import Answer, NextCursor, Total


class PermissionOverride(Answer):
    permission_name: str
    granted: bool


class User(Answer):
    id: str
    username: str
    email: str | None
    display_name: str | None
    is_active: bool
    level: str | None = Field(description="the highest of the user's levels")
    level_names: list[str]
    permissions: list[str] = Field(description="effective: the levels' grants with the overrides applied")
    permission_overrides: list[PermissionOverride]
    auth_source: str = Field(description="local, ldap:<provider> or oidc:<provider>")
    has_password: bool
    last_login_at: datetime | None
    created_at: datetime
    updated_at: datetime | None


class Me(User):
    auth_method: str = Field(description="how this request was authenticated: api_key, session, bearer_session, bypass "
                                         "or single_user")


class UserPage(Answer):
    users: list[User]
    total: Total
    next_cursor: NextCursor


class Level(Answer):
    name: str
    priority: int
    description: str
    permissions: list[str]


class LevelList(Answer):
    levels: list[Level]


class Permission(Answer):
    name: str
    category: str
    description: str


class PermissionList(Answer):
    permissions: list[Permission]
