"""Single sign-on: external providers (CRUD, config-file import) and account provisioning.

Provider settings are validated by ``LdapConfig`` / ``OidcConfig``; secrets (``client_secret``,
``bind_password``) are stored encrypted (``provider_secrets``), never shown (``MASK``), and a PATCH
that omits them keeps them. OAuth state (between /start and /callback) is kept by ``oauth_state``.
Accounts: found by (auth_source, external_subject), else by username when that account already
belongs to the same provider (see ``provision``); a local account is never taken over; levels and
profile follow the provider at every login.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from activities.request_body import RequestBody
from activities.db.models import User, utcnow
from activities.db.models_sso import ExternalAuthProvider, OAuthState
from activities.errors import Conflict, InvalidInput, NotFound, Unauthorized
from activities.identity.sso import oidc_auth, provider_secrets
from activities.identity import users
from activities.audit.trail import audit
from activities.identity.external_identity import ExternalIdentity
from activities.identity.sso.ldap_auth import LdapConfig
from activities.identity.sso.oidc_auth import OidcConfig
from activities.identity.principals import Principal, levels_of
from activities.identity.sso.provider_secrets import MASK, SECRET_KEYS
from activities.secrets.credential_crypto import CredentialCipher

log = logging.getLogger(__name__)
CONFIG_MODELS: dict[str, type[BaseModel]] = {"oidc": OidcConfig, "ldap": LdapConfig}
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
FILE_ACTOR = "system:config_file"


class ProviderCreate(RequestBody):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME_PATTERN)
    provider_type: Literal["oidc", "ldap"]
    enabled: bool = True
    config: dict[str, Any]
    level_mapping: dict[str, list[str]] = Field(default_factory=dict)


class ProviderPatch(RequestBody):
    model_config = ConfigDict(extra="forbid")
    enabled: bool | None = None
    config: dict[str, Any] | None = None  # merged into the stored config; a null value removes the key
    level_mapping: dict[str, list[str]] | None = None  # replaces the stored mapping


# ---- provider settings ---------------------------------------------------------------------------

def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        where = ".".join(loc if loc[:1] == ["level_mapping"] else ["config", *loc])
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def _split(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(config without ``level_mapping``, the ``level_mapping`` it carried, if any)."""
    config = dict(config)
    inner = config.pop("level_mapping", None)
    if inner is not None and not isinstance(inner, dict):
        raise InvalidInput("config.level_mapping: must be an object of group -> list of levels")
    return config, inner


def runtime_config(provider_type: str, config: dict[str, Any], level_mapping: dict[str, Any]) -> Any:
    """The validated ``LdapConfig`` / ``OidcConfig``; InvalidInput (422) naming the field otherwise."""
    model = CONFIG_MODELS.get(provider_type)
    if model is None:
        raise InvalidInput(f"provider_type: must be 'oidc' or 'ldap', got {provider_type!r}")
    try:
        return model.model_validate({**config, "level_mapping": level_mapping} if level_mapping else config)
    except ValidationError as exc:
        raise InvalidInput(_describe(exc)) from None


def to_dict(row: ExternalAuthProvider) -> dict[str, Any]:
    config = provider_secrets.masked_config(row)
    return {"name": row.name, "provider_type": row.provider_type, "enabled": row.enabled, "config": config,
            "level_mapping": row.level_mapping, "source": row.source, "created_at": row.created_at,
            "updated_at": row.updated_at}


def get(session: Session, name: str) -> ExternalAuthProvider:
    row = session.get(ExternalAuthProvider, name)
    if row is None:
        raise NotFound(f"external auth provider {name!r} not found")
    return row


def list_all(session: Session) -> list[ExternalAuthProvider]:
    return list(session.exec(select(ExternalAuthProvider).order_by(ExternalAuthProvider.name)))


def usable_config(row: ExternalAuthProvider, cipher: CredentialCipher | None = None) -> Any:
    """The validated config with its secrets decrypted (503 when they cannot be)."""
    return runtime_config(row.provider_type, provider_secrets.reveal(row, cipher), row.level_mapping)


def enabled_provider(session: Session, name: str, provider_type: str) -> tuple[ExternalAuthProvider, Any]:
    """An enabled provider of that type with its validated config (404 when there is none)."""
    row = session.get(ExternalAuthProvider, name)
    if row is None or not row.enabled or row.provider_type != provider_type:
        raise NotFound(f"no enabled {provider_type.upper()} provider named {name!r}")
    return row, usable_config(row)


def create(session: Session, body: ProviderCreate, actor: Principal, ip: str | None) -> ExternalAuthProvider:
    config, inner = _split(body.config)
    mapping = {**(inner or {}), **body.level_mapping}
    for key in SECRET_KEYS:
        if config.get(key) == MASK:
            raise InvalidInput(f"config.{key}: send the secret itself, not the mask {MASK!r}")
    runtime_config(body.provider_type, config, mapping)
    if session.get(ExternalAuthProvider, body.name) is not None:
        raise Conflict(f"external auth provider {body.name!r} already exists")
    public, secrets = provider_secrets.split(config)
    row = ExternalAuthProvider(name=body.name, provider_type=body.provider_type, enabled=body.enabled,
                               config=public, level_mapping=mapping, encrypted_secrets=provider_secrets.seal(secrets),
                               source="api")
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict(f"external auth provider {body.name!r} already exists") from None
    audit(session, actor.username, "external_auth.provider_created", "external_auth_provider", row.name,
          {"provider_type": row.provider_type, "enabled": row.enabled, "config_keys": sorted(config)}, ip=ip)
    return row


def _check_api_managed(row: ExternalAuthProvider) -> None:
    if row.source == "config_file":
        raise Conflict(f"external auth provider {row.name!r} comes from the enterprise config file's oidc: "
                       "block; change it there (the file is read when the API starts)")


def update(session: Session, name: str, patch: ProviderPatch, actor: Principal,
           ip: str | None) -> ExternalAuthProvider:
    row = get(session, name)
    _check_api_managed(row)
    # Stored secrets stand in as MASK for validation: a kept secret is never decrypted here.
    config = provider_secrets.masked_config(row)
    mapping, changed, new_secrets = dict(row.level_mapping), [], {}
    if patch.config is not None:
        incoming, inner = _split(patch.config)
        for key, value in incoming.items():
            if key in SECRET_KEYS and value == MASK:
                continue  # the masked value sent back unchanged: keep the stored secret
            if value is None:
                config.pop(key, None)
            else:
                config[key] = value
                if key in SECRET_KEYS:
                    new_secrets[key] = value
            changed.append(f"config.{key}")
        if inner is not None:
            mapping = inner
            changed.append("level_mapping")
    if patch.level_mapping is not None:
        mapping = dict(patch.level_mapping)
        changed.append("level_mapping")
    runtime_config(row.provider_type, config, mapping)
    if patch.enabled is not None and patch.enabled != row.enabled:
        row.enabled = patch.enabled
        changed.append("enabled")
    row.encrypted_secrets = provider_secrets.patched(row, config, new_secrets)
    row.config, row.level_mapping, row.updated_at = provider_secrets.split(config)[0], mapping, utcnow()
    session.add(row)
    oidc_auth.clear_cache()
    audit(session, actor.username, "external_auth.provider_updated", "external_auth_provider", row.name,
          {"fields": sorted(set(changed)), "enabled": row.enabled}, ip=ip)
    return row


def delete_provider(session: Session, name: str, actor: Principal, ip: str | None) -> None:
    row = get(session, name)
    _check_api_managed(row)
    session.exec(delete(OAuthState).where(OAuthState.provider == name))  # type: ignore[call-overload]
    session.delete(row)
    oidc_auth.clear_cache()
    audit(session, actor.username, "external_auth.provider_deleted", "external_auth_provider", name,
          {"provider_type": row.provider_type}, ip=ip)


def _truthy(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes", "on")


def import_config_file(session: Session, block: dict[str, Any], file: str | None) -> str | None:
    """Make the config file's ``oidc:`` block the provider named by its ``provider`` key (default
    "oidc", source config_file); drop config-file providers the file no longer names. The caller commits.
    An invalid block is logged and skipped so the API still starts."""
    where = f"{file or 'enterprise config'}: oidc"
    block = dict(block or {})
    name = str(block.pop("provider", None) or "oidc")
    enabled = _truthy(block.pop("enabled", True))
    stale = [r for r in session.exec(select(ExternalAuthProvider).where(ExternalAuthProvider.source == "config_file"))
             if not block or r.name != name]
    for row in stale:
        session.delete(row)
        audit(session, FILE_ACTOR, "external_auth.provider_deleted", "external_auth_provider", row.name,
              {"source": "config_file", "file": file})
        log.info("%s: provider %r is no longer in the config file; removed", where, row.name)
    if not block:
        return None
    try:
        if not re.match(NAME_PATTERN, name):
            raise InvalidInput(f"provider: {name!r} is not a usable provider name")
        config, inner = _split(block)
        mapping = inner or {}
        runtime_config("oidc", config, mapping)
    except InvalidInput as exc:
        log.error("%s: %s; SSO provider %r not imported", where, exc.detail, name)
        return None
    row = session.get(ExternalAuthProvider, name)
    if row is not None and row.source != "config_file":
        log.warning("%s: provider %r was created through the API; the config file's block is ignored", where, name)
        return None
    public, secrets = provider_secrets.split(config)
    if row is not None and (row.config, row.level_mapping, row.enabled) == (public, mapping, enabled) \
            and provider_secrets.holds(row, secrets):
        return name
    action = "created" if row is None else "updated"
    row = row or ExternalAuthProvider(name=name, provider_type="oidc", source="config_file")
    row.config, row.level_mapping, row.enabled, row.updated_at = public, mapping, enabled, utcnow()
    row.encrypted_secrets = provider_secrets.seal(secrets)
    session.add(row)
    audit(session, FILE_ACTOR, f"external_auth.provider_{action}", "external_auth_provider", name,
          {"source": "config_file", "file": file, "enabled": enabled, "config_keys": sorted(config)})
    log.info("%s: SSO provider %r %s (enabled=%s)", where, name, action, enabled)
    return name


# ---- accounts ------------------------------------------------------------------------------------

def _usable_email(session: Session, email: str | None, user_id: str | None) -> str | None:
    email = (email or "").strip().lower()
    if not email or not users.EMAIL_RE.match(email):
        return None
    taken = session.exec(select(User.id).where(User.email == email, User.id != user_id)).first()
    if taken is not None:
        log.warning("email %s from the identity provider is already used by account %s; not stored", email, taken)
        return None
    return email


def provision(session: Session, ident: ExternalIdentity, kind: str, ip: str | None) -> User:
    """The account of an external identity: found, linked or created; levels replaced by the mapped ones.

    An account of the same provider found by username is relinked to the new subject for LDAP (a renamed
    or moved DN); for OIDC only when it has no subject yet."""
    source = f"{kind}:{ident.provider}"
    user = session.exec(select(User).where(User.auth_source == source,
                                           User.external_subject == ident.subject)).first()
    if user is None:
        user = session.exec(select(User).where(User.username == ident.username)).first()
        if user is not None and user.auth_source != source:
            how = "a local password" if user.auth_source == "local" else user.auth_source
            raise Conflict(f"an account named {ident.username!r} already exists and signs in with {how}; "
                           f"it is not linked to {source}: an administrator must rename or remove one of them")
        if user is not None and kind == "oidc" and user.external_subject not in (None, ident.subject):
            # an OIDC username (preferred_username, email) is not a unique id: only ``sub`` is
            raise Conflict(f"the account {ident.username!r} belongs to another {source} identity; it is not "
                           "relinked: an administrator must rename or remove it")
    email = _usable_email(session, ident.email, user.id if user else None)
    display = ident.display_name[:200] if ident.display_name else None
    if user is None:
        try:
            body = users.UserCreate(username=ident.username, email=email, display_name=display,
                                    level_names=list(ident.levels))
        except ValidationError:
            raise InvalidInput(f"the identity provider's username {ident.username!r} cannot be used here "
                               "(2-64 letters, digits, '.', '_', '@' or '-')") from None
        return users.create(session, body, source, ip, auth_source=source, external_subject=ident.subject)
    if not user.is_active:
        raise Unauthorized("account disabled")
    user.external_subject = ident.subject
    user.email = email or user.email
    user.display_name = display or user.display_name
    before = levels_of(session, user.id)
    if set(before) != set(ident.levels):
        users.set_levels(session, user, sorted(ident.levels))  # also keeps user.level in step
        audit(session, source, "user.levels_synced", "user", user.id,
              {"from": sorted(before), "to": sorted(ident.levels)}, ip=ip)
    user.updated_at = utcnow()
    session.add(user)
    return user
