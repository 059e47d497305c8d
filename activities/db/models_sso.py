"""Tables of single sign-on: configured external identity providers and pending OAuth logins."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from activities.db.models import utcnow


class ExternalAuthProvider(SQLModel, table=True):
    """An OIDC or LDAP provider. ``config`` holds its settings without the secrets, which are in
    ``encrypted_secrets`` (``client_secret`` / ``bind_password`` -> Fernet token, see
    ``identity/sso/provider_secrets.py``; rows of earlier versions may still carry them in plain text
    in ``config`` until the next start); ``level_mapping`` maps a group / role name or DN to levels."""
    name: str = Field(primary_key=True)
    provider_type: str  # oidc | ldap
    enabled: bool = True
    config: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    level_mapping: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    encrypted_secrets: dict | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    source: str = "api"  # api | config_file (the enterprise config file's ``oidc:`` block)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class OAuthState(SQLModel, table=True):
    """An OIDC login between /start and /callback, shared by every API replica; consumed once.
    The key is the SHA-256 of the ``state`` sent to the provider; ``browser_hash`` the SHA-256 of the
    binding cookie given to the browser that started it (a row without one is never accepted)."""
    state_hash: str = Field(primary_key=True)
    provider: str = Field(index=True)
    redirect_uri: str
    nonce: str
    code_verifier: str
    return_to: str | None = None
    browser_hash: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime = Field(index=True)
