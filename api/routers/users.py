"""Users, levels and permission overrides (admin.users), plus /me and the level/permission catalogue."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import ConfigDict

from activities.request_body import RequestBody
from activities.errors import Forbidden
from activities.identity import users
from activities.identity.permissions import LEVEL_DESCRIPTIONS, LEVEL_GRANTS, LEVEL_PRIORITY, PERMISSIONS
from activities.identity.account_passwords import WrongCurrentPassword
from activities.identity.users import UserCreate, UserPatch
from api.paging import PageDep
from api.deps import PrincipalDep, SessionDep, UsersAdminDep, client_ip
from api.schemas.users import LevelList, Me, PermissionList, User, UserPage

router = APIRouter(prefix="/api/users", tags=["users"])


class LevelBody(RequestBody):
    model_config = ConfigDict(extra="forbid")
    level_name: str


class OverrideBody(RequestBody):
    model_config = ConfigDict(extra="forbid")
    permission_name: str
    granted: bool


@router.get("", response_model=UserPage)
def list_users(session: SessionDep, _: UsersAdminDep, page: PageDep) -> dict:
    found = users.list_page(session, page)
    return {"users": [users.to_dict(session, u) for u in found.rows], **found.fields()}


@router.post("", status_code=201, response_model=User)
def create_user(body: UserCreate, session: SessionDep, principal: UsersAdminDep, request: Request) -> dict:
    user = users.create(session, body, principal, client_ip(request))
    session.commit()
    return users.to_dict(session, user)


@router.get("/me", response_model=Me)
def me(session: SessionDep, principal: PrincipalDep) -> dict:
    return {**users.to_dict(session, users.get(session, principal.user_id)), "auth_method": principal.via}


@router.get("/meta/levels", response_model=LevelList)
def levels(_: PrincipalDep) -> dict:
    return {"levels": [{"name": name, "priority": prio, "description": LEVEL_DESCRIPTIONS[name],
                        "permissions": sorted(LEVEL_GRANTS[name])} for name, prio in LEVEL_PRIORITY.items()]}


@router.get("/meta/permissions", response_model=PermissionList)
def permissions(_: PrincipalDep) -> dict:
    return {"permissions": [{"name": name, "category": cat, "description": desc}
                            for name, (cat, desc) in PERMISSIONS.items()]}


@router.get("/{user_id}", response_model=User)
def get_user(user_id: str, session: SessionDep, principal: PrincipalDep) -> dict:
    if user_id != principal.user_id and not principal.has("admin.users"):
        raise Forbidden("missing permission 'admin.users'")
    return users.to_dict(session, users.get(session, user_id))


@router.patch("/{user_id}", response_model=User)
def patch_user(user_id: str, body: UserPatch, session: SessionDep, principal: PrincipalDep, request: Request) -> dict:
    """Admins change anyone; a user may change their own email, display name and password (a change of
    one's own password needs ``current_password``). Accounts of an identity provider have no password."""
    if not principal.has("admin.users"):
        if user_id != principal.user_id or body.is_active is not None:
            raise Forbidden("missing permission 'admin.users'")
    try:
        user = users.update(session, user_id, body, principal, client_ip(request))
    except WrongCurrentPassword:
        session.commit()  # the wrong guess counts toward the login rate limit and is audited
        raise
    session.commit()
    return users.to_dict(session, user)


@router.delete("/{user_id}", status_code=204)
def delete_user(user_id: str, session: SessionDep, principal: UsersAdminDep, request: Request) -> Response:
    users.delete(session, user_id, principal, client_ip(request))
    session.commit()
    return Response(status_code=204)


@router.post("/{user_id}/activate", response_model=User)
def activate(user_id: str, session: SessionDep, principal: UsersAdminDep, request: Request) -> dict:
    user = users.set_active(session, user_id, True, principal, client_ip(request))
    session.commit()
    return users.to_dict(session, user)


@router.post("/{user_id}/deactivate", response_model=User)
def deactivate(user_id: str, session: SessionDep, principal: UsersAdminDep, request: Request) -> dict:
    user = users.set_active(session, user_id, False, principal, client_ip(request))
    session.commit()
    return users.to_dict(session, user)


@router.post("/{user_id}/levels", response_model=User)
def add_level(user_id: str, body: LevelBody, session: SessionDep, principal: UsersAdminDep, request: Request) -> dict:
    user = users.add_level(session, user_id, body.level_name, principal, client_ip(request))
    session.commit()
    return users.to_dict(session, user)


@router.delete("/{user_id}/levels/{level_name}", response_model=User)
def remove_level(user_id: str, level_name: str, session: SessionDep, principal: UsersAdminDep,
                 request: Request) -> dict:
    user = users.remove_level(session, user_id, level_name, principal, client_ip(request))
    session.commit()
    return users.to_dict(session, user)


@router.post("/{user_id}/permissions", response_model=User)
def set_permission(user_id: str, body: OverrideBody, session: SessionDep, principal: UsersAdminDep,
                   request: Request) -> dict:
    users.set_override(session, user_id, body.permission_name, body.granted, principal, client_ip(request))
    session.commit()
    return users.to_dict(session, users.get(session, user_id))


@router.delete("/{user_id}/permissions/{permission_name}", response_model=User)
def remove_permission(user_id: str, permission_name: str, session: SessionDep, principal: UsersAdminDep,
                      request: Request) -> dict:
    users.remove_override(session, user_id, permission_name, principal, client_ip(request))
    session.commit()
    return users.to_dict(session, users.get(session, user_id))
