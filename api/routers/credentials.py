"""Per-user cloud-provider credentials: one's own (any signed-in user) and anyone's (admin.users).

No answer ever carries a credential's value. The encryption key is loaded when the app starts
(this router's lifespan), so a malformed SIMPLETUNER_SECRET_KEY stops the server at once.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request, Response

from activities.secrets import credential_crypto

from activities.secrets import credentials
from activities.secrets.credential_crypto import SecretKeyError
from activities.secrets.providers.base import SecretProviderError
from activities.secrets.credentials import CredentialRef, CredentialValue
from api.deps import PrincipalDep, SessionDep, StateDep, UsersAdminDep, client_ip
from api.schemas.credentials import (Credential, CredentialListing, CredentialSet, Resolved, StaleCheck,
                                    Unresolved)

log = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI):
    """Runs after the app's own lifespan has built ``app.state.core``."""
    core = app.state.core
    try:
        cipher = credential_crypto.load_cipher(core.settings.data_dir, secrets=core.settings.secret_resolver)
    except (SecretKeyError, SecretProviderError) as exc:
        log.critical("cannot start: %s", exc)
        raise
    credential_crypto.install(cipher)
    if cipher.previous_count:
        with core.db.session() as session:
            moved = credentials.reencrypt_all(session, cipher)
            session.commit()
        if moved:
            log.info("re-encrypted %d credential(s) under the current key", moved)
    try:
        yield
    finally:
        credential_crypto.install(None)


router = APIRouter(prefix="/api/users", tags=["credentials"], lifespan=lifespan)
REPLACED = {200: {"model": CredentialSet, "description": "Replaced the value of an existing credential"}}


def _listing(session: SessionDep, user_id: str) -> dict:
    return {"user_id": user_id, "stale_after_days": credentials.STALE_AFTER_DAYS,
            "credentials": credentials.list_for(session, user_id)}


def _set(session: SessionDep, user_id: str, body: CredentialValue, principal, request: Request,
         response: Response) -> dict:
    row, created = credentials.set_value(session, user_id, body, principal, client_ip(request))
    session.commit()
    response.status_code = 201 if created else 200
    return {**credentials.to_dict(row), "created": created}


def _rotate(session: SessionDep, user_id: str, body: CredentialValue, principal, request: Request) -> dict:
    row = credentials.rotate(session, user_id, body, principal, client_ip(request))
    session.commit()
    return credentials.to_dict(row)


def _delete(session: SessionDep, user_id: str, provider: str, credential_name: str, principal,
            request: Request) -> Response:
    credentials.delete(session, user_id, provider, credential_name, principal, client_ip(request))
    session.commit()
    return Response(status_code=204)


# ---- one's own (declared before /{user_id}/... so "me" is never taken for a user id)

@router.get("/me/credentials", response_model=CredentialListing)
def my_credentials(session: SessionDep, principal: PrincipalDep) -> dict:
    return _listing(session, principal.user_id)


@router.post("/me/credentials", status_code=201, response_model=CredentialSet, responses=REPLACED)
def set_my_credential(body: CredentialValue, session: SessionDep, principal: PrincipalDep, request: Request,
                      response: Response) -> dict:
    """Create, or replace the value of, one's own credential (201 created, 200 replaced)."""
    return _set(session, principal.user_id, body, principal, request, response)


@router.post("/me/credentials/rotate", response_model=Credential)
def rotate_my_credential(body: CredentialValue, session: SessionDep, principal: PrincipalDep,
                         request: Request) -> dict:
    return _rotate(session, principal.user_id, body, principal, request)


@router.post("/me/credentials/validate", response_model=Resolved | Unresolved)
def validate_my_credential(body: CredentialRef, session: SessionDep, principal: PrincipalDep, state: StateDep) -> dict:
    """Whether the credential resolves for the caller (own first, then global, through the secrets
    providers) and from which source; 503 when a secrets provider cannot answer."""
    return credentials.validate(session, principal.user_id, body, secrets=state.settings.secret_resolver)


@router.delete("/me/credentials/{provider}/{credential_name}", status_code=204)
def delete_my_credential(provider: str, credential_name: str, session: SessionDep, principal: PrincipalDep,
                         request: Request) -> Response:
    return _delete(session, principal.user_id, provider, credential_name, principal, request)


# ---- administration (admin.users)

@router.post("/credentials/check-stale", response_model=StaleCheck)
def check_stale(session: SessionDep, _: UsersAdminDep) -> dict:
    stale = credentials.check_stale(session)
    return {"stale_after_days": credentials.STALE_AFTER_DAYS, "count": len(stale), "credentials": stale}


@router.get("/{user_id}/credentials", response_model=CredentialListing)
def user_credentials(user_id: str, session: SessionDep, _: UsersAdminDep) -> dict:
    return _listing(session, user_id)


@router.post("/{user_id}/credentials", status_code=201, response_model=CredentialSet, responses=REPLACED)
def set_user_credential(user_id: str, body: CredentialValue, session: SessionDep, principal: UsersAdminDep,
                        request: Request, response: Response) -> dict:
    return _set(session, user_id, body, principal, request, response)


@router.post("/{user_id}/credentials/rotate", response_model=Credential)
def rotate_user_credential(user_id: str, body: CredentialValue, session: SessionDep, principal: UsersAdminDep,
                           request: Request) -> dict:
    return _rotate(session, user_id, body, principal, request)


@router.get("/{user_id}/credentials/stale", response_model=CredentialListing)
def user_stale_credentials(user_id: str, session: SessionDep, _: UsersAdminDep) -> dict:
    return {"user_id": user_id, "stale_after_days": credentials.STALE_AFTER_DAYS,
            "credentials": credentials.stale_for(session, user_id)}


@router.delete("/{user_id}/credentials/{provider}/{credential_name}", status_code=204)
def delete_user_credential(user_id: str, provider: str, credential_name: str, session: SessionDep,
                           principal: UsersAdminDep, request: Request) -> Response:
    return _delete(session, user_id, provider, credential_name, principal, request)
