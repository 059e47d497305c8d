"""What an external identity provider (LDAP, OIDC) tells us about a user who proved who they are."""

from __future__ import annotations

from dataclasses import dataclass, field

from activities.errors import DomainError

LEVELS: tuple[str, ...] = ("viewer", "researcher", "lead", "admin")


class ExternalAuthError(DomainError):
    """Base of provider errors; ``detail`` is safe to show to the caller, ``status_code`` is the
    HTTP answer the API's single error handler gives."""

    status_code = 401


class InvalidCredentials(ExternalAuthError):
    status_code = 401


class NotMapped(ExternalAuthError):
    """Authenticated, but none of the user's groups/roles maps to a level."""
    status_code = 403


class ProviderUnavailable(ExternalAuthError):
    status_code = 503


class ProviderMisconfigured(ExternalAuthError):
    status_code = 422


@dataclass(frozen=True)
class ExternalIdentity:
    provider: str  # the configured provider's name
    subject: str  # stable id at the provider (LDAP DN, OIDC sub)
    username: str
    email: str | None = None
    display_name: str | None = None
    groups: tuple[str, ...] = ()  # groups / roles as the provider names them
    levels: tuple[str, ...] = field(default_factory=tuple)  # mapped levels, a subset of LEVELS
