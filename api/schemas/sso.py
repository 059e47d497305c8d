"""Answers of single sign-on: provider administration (``activities.identity.sso.providers.to_dict``),
a provider test, the public provider list and the OIDC steps (the session itself is ``auth.SessionLogin``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from api.schemas.auth import SessionLogin
from api.schemas.base import Answer

ProviderType = Literal["oidc", "ldap"]


class Provider(Answer):
    name: str
    provider_type: ProviderType
    enabled: bool
    config: dict[str, Any] = Field(description="the provider's settings (free-form by type), secrets masked")
    level_mapping: dict[str, list[str]] = Field(description="group (or role, or DN) -> levels granted")
    source: str = Field(description="api, or config_file for the enterprise config file's block")
    created_at: datetime
    updated_at: datetime


class ProviderList(Answer):
    providers: list[Provider]


class LdapTest(Answer):
    name: str
    provider_type: Literal["ldap"]
    ok: Literal[True]
    message: str


class OidcTest(Answer):
    name: str
    provider_type: Literal["oidc"]
    ok: Literal[True]
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str | None
    jwks_keys: int = Field(description="keys the provider's JWKS holds")
    pkce_s256: bool
    unsupported_scopes: list[str] = Field(description="configured scopes the provider does not list")


class PublicProvider(Answer):
    name: str
    provider_type: ProviderType


class PublicProviderList(Answer):
    providers: list[PublicProvider] = Field(description="the enabled providers")


class OidcStart(Answer):
    authorization_url: str = Field(description="where to send the browser")
    expires_in: int = Field(description="seconds the login may take")


class OidcLogin(SessionLogin):
    return_to: str | None = Field(description="the path the login was started for")
