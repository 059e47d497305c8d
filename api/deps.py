"""FastAPI dependencies: the single place requests are authenticated and given a session."""

from __future__ import annotations

from typing import Annotated, Iterator

from fastapi import Depends, Header, Request
from sqlmodel import Session

from activities.db.models import Worker
from activities.errors import Forbidden, Unauthorized
from activities.services import users, workers
from activities.services.users import Principal
from api.state import AppState


def get_state(request: Request) -> AppState:
    return request.app.state.core


def get_session(state: Annotated[AppState, Depends(get_state)]) -> Iterator[Session]:
    with state.db.session() as session:
        yield session


StateDep = Annotated[AppState, Depends(get_state)]
SessionDep = Annotated[Session, Depends(get_session)]


def current_principal(state: StateDep, authorization: Annotated[str | None, Header()] = None) -> Principal:
    """Bearer API key -> principal. Users, roles and SSO extend this function, not the routes.

    Uses its own short session so no transaction stays open while a route streams or waits."""
    if not authorization:
        raise Unauthorized("missing Authorization: Bearer header")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization header must be 'Bearer <api key>'")
    with state.db.session() as session:
        return users.authenticate_key(session, token.strip())


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def require_admin(principal: PrincipalDep) -> Principal:
    if not principal.is_admin:
        raise Forbidden("this action needs the admin level")
    return principal


AdminDep = Annotated[Principal, Depends(require_admin)]


def current_worker(state: StateDep, x_worker_token: Annotated[str | None, Header()] = None) -> Worker:
    """The agent presenting X-Worker-Token (a detached row: re-read it to change it)."""
    with state.db.session() as session:
        return workers.authenticate(session, x_worker_token)


WorkerDep = Annotated[Worker, Depends(current_worker)]


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None
