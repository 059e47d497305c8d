"""What every secrets provider offers, and the errors of the secrets layer. No message ever carries a
secret's value."""

from __future__ import annotations

import re
from typing import Protocol

from activities.errors import Unavailable

NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]{0,254}$")
NAME_RULE = "1-255 letters, digits, '_', '.', '/' or '-', not starting with '.', '/' or '-', no '..'"


class SecretProviderError(Unavailable):
    """A configured provider could not answer (unreachable, denied, unreadable): 503 at request time,
    a start-up error while settings load. Names the provider and the secret, never a value."""

    def __init__(self, provider: str, secret: str | None, reason: str) -> None:
        what = f"cannot read secret {secret}" if secret else "does not answer"
        super().__init__(f"secrets provider {provider} {what}: {reason}")
        self.provider, self.secret, self.reason = provider, secret, reason


class SecretsConfigError(ValueError):
    """The ``secrets:`` settings cannot work (a file with a loose mode, a provider missing a setting);
    the message names the setting."""


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name) or ".." in name:
        raise ValueError(f"{name!r} is not a usable secret name: {NAME_RULE}")
    return name


class SecretProvider(Protocol):
    name: str

    def get(self, secret: str) -> str | None:
        """The value, or None when this provider does not hold ``secret``; SecretProviderError when it
        cannot tell."""
        ...

    def check(self) -> None:
        """Returns when the provider answers (and accepts our credentials); SecretProviderError otherwise."""
        ...

    def where(self) -> str:
        """Where the provider reads from, for administrators (a path or URL, never a credential)."""
        ...
