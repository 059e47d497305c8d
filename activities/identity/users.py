"""User accounts: bootstrap admin, CRUD, levels and permission overrides (each change audited)."""

from __future__ import annotations

import logging
import re
from typing import Any

from pydantic import ConfigDict, Field, field_validator
from sqlmodel import Session, col, select

from activities.request_body import RequestBody
from activities.paging import Page, PageRequest, keyset
from activities.db.models import ApiKey, AuthSession, PermissionOverride, User, UserLevel, utcnow
from activities.errors import Conflict, InvalidInput, NotFound
from activities.identity import account_passwords, logins
from activities.audit.trail import audit
from activities.identity import org_members
from activities.identity.permissions import LEVEL_PRIORITY, PERMISSIONS, effective_permissions, highest_level
from activities.identity.principals import Principal, levels_of, overrides_of
from activities.secrets.tokens import new_id

log = logging.getLogger(__name__)
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{1,63}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _level(name: str) -> str:
    if name not in LEVEL_PRIORITY:
        raise ValueError(f"unknown level {name!r}; one of {', '.join(LEVEL_PRIORITY)}")
    return name


class UserCreate(RequestBody):
    model_config = ConfigDict(extra="forbid")
    username: str
    email: str | None = None
    password: str | None = None
    display_name: str | None = Field(None, max_length=200)
    level_names: list[str] = Field(default_factory=lambda: ["researcher"], min_length=1)
    is_active: bool = True

    @field_validator("username")
    @classmethod
    def _username(cls, v: str) -> str:
        if not USERNAME_RE.match(v):
            raise ValueError("use 2-64 letters, digits, '.', '_', '@' or '-'")
        return v

    @field_validator("email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        if v is not None and not EMAIL_RE.match(v):
            raise ValueError("not an email address")
        return v.lower() if v else v

    @field_validator("level_names")
    @classmethod
    def _levels(cls, v: list[str]) -> list[str]:
        return sorted({_level(x) for x in v})


class UserPatch(RequestBody):
    model_config = ConfigDict(extra="forbid")
    email: str | None = None
    display_name: str | None = Field(None, max_length=200)
    password: str | None = None
    current_password: str | None = Field(None, max_length=1024)  # needed to change one's own password
    is_active: bool | None = None

    _email = field_validator("email")(UserCreate._email.__func__)  # type: ignore[attr-defined]


def to_dict(session: Session, user: User) -> dict[str, Any]:
    levels = levels_of(session, user.id)
    overrides = overrides_of(session, user.id)
    return {"id": user.id, "username": user.username, "email": user.email, "display_name": user.display_name,
            "is_active": user.is_active, "level": highest_level(levels), "level_names": list(levels),
            "permissions": sorted(effective_permissions(levels, overrides)),
            "permission_overrides": [{"permission_name": k, "granted": v} for k, v in sorted(overrides.items())],
            "auth_source": user.auth_source,
            "has_password": account_passwords.is_local(user.auth_source) and user.password_hash is not None,
            "last_login_at": user.last_login_at, "created_at": user.created_at, "updated_at": user.updated_at}


def find(session: Session, user_id: str) -> User | None:
    return session.get(User, user_id)


def get(session: Session, user_id: str) -> User:
    user = find(session, user_id)
    if user is None:
        raise NotFound(f"user {user_id!r} not found")
    return user


def list_all(session: Session) -> list[User]:
    return list(session.exec(select(User).order_by(User.username)))


def list_page(session: Session, page: PageRequest) -> Page[User]:
    """Users by username, a page at a time."""
    return keyset(session, select(User), [(col(User.username), False)], page)


def _check_unique(session: Session, username: str | None, email: str | None, except_id: str | None = None) -> None:
    if username and session.exec(select(User).where(User.username == username, User.id != except_id)).first():
        raise Conflict(f"username {username!r} is taken")
    if email and session.exec(select(User).where(User.email == email, User.id != except_id)).first():
        raise Conflict(f"email {email!r} is already used by another account")


def set_levels(session: Session, user: User, levels: list[str]) -> None:
    for row in session.exec(select(UserLevel).where(UserLevel.user_id == user.id)):
        session.delete(row)
    session.flush()
    for level in levels:
        session.add(UserLevel(user_id=user.id, level=level))
    user.level = highest_level(levels) or "viewer"
    session.add(user)


def create(session: Session, body: UserCreate, actor: Principal | str, ip: str | None = None,
           auth_source: str = "local", external_subject: str | None = None) -> User:
    _check_unique(session, body.username, body.email)
    if body.password is not None:
        password_hash = account_passwords.check_new(body.username, auth_source, body.password)
    elif account_passwords.is_local(auth_source):
        raise InvalidInput("password: required for a local account")
    else:
        password_hash = None
    user = User(id=new_id("u"), username=body.username, email=body.email, display_name=body.display_name,
                is_active=body.is_active, auth_source=auth_source, external_subject=external_subject,
                password_hash=password_hash)
    session.add(user)
    session.flush()
    set_levels(session, user, body.level_names)
    audit(session, _name(actor), "user.created", "user", user.id,
          {"username": user.username, "levels": body.level_names, "source": auth_source}, ip=ip)
    return user


def update(session: Session, user_id: str, patch: UserPatch, actor: Principal, ip: str | None = None) -> User:
    """A password change is checked first: a wrong current password (one's own change) raises
    ``WrongCurrentPassword`` before anything is changed, leaving only its failure record in the session."""
    user = get(session, user_id)
    changes = patch.model_dump(exclude_unset=True)
    current = changes.pop("current_password", None)
    new_hash = None
    if changes.get("password") is not None:
        new_hash = account_passwords.check_change(session, user, changes["password"], current, actor.user_id, ip)
    if "email" in changes:
        _check_unique(session, None, changes["email"], except_id=user.id)
        user.email = changes["email"]
    if "display_name" in changes:
        user.display_name = changes["display_name"]
    if new_hash is not None:
        account_passwords.apply(session, user, new_hash)
    if changes.get("is_active") is not None:
        _set_active(session, user, changes["is_active"], actor)
    user.updated_at = utcnow()
    session.add(user)
    audit(session, actor.username, "user.updated", "user", user.id,
          {"fields": sorted(k for k in changes if k != "password") + (["password"] if "password" in changes else [])},
          ip=ip)
    return user


def _active_admins(session: Session) -> list[str]:
    rows = session.exec(select(User.id).join(UserLevel, col(UserLevel.user_id) == col(User.id))
                        .where(UserLevel.level == "admin", User.is_active == True))  # noqa: E712
    return list(rows)


def _guard_last_admin(session: Session, user: User, what: str) -> None:
    if _active_admins(session) == [user.id]:
        raise Conflict(f"cannot {what}: {user.username} is the last active admin")


def _set_active(session: Session, user: User, active: bool, actor: Principal) -> None:
    if not active:
        if user.id == actor.user_id:
            raise Conflict("you cannot deactivate your own account")
        _guard_last_admin(session, user, "deactivate")
        logins.revoke_sessions(session, user.id)
    user.is_active = active


def set_active(session: Session, user_id: str, active: bool, actor: Principal, ip: str | None = None) -> User:
    user = get(session, user_id)
    _set_active(session, user, active, actor)
    user.updated_at = utcnow()
    session.add(user)
    audit(session, actor.username, "user.activated" if active else "user.deactivated", "user", user.id, ip=ip)
    return user


def delete(session: Session, user_id: str, actor: Principal, ip: str | None = None) -> None:
    user = get(session, user_id)
    if user.id == actor.user_id:
        raise Conflict("you cannot delete your own account")
    _guard_last_admin(session, user, "delete")
    for model in (UserLevel, PermissionOverride, ApiKey, AuthSession):
        for row in session.exec(select(model).where(model.user_id == user.id)):
            session.delete(row)
    org_members.forget_user(session, user.id)
    session.delete(user)
    audit(session, actor.username, "user.deleted", "user", user_id, {"username": user.username}, ip=ip)


def add_level(session: Session, user_id: str, level: str, actor: Principal, ip: str | None = None) -> User:
    user = get(session, user_id)
    try:
        _level(level)
    except ValueError as exc:
        raise InvalidInput(f"level_name: {exc}") from None
    levels = sorted(set(levels_of(session, user.id)) | {level})
    set_levels(session, user, levels)
    audit(session, actor.username, "user.level_added", "user", user.id, {"level": level}, ip=ip)
    return user


def remove_level(session: Session, user_id: str, level: str, actor: Principal, ip: str | None = None) -> User:
    user = get(session, user_id)
    current = set(levels_of(session, user.id))
    if level not in current:
        raise NotFound(f"user {user.username} does not have level {level!r}")
    if current == {level}:
        raise Conflict(f"cannot remove {level!r}: a user keeps at least one level")
    if level == "admin":
        _guard_last_admin(session, user, "remove the admin level")
    set_levels(session, user, sorted(current - {level}))
    audit(session, actor.username, "user.level_removed", "user", user.id, {"level": level}, ip=ip)
    return user


def set_override(session: Session, user_id: str, permission: str, granted: bool, actor: Principal,
                 ip: str | None = None) -> None:
    user = get(session, user_id)
    if permission not in PERMISSIONS:
        raise InvalidInput(f"permission_name: unknown permission {permission!r}")
    if user.id == actor.user_id and permission == "admin.users" and not granted:
        raise Conflict("you cannot revoke admin.users from yourself")
    session.merge(PermissionOverride(user_id=user.id, permission=permission, granted=granted))
    audit(session, actor.username, "user.permission_granted" if granted else "user.permission_denied", "user",
          user.id, {"permission": permission}, ip=ip)


def remove_override(session: Session, user_id: str, permission: str, actor: Principal, ip: str | None = None) -> None:
    user = get(session, user_id)
    row = session.get(PermissionOverride, (user.id, permission))
    if row is None:
        raise NotFound(f"user {user.username} has no override for {permission!r}")
    session.delete(row)
    audit(session, actor.username, "user.permission_override_removed", "user", user.id, {"permission": permission},
          ip=ip)


def _name(actor: Principal | str) -> str:
    return actor if isinstance(actor, str) else actor.username
