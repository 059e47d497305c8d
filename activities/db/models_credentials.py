"""Per-user cloud-provider credentials, stored encrypted (see services.credential_crypto)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from activities.db.models import utcnow


class ProviderCredential(SQLModel, table=True):
    """One secret of one user for one provider, e.g. (u_1, "replicate", "api_token").

    ``ciphertext`` is a Fernet token; the plain value is never stored. ``fingerprint`` holds the
    last 4 characters of values long enough for that not to give the value away (else "")."""
    __table_args__ = (UniqueConstraint("user_id", "provider", "credential_name",
                                       name="uq_providercredential_user_provider_name"),)
    id: str = Field(primary_key=True)
    user_id: str = Field(foreign_key="user.id", ondelete="CASCADE", index=True)
    provider: str = Field(index=True)
    credential_name: str
    ciphertext: str
    fingerprint: str = ""
    created_at: datetime = Field(default_factory=utcnow)
    rotated_at: datetime | None = None
    last_used_at: datetime | None = None
