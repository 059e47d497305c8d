"""Per-user provider credentials: set, rotate, delete, list (never the value), resolution with a
global fallback from the environment, and stale detection. Each change is audited in the
caller's transaction; neither the value nor any part of it reaches the audit log or a log line."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pydantic import ConfigDict, field_validator
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from activities.request_body import RequestBody
from activities.db.models import User, as_utc, utcnow
from activities.db.models_credentials import ProviderCredential
from activities.errors import Conflict, InvalidInput, NotFound, Unavailable
from activities.secrets import credential_crypto
from activities.audit.trail import audit
from activities.secrets.credential_crypto import CredentialCipher, UndecryptableError
from activities.secrets.named import NAMED_SETTINGS
from activities.secrets.providers.base import SecretProviderError
from activities.identity.principals import Principal
from activities.secrets.tokens import new_id
from activities.identity.users import get as get_user
from activities.settings import ENV_KEYS

log = logging.getLogger(__name__)

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
SLUG_RULE = "use 1-64 lowercase letters, digits, '_' or '-', starting with a letter or digit"
MAX_VALUE_CHARS = 4096
STALE_AFTER_DAYS = 90
FINGERPRINT_MIN_LENGTH = 12  # shorter values get no fingerprint: 4 characters would be too much of them
GLOBAL_PREFIX = "SIMPLETUNER_"
# SIMPLETUNER_<PROVIDER>_* variables and secrets that configure the control plane itself (the encryption
# key, worker tokens, the SMTP password, ...): never handed out as a global credential.
RESERVED_PROVIDERS = frozenset({name.split("_")[1].lower() for name in ENV_KEYS} | {
    named.secret.split("_")[1].lower() for named in NAMED_SETTINGS} | {
    "secret", "enterprise", "ssl", "e2e", "worker", "orchestrator", "output", "progress", "attempt", "record",
    "config", "job"})


def _slug(field: str, value: str) -> str:
    if not isinstance(value, str) or not SLUG_RE.match(value):
        raise InvalidInput(f"{field}: {SLUG_RULE}")
    return value


class CredentialRef(RequestBody):
    model_config = ConfigDict(extra="forbid")
    provider: str
    credential_name: str

    @field_validator("provider", "credential_name")
    @classmethod
    def _slugs(cls, v: str) -> str:
        if not SLUG_RE.match(v):
            raise ValueError(SLUG_RULE)
        return v


class CredentialValue(CredentialRef):
    value: str

    @field_validator("value")
    @classmethod
    def _value(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("must not be empty")
        if len(v) > MAX_VALUE_CHARS:
            raise ValueError(f"at most {MAX_VALUE_CHARS} characters (got {len(v)})")
        return v


def global_env_name(provider: str, credential_name: str) -> str:
    """``SIMPLETUNER_<PROVIDER>_<CREDENTIAL_NAME>``, uppercased, '-' as '_'."""
    return f"{GLOBAL_PREFIX}{provider}_{credential_name}".upper().replace("-", "_")


def _fingerprint(value: str) -> str:
    return value[-4:] if len(value) >= FINGERPRINT_MIN_LENGTH else ""


def _cipher(cipher: CredentialCipher | None) -> CredentialCipher:
    return cipher or credential_crypto.current()


def _find(session: Session, user_id: str, provider: str, credential_name: str) -> ProviderCredential | None:
    return session.exec(select(ProviderCredential).where(
        ProviderCredential.user_id == user_id, ProviderCredential.provider == provider,
        ProviderCredential.credential_name == credential_name)).first()


def _require(session: Session, user_id: str, provider: str, credential_name: str) -> ProviderCredential:
    _slug("provider", provider)
    _slug("credential_name", credential_name)
    get_user(session, user_id)
    row = _find(session, user_id, provider, credential_name)
    if row is None:
        raise NotFound(f"no credential {provider}/{credential_name} for user {user_id!r}")
    return row


def to_dict(row: ProviderCredential, now: datetime | None = None) -> dict[str, Any]:
    """Everything about a credential except its value."""
    since = as_utc(row.rotated_at or row.created_at)
    age = (now or utcnow()) - since
    return {"id": row.id, "user_id": row.user_id, "provider": row.provider, "credential_name": row.credential_name,
            "fingerprint": row.fingerprint, "created_at": row.created_at, "rotated_at": row.rotated_at,
            "last_used_at": row.last_used_at, "age_days": max(0, age.days),
            "stale": age > timedelta(days=STALE_AFTER_DAYS)}


def _audit(session: Session, actor: Principal | str, action: str, row: ProviderCredential, ip: str | None,
           **extra: Any) -> None:
    name = actor.username if isinstance(actor, Principal) else str(actor)
    audit(session, name, action, "user", row.user_id,
          {"provider": row.provider, "credential_name": row.credential_name, **extra}, ip=ip)


def set_value(session: Session, user_id: str, body: CredentialValue, actor: Principal | str,
              ip: str | None = None, cipher: CredentialCipher | None = None) -> tuple[ProviderCredential, bool]:
    """Create the credential, or replace its value (which counts as a rotation). Returns (row, created)."""
    get_user(session, user_id)
    ciphertext = _cipher(cipher).encrypt(body.value)
    row = _find(session, user_id, body.provider, body.credential_name)
    created = row is None
    if row is None:
        row = ProviderCredential(id=new_id("cred"), user_id=user_id, provider=body.provider,
                                 credential_name=body.credential_name, ciphertext=ciphertext,
                                 fingerprint=_fingerprint(body.value))
    else:
        row.ciphertext, row.fingerprint, row.rotated_at = ciphertext, _fingerprint(body.value), utcnow()
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict(f"credential {body.provider}/{body.credential_name} was set concurrently; retry") from None
    _audit(session, actor, "credential.created" if created else "credential.replaced", row, ip)
    return row, created


def rotate(session: Session, user_id: str, body: CredentialValue, actor: Principal | str,
           ip: str | None = None, cipher: CredentialCipher | None = None) -> ProviderCredential:
    """A new value for an existing credential; the age restarts from now."""
    cipher = _cipher(cipher)
    row = _require(session, user_id, body.provider, body.credential_name)
    try:
        unchanged = cipher.decrypt(row.ciphertext) == body.value
    except UndecryptableError:
        unchanged = False  # the old value is lost (key gone): rotating is exactly the way out
    if unchanged:
        raise InvalidInput("value: the new value must differ from the current one")
    row.ciphertext, row.fingerprint, row.rotated_at = cipher.encrypt(body.value), _fingerprint(body.value), utcnow()
    session.add(row)
    _audit(session, actor, "credential.rotated", row, ip)
    return row


def delete(session: Session, user_id: str, provider: str, credential_name: str, actor: Principal | str,
           ip: str | None = None) -> None:
    row = _require(session, user_id, provider, credential_name)
    session.delete(row)
    _audit(session, actor, "credential.deleted", row, ip)


def list_for(session: Session, user_id: str) -> list[dict[str, Any]]:
    get_user(session, user_id)
    rows = session.exec(select(ProviderCredential).where(ProviderCredential.user_id == user_id)
                        .order_by(ProviderCredential.provider, ProviderCredential.credential_name))
    now = utcnow()
    return [to_dict(row, now) for row in rows]


def stale_for(session: Session, user_id: str) -> list[dict[str, Any]]:
    return [c for c in list_for(session, user_id) if c["stale"]]


def check_stale(session: Session) -> list[dict[str, Any]]:
    """Every stale credential of every user, oldest first, with the owner's username."""
    now = utcnow()
    rows = session.exec(select(ProviderCredential, User.username).join(User, User.id == ProviderCredential.user_id))
    stale = [{**to_dict(row, now), "username": username} for row, username in rows]
    stale = sorted((c for c in stale if c["stale"]), key=lambda c: -c["age_days"])
    log.info("stale credential check: %d credential(s) older than %d days", len(stale), STALE_AFTER_DAYS)
    return stale


def global_value(name: str, env: Mapping[str, str] | None, secrets: Any) -> str:
    """The global credential ``name`` from ``env`` when given, else through the secrets providers
    (``secrets``: the settings' ``secret_resolver``; SecretProviderError, a 503, when one cannot answer),
    else from the process environment."""
    if env is None and secrets is not None:
        return (secrets.get(name) or "").strip()
    return (os.environ if env is None else env).get(name, "").strip()


def resolve(session: Session, user_id: str, provider: str, credential_name: str, *,
            cipher: CredentialCipher | None = None, env: Mapping[str, str] | None = None,
            touch: bool = True, secrets: Any = None) -> tuple[str, str]:
    """(value, "user") from the user's own credential, else (value, "global") from the secret
    ``SIMPLETUNER_<PROVIDER>_<CREDENTIAL_NAME>`` (through ``secrets``, the settings' resolver);
    NotFound when neither exists. ``touch`` records the use (``last_used_at``) in the caller's
    transaction."""
    _slug("provider", provider)
    _slug("credential_name", credential_name)
    row = _find(session, user_id, provider, credential_name)
    if row is not None:
        try:
            value = _cipher(cipher).decrypt(row.ciphertext)
        except UndecryptableError:
            log.error("credential %s/%s of user %s cannot be decrypted with the configured key(s)",
                      provider, credential_name, user_id)
            raise Unavailable(f"credential {provider}/{credential_name} cannot be decrypted with the configured "
                              "key; set it again or restore the previous key") from None
        if touch:
            row.last_used_at = utcnow()
            session.add(row)
        return value, "user"
    name = global_env_name(provider, credential_name)
    if provider not in RESERVED_PROVIDERS and name not in ENV_KEYS:
        value = global_value(name, env, secrets)
        if value:
            return value, "global"
    raise NotFound(f"no credential {provider}/{credential_name} for user {user_id!r} and no global {name}")


def validate(session: Session, user_id: str, ref: CredentialRef, env: Mapping[str, str] | None = None,
             cipher: CredentialCipher | None = None, secrets: Any = None) -> dict[str, Any]:
    """Whether the credential resolves and from where; never the value. A secrets provider that
    cannot answer is an outage, not an answer about this credential: SecretProviderError (503)."""
    answer: dict[str, Any] = {"provider": ref.provider, "credential_name": ref.credential_name,
                              "global_env_var": global_env_name(ref.provider, ref.credential_name)}
    try:
        _, source = resolve(session, user_id, ref.provider, ref.credential_name, cipher=cipher, env=env, touch=False,
                            secrets=secrets)
    except SecretProviderError:
        raise
    except (NotFound, Unavailable) as exc:
        return {**answer, "resolved": False, "source": None, "detail": exc.detail}
    row = _find(session, user_id, ref.provider, ref.credential_name) if source == "user" else None
    return {**answer, "resolved": True, "source": source, "stale": to_dict(row)["stale"] if row else None}


def reencrypt_all(session: Session, cipher: CredentialCipher | None = None) -> int:
    """Re-encrypt under the current key whatever was stored under a previous one; returns how many."""
    cipher = _cipher(cipher)
    count = 0
    for row in session.exec(select(ProviderCredential)):
        if cipher.is_current(row.ciphertext):
            continue
        try:
            row.ciphertext = cipher.reencrypt(row.ciphertext)
        except UndecryptableError:
            log.warning("credential %s matches no configured key; left as is", row.id)
            continue
        session.add(row)
        count += 1
    return count
