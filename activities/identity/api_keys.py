"""Personal API keys: shown once at creation, stored as SHA-256, optional expiry, revocable.

A sealed copy (``s3_secret_sealed``, the credential cipher) is kept too: the key doubles as the secret
access key of S3 requests to the storage endpoint, whose signatures can only be checked with the secret
itself (``activities/storage/credentials.py``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import ConfigDict, Field
from sqlmodel import Session, select

from activities.request_body import RequestBody
from activities.db.models import ApiKey, utcnow
from activities.errors import NotFound
from activities.audit.trail import audit
from activities.identity.principals import Principal, ensure_may_hold_credentials
from activities.secrets.tokens import hash_token, new_id, new_token
from activities.storage.credentials import seal_api_key


class KeyCreate(RequestBody):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    expires_in_days: int | None = Field(None, ge=1, le=3650)


def to_dict(key: ApiKey) -> dict[str, Any]:
    return {"id": key.id, "name": key.name, "prefix": key.prefix, "created_at": key.created_at,
            "expires_at": key.expires_at, "revoked_at": key.revoked_at,
            "active": key.revoked_at is None and (key.expires_at is None or key.expires_at > utcnow())}


def list_for(session: Session, user_id: str) -> list[ApiKey]:
    return list(session.exec(select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.created_at)))


def create(session: Session, principal: Principal, body: KeyCreate, ip: str | None) -> tuple[ApiKey, str]:
    ensure_may_hold_credentials(principal)
    token = new_token("st")
    expires: datetime | None = utcnow() + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    key = ApiKey(id=new_id("k"), user_id=principal.user_id, name=body.name, key_hash=hash_token(token),
                 prefix=token[:8], expires_at=expires, s3_secret_sealed=seal_api_key(token))
    session.add(key)
    audit(session, principal.username, "api_key.created", "api_key", key.id, {"name": body.name}, ip=ip)
    return key, token


def revoke(session: Session, principal: Principal, key_id: str, ip: str | None) -> None:
    key = session.get(ApiKey, key_id)
    if key is None or (key.user_id != principal.user_id and not principal.has("admin.users")):
        raise NotFound(f"API key {key_id!r} not found")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.add(key)
    audit(session, principal.username, "api_key.revoked", "api_key", key.id, {"owner": key.user_id}, ip=ip)
