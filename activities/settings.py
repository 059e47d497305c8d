"""Settings of the control plane: defaults < enterprise config file < SIMPLETUNER_* env vars."""

from __future__ import annotations

import ipaddress
import json
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (BaseModel, ConfigDict, Field, IPvAnyNetwork, PrivateAttr, ValidationError, field_validator,
                      model_validator)

from activities.outbound_http.settings import OutboundHttpSettings
from activities.ratelimit.config import RateLimitSettings
from activities.secrets.config import SECRETS_ENV_KEYS, SecretsSettings


class ConfigFileError(ValueError):
    """The enterprise config file is unreadable or invalid; the message names file and key."""


NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9._-]{0,199}$"


class TemporalSettings(BaseModel):
    """``temporal:`` block. ``namespace`` is the control namespace (job workflows, approvals, admission,
    the mailbox watcher), which only the API and worker hosts reach; ``gpu_namespace`` is the one GPU
    agents are given; ``nexus_endpoint`` is how job workflows reach it."""
    model_config = ConfigDict(extra="forbid")
    address: str = "127.0.0.1:7233"
    namespace: str = Field("default", pattern=NAME_PATTERN)
    gpu_namespace: str = Field("simpletuner-gpu", pattern=NAME_PATTERN)
    nexus_endpoint: str = Field("simpletuner-gpu-dispatch", pattern=r"^[A-Za-z][A-Za-z0-9-]{0,198}[A-Za-z0-9]$")
    tls: bool = False
    tls_ca_path: str | None = None
    tls_cert_path: str | None = None
    tls_key_path: str | None = None
    api_key: str | None = None  # the control plane's own credential on a secured cluster
    public_address: str | None = None  # what agents on other machines should dial
    # host:port where the worker host serves the Temporal SDK's own Prometheus metrics (off when unset)
    metrics_address: str | None = Field(None, pattern=r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$")

    @model_validator(mode="after")
    def _two_planes(self) -> "TemporalSettings":
        if self.gpu_namespace == self.namespace:
            raise ValueError(f"gpu_namespace must differ from namespace ({self.namespace!r}): GPU agents are given "
                             "the GPU namespace, and must never reach the control namespace")
        return self


class NetworkSettings(BaseModel):
    """``network:`` block. Proxy headers are believed only from ``trusted_proxies`` (and only when
    ``trust_proxy_headers``); ``internal_networks`` may skip login as ``bypass_identity``."""
    model_config = ConfigDict(extra="forbid")
    trust_proxy_headers: bool = False
    trusted_proxies: list[IPvAnyNetwork] = Field(default_factory=list)
    bypass_auth_for_internal: bool = False
    internal_networks: list[IPvAnyNetwork] = Field(default_factory=list)
    bypass_identity: str = Field("internal-service", pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{1,63}$")
    bypass_level: Literal["viewer", "researcher", "lead", "admin"] = "viewer"


BYPASSABLE_PREFIXES = ("/health", "/api/cloud/health", "/api/cloud/metrics", "/api/metrics")


class AuthSettings(BaseModel):
    """``auth:`` block."""
    model_config = ConfigDict(extra="forbid")
    bypass_paths: list[str] = Field(default_factory=list)
    single_user_mode: bool = False  # no login at all; refused unless the API listens on loopback only

    @field_validator("bypass_paths")
    @classmethod
    def _only_health_and_metrics(cls, paths: list[str]) -> list[str]:
        for path in paths:
            if not path.startswith(BYPASSABLE_PREFIXES):
                raise ValueError(f"{path!r}: only health and metrics paths may skip authentication "
                                 f"({', '.join(BYPASSABLE_PREFIXES)})")
        return paths


class EmailSettings(BaseModel):
    """``notifications.email`` block: the e-mail channel (SMTP out, IMAP in for approval replies)."""
    model_config = ConfigDict(extra="forbid")
    smtp_host: str = Field(min_length=1)
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_use_tls: bool = False
    smtp_use_ssl: bool = False
    smtp_username: str | None = None
    smtp_password: str | None = None
    from_address: str = Field(min_length=3)
    imap_host: str | None = None
    imap_port: int = Field(143, ge=1, le=65535)
    imap_use_ssl: bool = False
    imap_username: str | None = None
    imap_password: str | None = None
    imap_folder: str = "INBOX"


class NotificationSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: EmailSettings | None = None


class CostSettings(BaseModel):
    """``cost:`` block: USD per GPU-hour by hardware_type glob, before the built-in table."""
    model_config = ConfigDict(extra="forbid")
    hourly_rates_usd: dict[str, float] = Field(default_factory=dict)


class JobStatusPolling(BaseModel):
    """``background.job_status_polling``: how cloud-provider trainings are polled. ``enabled`` None: on
    when the provider has no ``webhook_url`` (webhooks are then the only fast path; a poll still runs
    every ``interval_seconds`` x 10 as a safety net); true: always every ``interval_seconds``."""
    model_config = ConfigDict(extra="forbid")
    enabled: bool | None = None
    interval_seconds: float = Field(30.0, ge=1, le=86400, allow_inf_nan=False)


class BackgroundSettings(BaseModel):
    """``background:`` block. Other sub-blocks of the guide's file (``queue_processing``, ...) are
    accepted: their work is event-driven here and needs no interval."""
    model_config = ConfigDict(extra="allow")
    job_status_polling: JobStatusPolling = Field(default_factory=JobStatusPolling)


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    data_dir: Path = Path(".data")
    database_url: str | None = None
    temporal: TemporalSettings = Field(default_factory=TemporalSettings)
    host: str = "127.0.0.1"
    port: int = 8001
    admin_token: str | None = None
    config_dir: Path | None = None
    heartbeat_timeout_seconds: float = Field(120.0, gt=0)
    job_max_attempts: int = Field(3, ge=1)
    placement_recheck_seconds: float = Field(15.0, gt=0)
    dispatch_start_timeout_seconds: float = Field(600.0, gt=0)  # an attempt no agent of its pool starts: replaced
    # a long-lived workflow continues as new past this many events (None: when Temporal suggests it)
    workflow_max_history_events: int | None = Field(None, ge=100)
    # a cloud provider's circuit opens after this many consecutive failed calls, for this long
    provider_circuit_failure_threshold: int = Field(5, ge=1, le=1000)
    provider_circuit_cooldown_seconds: float = Field(60.0, gt=0, le=86400)
    max_body_bytes: int = Field(1_048_576, gt=0)
    max_upload_bytes: int = Field(8 * 1024**3, gt=0)
    log_level: str = "INFO"
    log_format: str = "text"
    log_file: str | None = None
    approval_timeout_hours: float = Field(24.0, gt=0)
    approval_token_hours: float = Field(24.0, gt=0)
    public_url: str | None = None  # how people reach the API (links in e-mails)
    storage_dir: Path | None = None  # the S3-compatible endpoint's objects (None: <data_dir>/storage)
    temporal_ui_url: str | None = None  # Temporal Web UI base URL: the console links each job's workflow there
    mail_ca_file: str | None = None  # extra CA trusted for SMTP/IMAP TLS (private mail servers)
    notifications: NotificationSettings = Field(default_factory=NotificationSettings)
    cost: CostSettings = Field(default_factory=CostSettings)
    network: NetworkSettings = Field(default_factory=NetworkSettings)
    outbound_http: OutboundHttpSettings = Field(default_factory=OutboundHttpSettings)  # proxies, CA bundle, timeout
    auth: AuthSettings = Field(default_factory=AuthSettings)
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)  # per-address limits (activities/ratelimit)
    secrets: SecretsSettings = Field(default_factory=SecretsSettings)  # secrets providers (activities/secrets)
    background: BackgroundSettings = Field(default_factory=BackgroundSettings)  # provider polling
    # Blocks owned by later features; accepted here so a file written for them still loads.
    oidc: dict[str, Any] = Field(default_factory=dict)
    config_file: Path | None = None
    _secret_resolver: Any = PrivateAttr(None)  # the providers' chain, built by load_settings

    @property
    def secret_resolver(self) -> Any:
        """The secrets providers' chain (``activities.secrets.resolver.SecretResolver``)."""
        if self._secret_resolver is None:
            from activities.secrets.resolver import build_resolver
            self._secret_resolver = build_resolver(self.secrets, os.environ)
        return self._secret_resolver

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'simpletuner.db').resolve()}"

    @property
    def jobs_dir(self) -> Path:
        return self.data_dir / "jobs"

    @property
    def storage_root(self) -> Path:
        """Where the storage endpoint keeps buckets (``activities/storage``)."""
        return self.storage_dir if self.storage_dir is not None else self.data_dir / "storage"

    @property
    def admin_token_path(self) -> Path:
        return self.data_dir / "admin.token"


# Env var -> dotted settings key.
ENV_KEYS: dict[str, str] = {
    "SIMPLETUNER_DATA_DIR": "data_dir",
    "SIMPLETUNER_DATABASE_URL": "database_url",
    "SIMPLETUNER_TEMPORAL_ADDRESS": "temporal.address",
    "SIMPLETUNER_TEMPORAL_NAMESPACE": "temporal.namespace",
    "SIMPLETUNER_TEMPORAL_GPU_NAMESPACE": "temporal.gpu_namespace",
    "SIMPLETUNER_TEMPORAL_NEXUS_ENDPOINT": "temporal.nexus_endpoint",
    "SIMPLETUNER_TEMPORAL_API_KEY": "temporal.api_key",
    "SIMPLETUNER_TEMPORAL_TLS": "temporal.tls",
    "SIMPLETUNER_TEMPORAL_TLS_CA": "temporal.tls_ca_path",
    "SIMPLETUNER_TEMPORAL_TLS_CERT": "temporal.tls_cert_path",
    "SIMPLETUNER_TEMPORAL_TLS_KEY": "temporal.tls_key_path",
    "SIMPLETUNER_TEMPORAL_PUBLIC_ADDRESS": "temporal.public_address",
    "SIMPLETUNER_TEMPORAL_METRICS_ADDRESS": "temporal.metrics_address",
    "SIMPLETUNER_HOST": "host",
    "SIMPLETUNER_PORT": "port",
    "SIMPLETUNER_ADMIN_TOKEN": "admin_token",
    "SIMPLETUNER_CONFIG_DIR": "config_dir",
    "SIMPLETUNER_HEARTBEAT_TIMEOUT": "heartbeat_timeout_seconds",
    "SIMPLETUNER_JOB_MAX_ATTEMPTS": "job_max_attempts",
    "SIMPLETUNER_PLACEMENT_RECHECK_SECONDS": "placement_recheck_seconds",
    "SIMPLETUNER_DISPATCH_START_TIMEOUT": "dispatch_start_timeout_seconds",
    "SIMPLETUNER_WORKFLOW_MAX_HISTORY_EVENTS": "workflow_max_history_events",
    "SIMPLETUNER_MAX_BODY_BYTES": "max_body_bytes",
    "SIMPLETUNER_MAX_UPLOAD_BYTES": "max_upload_bytes",
    "SIMPLETUNER_LOG_LEVEL": "log_level",
    "SIMPLETUNER_LOG_FORMAT": "log_format",
    "SIMPLETUNER_LOG_FILE": "log_file",
    "SIMPLETUNER_APPROVAL_TIMEOUT_HOURS": "approval_timeout_hours",
    "SIMPLETUNER_APPROVAL_TOKEN_HOURS": "approval_token_hours",
    "SIMPLETUNER_PUBLIC_URL": "public_url",
    "SIMPLETUNER_STORAGE_DIR": "storage_dir",
    "SIMPLETUNER_PROVIDER_CIRCUIT_THRESHOLD": "provider_circuit_failure_threshold",
    "SIMPLETUNER_PROVIDER_CIRCUIT_COOLDOWN": "provider_circuit_cooldown_seconds",
    "SIMPLETUNER_JOB_POLL_INTERVAL": "background.job_status_polling.interval_seconds",
    "SIMPLETUNER_TEMPORAL_UI_URL": "temporal_ui_url",
    "SIMPLETUNER_MAIL_CA_FILE": "mail_ca_file",
    "SIMPLETUNER_RATE_LIMIT_ENABLED": "rate_limit.enabled",
    "SIMPLETUNER_RATE_LIMIT_BACKEND": "rate_limit.backend",
    "SIMPLETUNER_RATE_LIMIT_REDIS_URL": "rate_limit.redis_url",
    "SIMPLETUNER_RATE_LIMIT_DEFAULT_CALLS": "rate_limit.default_calls",
    "SIMPLETUNER_RATE_LIMIT_DEFAULT_PERIOD": "rate_limit.default_period",
    "SIMPLETUNER_RATE_LIMIT_BYPASS_LOOPBACK": "rate_limit.bypass_loopback",
    "SIMPLETUNER_CA_BUNDLE": "outbound_http.ca_bundle",
    "SIMPLETUNER_SSL_VERIFY": "outbound_http.ssl_verify",
    "SIMPLETUNER_SSL_VERIFY_ACKNOWLEDGED": "outbound_http.ssl_verify_acknowledged",
    "SIMPLETUNER_HTTP_TIMEOUT": "outbound_http.timeout_seconds",
    **SECRETS_ENV_KEYS,
}

_VAR = re.compile(r"\$\{(?:secret:([^}]*)|([A-Za-z_][A-Za-z0-9_]*))\}")  # ${secret:NAME} or ${VAR}


def config_file_candidates(env: dict[str, str]) -> list[Path]:
    """The enterprise guide's search order; each place may hold the YAML or the JSON form."""
    explicit = env.get("SIMPLETUNER_ENTERPRISE_CONFIG")
    if explicit:
        return [Path(explicit)]
    home = Path(env.get("HOME", str(Path.home())))
    bases = [Path("simpletuner-enterprise"), home / ".config/simpletuner/enterprise",
             Path("/etc/simpletuner/enterprise")]
    return [base.with_name(base.name + ext) for base in bases for ext in (".yaml", ".yml", ".json")]


def _interpolate(value: Any, env: dict[str, str], path: str, file: Path, secrets: Any = None) -> Any:
    """``${VAR}`` from ``env``; ``${secret:NAME}`` from the secrets providers (``secrets``)."""
    if isinstance(value, dict):
        return {k: _interpolate(v, env, f"{path}.{k}" if path else str(k), file, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, env, f"{path}[{i}]", file, secrets) for i, v in enumerate(value)]
    if isinstance(value, str):
        def sub(match: re.Match[str]) -> str:
            if match.group(1) is not None:
                from activities.secrets.loading import secret_reference
                return secret_reference(match.group(1), secrets, file, path)
            name = match.group(2)
            if name not in env:
                raise ConfigFileError(f"{file}: {path}: environment variable ${{{name}}} is not set")
            return env[name]
        return _VAR.sub(sub, value)
    return value


def read_config_file(path: Path, env: dict[str, str], secrets: Any = None) -> dict[str, Any]:
    return _interpolate(parse_config_file(path), env, "", path, secrets)


def parse_config_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigFileError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigFileError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigFileError(f"{path}: the top level must be a mapping")
    return data


def _set_dotted(target: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        target = target.setdefault(part, {})
    target[leaf] = value


def _describe(error: ValidationError, source: str, env_vars: dict[str, str] | None = None) -> str:
    """One line per error: source, key (and the variable that set it, from ``env_vars``: key -> var)."""
    parts = []
    for item in error.errors():
        key = ".".join(str(p) for p in item["loc"])
        var = (env_vars or {}).get(key)
        parts.append(f"{source}: {key}{f' ({var})' if var else ''}: {item['msg']}")
    return "; ".join(parts)


def load_settings(env: dict[str, str] | None = None, **overrides: Any) -> Settings:
    from activities.secrets import loading

    live_env = os.environ if env is None else env  # what the environment secrets provider reads
    env = dict(live_env)
    data: dict[str, Any] = {}
    config_path = next((p for p in config_file_candidates(env) if p.exists()), None)
    if env.get("SIMPLETUNER_ENTERPRISE_CONFIG") and config_path is None:
        raise ConfigFileError(f"{env['SIMPLETUNER_ENTERPRISE_CONFIG']}: file not found "
                              "(named by SIMPLETUNER_ENTERPRISE_CONFIG)")
    raw = parse_config_file(config_path) if config_path is not None else {}
    resolver = loading.resolver_for(raw, env, live_env, config_path)  # before ${secret:NAME} is read
    if config_path is not None:
        data = _interpolate(raw, env, "", config_path, resolver)
        try:
            Settings.model_validate(data)
        except ValidationError as exc:
            raise ConfigFileError(_describe(exc, str(config_path))) from exc
        data["config_file"] = str(config_path)
    from_env = {key: var for var, key in ENV_KEYS.items() if env.get(var, "") != ""}
    for key, var in from_env.items():
        _set_dotted(data, key, env[var])
    for key, value in overrides.items():
        _set_dotted(data, key, value)
    loading.fill_named(data, resolver, config_path)  # secret settings left empty, by their secret names
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigFileError(_describe(exc, "environment", from_env)) from exc
    settings._secret_resolver = resolver
    _check_single_user_mode(settings)
    return settings


def _check_single_user_mode(settings: Settings) -> None:
    """Single-user mode trusts every loopback caller as the admin: refused where that is not the person
    at the keyboard (a non-loopback bind, or a proxy in front whose requests all come from loopback)."""
    if not settings.auth.single_user_mode:
        return
    where = f"{settings.config_file or 'settings'}: auth.single_user_mode"
    if not is_loopback_host(settings.host):
        raise ConfigFileError(f"{where}: allowed only when the API listens on loopback (host is {settings.host!r})")
    proxy_keys = [key for key, on in (("network.trust_proxy_headers", settings.network.trust_proxy_headers),
                                      ("network.trusted_proxies", bool(settings.network.trusted_proxies))) if on]
    if proxy_keys:
        raise ConfigFileError(f"{where}: cannot be combined with {' and '.join(proxy_keys)}: behind a proxy every "
                              "caller reaches the API from loopback; turn one of them off")


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
