"""The ``secrets:`` block of the settings: which secrets providers to consult and how to reach them.

The providers are consulted in a fixed order: environment, file, AWS Secrets Manager, HashiCorp
Vault. Each is used when it is configured (the environment always is); ``providers`` narrows that to
the ones listed (the environment is still asked first). Standard variables of each tool also work: ``AWS_REGION``/``AWS_DEFAULT_REGION``,
``AWS_ENDPOINT_URL_SECRETS_MANAGER``/``AWS_ENDPOINT_URL`` and the usual AWS credential chain;
``VAULT_ADDR`` and ``VAULT_TOKEN`` (read when the block leaves them out, see ``resolver.build_resolver``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

ProviderName = Literal["env", "file", "aws", "vault"]
ORDER: tuple[ProviderName, ...] = ("env", "file", "aws", "vault")


class AwsSecretsSettings(BaseModel):
    """``secrets.aws``: a secret ``NAME`` is the Secrets Manager secret ``<prefix>NAME`` (its text is the
    value), or, with ``secret_id``, the key ``NAME`` of that one secret's JSON object."""
    model_config = ConfigDict(extra="forbid")
    region: str | None = None
    endpoint_url: str | None = Field(None, pattern=r"^https?://")
    prefix: str | None = Field(None, min_length=1, max_length=256)
    secret_id: str | None = Field(None, min_length=1, max_length=2048)
    timeout_seconds: float = Field(5.0, gt=0, le=120)

    @model_validator(mode="after")
    def _one_layout(self) -> "AwsSecretsSettings":
        if self.prefix and self.secret_id:
            raise ValueError("set prefix (one AWS secret per name) or secret_id (one JSON secret), not both")
        return self


class VaultSecretsSettings(BaseModel):
    """``secrets.vault``: a secret ``NAME`` is the field ``value`` of the KV v2 secret
    ``<mount>/<path_prefix>NAME``."""
    model_config = ConfigDict(extra="forbid")
    url: str | None = Field(None, pattern=r"^https?://")
    token: SecretStr | None = None
    mount: str = Field("secret", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
    path_prefix: str = Field("simpletuner/", pattern=r"^([A-Za-z0-9_.-]+/)*$")
    timeout_seconds: float = Field(5.0, gt=0, le=120)


class SecretsSettings(BaseModel):
    """``secrets:`` block (see the module's docstring)."""
    model_config = ConfigDict(extra="forbid")
    providers: list[ProviderName] | None = None  # default: every configured provider
    cache_ttl_seconds: float = Field(60.0, ge=0, le=86400)  # AWS and Vault answers; 0: no caching
    file: Path | None = None  # default: ~/.simpletuner/secrets.json (or .yaml/.yml) when it exists
    aws: AwsSecretsSettings = Field(default_factory=AwsSecretsSettings)
    vault: VaultSecretsSettings = Field(default_factory=VaultSecretsSettings)

    @field_validator("providers", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):  # SIMPLETUNER_SECRETS_PROVIDERS=env,file,vault
            return [item.strip() for item in value.split(",") if item.strip()]
        return value


# Env var -> dotted settings key (merged into activities.settings.ENV_KEYS).
SECRETS_ENV_KEYS: dict[str, str] = {
    "SIMPLETUNER_SECRETS_PROVIDERS": "secrets.providers",
    "SIMPLETUNER_SECRETS_CACHE_TTL_SECONDS": "secrets.cache_ttl_seconds",
    "SIMPLETUNER_SECRETS_FILE": "secrets.file",
    "SIMPLETUNER_SECRETS_AWS_REGION": "secrets.aws.region",
    "SIMPLETUNER_SECRETS_AWS_ENDPOINT_URL": "secrets.aws.endpoint_url",
    "SIMPLETUNER_SECRETS_AWS_PREFIX": "secrets.aws.prefix",
    "SIMPLETUNER_SECRETS_AWS_SECRET_ID": "secrets.aws.secret_id",
    "SIMPLETUNER_VAULT_ADDR": "secrets.vault.url",
    "SIMPLETUNER_VAULT_TOKEN": "secrets.vault.token",
    "SIMPLETUNER_VAULT_MOUNT": "secrets.vault.mount",
    "SIMPLETUNER_VAULT_PATH_PREFIX": "secrets.vault.path_prefix",
}
