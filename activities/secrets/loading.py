"""The secrets providers while settings load (``activities.settings.load_settings``).

The chain is configured first, from the config file's ``secrets:`` block (``${VAR}`` replaced from
the environment; ``${secret:NAME}`` is refused there, the providers cannot configure themselves) and
the ``SIMPLETUNER_SECRETS_*``/``SIMPLETUNER_VAULT_*`` variables; only then is the rest of the file
read, with ``${secret:NAME}`` answered by that chain. Every problem is a ``ConfigFileError`` naming
the file (or the environment), the key and the secret, never a value.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from activities.secrets.config import SECRETS_ENV_KEYS, SecretsSettings
from activities.secrets.named import fill
from activities.secrets.providers.base import SecretProviderError, SecretsConfigError
from activities.secrets.resolver import SecretResolver, build_resolver
from activities.settings import ConfigFileError, _interpolate, _set_dotted


def resolver_for(raw: dict[str, Any], env: dict[str, str], live_env: Mapping[str, str],
                 file: Path | None) -> SecretResolver:
    """The chain the raw config file's ``secrets:`` block and the environment describe."""
    where = str(file) if file else "environment"
    block = raw.get("secrets") or {}
    if not isinstance(block, dict):
        raise ConfigFileError(f"{where}: secrets: must be a mapping")
    block = _interpolate(block, env, "secrets", file or Path("environment"))
    from_env = {key.removeprefix("secrets."): var for var, key in SECRETS_ENV_KEYS.items() if env.get(var, "") != ""}
    for key, var in from_env.items():
        _set_dotted(block, key, env[var])
    try:
        config = SecretsSettings.model_validate(block)
    except ValidationError as exc:
        raise ConfigFileError("; ".join(_problem(where, e["loc"], e["msg"], from_env) for e in exc.errors())) from None
    try:
        return build_resolver(config, live_env)
    except SecretsConfigError as exc:
        raise ConfigFileError(f"{where}: {exc}") from None


def _problem(where: str, loc: tuple, msg: str, from_env: dict[str, str]) -> str:
    key = ".".join(str(p) for p in loc)
    var = next((v for k, v in from_env.items() if key == k or key.startswith(k + ".")), None)
    return f"{where}: secrets.{key}{f' ({var})' if var else ''}: {msg}"


def secret_reference(name: str, secrets: SecretResolver | None, file: Path, path: str) -> str:
    """The value of ``${secret:NAME}`` at ``path`` of ``file``."""
    if secrets is None:
        raise ConfigFileError(f"{file}: {path}: ${{secret:{name}}} cannot be used in the secrets: block "
                              "(it configures the providers themselves; use ${VAR} there)")
    try:
        value = secrets.get(name)
    except SecretProviderError as exc:
        raise ConfigFileError(f"{file}: {path}: {exc.detail}") from None
    except ValueError as exc:
        raise ConfigFileError(f"{file}: {path}: ${{secret:...}}: {exc}") from None
    if value is None:
        raise ConfigFileError(f"{file}: {path}: secret {name} is not set in any secrets provider "
                              f"({', '.join(secrets.names)})")
    return value


def fill_named(data: dict[str, Any], secrets: SecretResolver, file: Path | None) -> None:
    """Secret settings left empty, from their documented secret names (``named.NAMED_SETTINGS``)."""
    try:
        fill(data, secrets)
    except SecretProviderError as exc:
        setting = getattr(exc, "setting", "")
        raise ConfigFileError(f"{file or 'settings'}: {setting}: {exc.detail}") from None
