"""Secrets the platform reads under a documented name, through the providers (environment first).

Settings that hold a secret are looked up by name when the config file leaves them out (a value the
file gives, literally or as ``${secret:NAME}``, is used as given). Other reads by name:
``SIMPLETUNER_SECRET_KEY`` and ``SIMPLETUNER_SECRET_KEY_PREVIOUS`` (``credential_crypto.load_cipher``)
and the global provider credentials ``SIMPLETUNER_<PROVIDER>_<NAME>`` (``credentials.resolve``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from activities.secrets.providers.base import SecretProviderError
from activities.secrets.resolver import SecretResolver


@dataclass(frozen=True)
class NamedSetting:
    key: str  # dotted settings key
    secret: str  # the secret's name
    needs: str | None = None  # looked up only when this key holds a value (the block is in use)


NAMED_SETTINGS: tuple[NamedSetting, ...] = (
    NamedSetting("admin_token", "SIMPLETUNER_ADMIN_TOKEN"),
    NamedSetting("temporal.api_key", "SIMPLETUNER_TEMPORAL_API_KEY"),
    NamedSetting("notifications.email.smtp_password", "SIMPLETUNER_SMTP_PASSWORD",
                 needs="notifications.email.smtp_username"),
    NamedSetting("notifications.email.imap_password", "SIMPLETUNER_IMAP_PASSWORD",
                 needs="notifications.email.imap_host"),
    NamedSetting("oidc.client_secret", "SIMPLETUNER_OIDC_CLIENT_SECRET", needs="oidc.client_id"),
)


def _get(data: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)  # type: ignore[assignment]
    return data


def _put(data: dict[str, Any], dotted: str, value: str) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        data = data.setdefault(part, {})
    data[leaf] = value


def fill(data: dict[str, Any], resolver: SecretResolver) -> list[str]:
    """Set each named setting ``data`` leaves empty from its secret, where one is found; returns the
    keys set. SecretProviderError (naming provider and secret) when a provider cannot answer."""
    filled = []
    for named in NAMED_SETTINGS:
        if _get(data, named.key) not in (None, "") or (named.needs and _get(data, named.needs) in (None, "")):
            continue
        try:
            value = resolver.get(named.secret)
        except SecretProviderError as exc:
            exc.setting = named.key  # type: ignore[attr-defined]
            raise
        if value is not None:
            _put(data, named.key, value)
            filled.append(named.key)
    return filled
