"""The chain of secrets providers: environment, file, AWS Secrets Manager, Vault, in that order.

A secret is taken from the first provider that holds it; a provider that does not hold it passes the
question on, but a provider that cannot answer (unreachable, access denied, an unreadable file) stops
the lookup with ``SecretProviderError``: a lower-priority provider is never asked instead, so an
outage can never silently swap in another value. ``build_resolver`` makes the chain from the
``secrets:`` settings; a provider that is not configured is left out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from activities.secrets.config import ORDER, SecretsSettings
from activities.secrets.providers.aws import AwsSecretsManagerProvider
from activities.secrets.providers.base import SecretProvider, SecretProviderError, SecretsConfigError, check_name
from activities.secrets.providers.cache import TtlCache
from activities.secrets.providers.env import EnvProvider
from activities.secrets.providers.file import FileProvider, default_path
from activities.secrets.providers.vault import VaultKvProvider


@dataclass(frozen=True)
class Found:
    value: str
    provider: str


@dataclass(frozen=True)
class ProviderState:
    """Whether one provider answers; ``detail`` (where it reads, what failed) is for administrators."""
    name: str
    answers: bool
    detail: str


class SecretResolver:
    def __init__(self, providers: Sequence[SecretProvider], check_ttl_seconds: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.providers = tuple(providers)
        self._checks = TtlCache(check_ttl_seconds, clock)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.providers]

    def lookup(self, name: str) -> Found | None:
        """The value and the provider that holds it; None when none does. SecretProviderError when a
        provider asked before the one holding it cannot answer; ValueError for an unusable name."""
        check_name(name)
        for provider in self.providers:
            value = provider.get(name)
            if value is not None:
                return Found(value, provider.name)
        return None

    def get(self, name: str) -> str | None:
        found = self.lookup(name)
        return found.value if found else None

    def states(self) -> list[ProviderState]:
        """Each provider's answer to its check (a success is remembered for the cache time, so a
        health probe does not call a paid API each time; a failure is asked again)."""
        states = []
        for provider in self.providers:
            try:
                self._checks.get(provider.name, provider.check)
                states.append(ProviderState(provider.name, True, provider.where()))
            except SecretProviderError as exc:
                states.append(ProviderState(provider.name, False, exc.detail))
            except Exception as exc:  # a client library failing in a way it does not document
                states.append(ProviderState(provider.name, False, f"unexpected failure ({type(exc).__name__})"))
        return states


def _aws(config: SecretsSettings, env: Mapping[str, str]) -> AwsSecretsManagerProvider:
    aws = config.aws
    region = aws.region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if not region:
        raise SecretsConfigError("secrets.aws.region: not set (nor SIMPLETUNER_SECRETS_AWS_REGION, AWS_REGION or "
                                 "AWS_DEFAULT_REGION); AWS Secrets Manager needs a region")
    endpoint = aws.endpoint_url or env.get("AWS_ENDPOINT_URL_SECRETS_MANAGER") or env.get("AWS_ENDPOINT_URL")
    return AwsSecretsManagerProvider(region, prefix=aws.prefix, secret_id=aws.secret_id, endpoint_url=endpoint,
                                     timeout_seconds=aws.timeout_seconds, cache=TtlCache(config.cache_ttl_seconds),
                                     env=env)


def _vault(config: SecretsSettings, env: Mapping[str, str]) -> VaultKvProvider:
    vault = config.vault
    url = vault.url or env.get("VAULT_ADDR") or ""
    token = vault.token.get_secret_value() if vault.token else env.get("VAULT_TOKEN")
    if not token:
        raise SecretsConfigError("secrets.vault.token: not set (nor SIMPLETUNER_VAULT_TOKEN or VAULT_TOKEN) while "
                                 "Vault is configured (secrets.vault.url / VAULT_ADDR)")
    return VaultKvProvider(url, token, mount=vault.mount, path_prefix=vault.path_prefix,
                           timeout_seconds=vault.timeout_seconds, cache=TtlCache(config.cache_ttl_seconds))


def _file(config: SecretsSettings, env: Mapping[str, str]) -> FileProvider | None:
    if config.file is not None:
        provider = FileProvider(Path(config.file).expanduser())
    else:
        home = env.get("HOME")
        found = default_path(Path(home) if home else Path.home())
        if found is None:
            return None
        provider = FileProvider(found)
    try:
        provider.check()  # a loose mode or a malformed file stops the start, naming the setting
    except SecretProviderError as exc:
        raise SecretsConfigError(f"secrets.file (SIMPLETUNER_SECRETS_FILE): {exc.reason}") from None
    return provider


def configured(config: SecretsSettings, env: Mapping[str, str]) -> dict[str, bool]:
    """Which providers the settings (and standard variables) configure."""
    home = Path(env.get("HOME") or Path.home())
    return {"env": True, "file": config.file is not None or default_path(home) is not None,
            "aws": bool(config.aws.prefix or config.aws.secret_id),
            "vault": bool(config.vault.url or env.get("VAULT_ADDR"))}


def build_resolver(config: SecretsSettings, env: Mapping[str, str]) -> SecretResolver:
    """The chain for these settings; SecretsConfigError naming the setting when it cannot work."""
    present = configured(config, env)
    # the environment is always asked first: a variable overrides every other provider
    wanted = ["env", *config.providers] if config.providers is not None else [p for p in ORDER if present[p]]
    missing = [p for p in wanted if not present[p]]
    if missing:
        raise SecretsConfigError(f"secrets.providers names {', '.join(missing)}, which is not configured "
                                 "(see the Secrets section of the README for each provider's settings)")
    makers: dict[str, Callable[[], SecretProvider | None]] = {
        "env": lambda: EnvProvider(env), "file": lambda: _file(config, env),
        "aws": lambda: _aws(config, env), "vault": lambda: _vault(config, env)}
    providers = [makers[name]() for name in ORDER if name in wanted]
    return SecretResolver([p for p in providers if p is not None], config.cache_ttl_seconds)
