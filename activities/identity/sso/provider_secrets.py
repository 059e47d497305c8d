"""Secrets of SSO providers at rest: the OIDC ``client_secret`` and the LDAP ``bind_password``.

They are kept out of ``ExternalAuthProvider.config`` and stored in ``encrypted_secrets``, encrypted
with the credential cipher (``activities.secrets.credential_crypto``) like provider credentials,
and decrypted only when a login or a provider test needs them. Answers show ``MASK`` instead.

Earlier versions kept them in plain text inside ``config``; ``encrypt_plaintext`` moves such rows
over (run at every start of the API and the worker host, idempotent, audited). Until then a
plaintext value still works, so nothing breaks between the upgrade and the next start.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlmodel import Session, select

from activities.audit.trail import audit
from activities.db.models_sso import ExternalAuthProvider
from activities.errors import Unavailable
from activities.secrets import credential_crypto
from activities.secrets.credential_crypto import CredentialCipher, UndecryptableError

log = logging.getLogger(__name__)

SECRET_KEYS = ("client_secret", "bind_password")
MASK = "********"
UPGRADE_ACTOR = "system:upgrade"


def _cipher(cipher: CredentialCipher | None) -> CredentialCipher:
    return cipher or credential_crypto.current()


def split(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the settings without secrets, the secrets) of a provider ``config`` as sent or written in a file."""
    public = {k: v for k, v in config.items() if k not in SECRET_KEYS}
    return public, {k: v for k, v in config.items() if k in SECRET_KEYS}


def seal(secrets: dict[str, Any], cipher: CredentialCipher | None = None) -> dict[str, str]:
    """The secrets encrypted, for ``encrypted_secrets``; empty ones are not stored."""
    cipher = _cipher(cipher)
    return {k: cipher.encrypt(str(v)) for k, v in secrets.items() if v not in (None, "")}


def plaintext_keys(row: ExternalAuthProvider) -> list[str]:
    """Secrets an earlier version left in plain text in ``config``."""
    return sorted(k for k in SECRET_KEYS if k in (row.config or {}))


def stored_keys(row: ExternalAuthProvider) -> set[str]:
    """The secrets the provider has, encrypted or (not yet upgraded) in plain text."""
    sealed = {k for k, v in (row.encrypted_secrets or {}).items() if v}
    return sealed | {k for k in plaintext_keys(row) if row.config[k]}


def masked_config(row: ExternalAuthProvider) -> dict[str, Any]:
    """``config`` as answers show it: every secret the provider has replaced by ``MASK``."""
    public, _ = split(row.config or {})
    return {**public, **{k: MASK for k in sorted(stored_keys(row))}}


def reveal(row: ExternalAuthProvider, cipher: CredentialCipher | None = None) -> dict[str, Any]:
    """The full ``config`` with the secrets decrypted, for a login or a provider test (never answered).
    Unavailable (503) when a secret matches none of the configured keys."""
    public, plain = split(row.config or {})
    secrets: dict[str, Any] = {}
    for key, token in (row.encrypted_secrets or {}).items():
        if not token or key in plain:
            continue  # a plaintext value not yet upgraded is newer than an encrypted one
        try:
            secrets[key] = _cipher(cipher).decrypt(token)
        except UndecryptableError:
            log.error("the %s of SSO provider %s cannot be decrypted with the configured key(s)", key, row.name)
            raise Unavailable(f"the {key} of SSO provider {row.name!r} cannot be decrypted with the configured "
                              "encryption key; set it again or restore the previous key") from None
    return {**public, **secrets, **plain}


def patched(row: ExternalAuthProvider, config: dict[str, Any], new: dict[str, Any],
            cipher: CredentialCipher | None = None) -> dict[str, str]:
    """``encrypted_secrets`` after a PATCH: ``new`` secrets encrypted, secrets no longer in ``config``
    dropped, the others kept as stored (a plaintext one of an earlier version encrypted in passing)."""
    legacy = {k: row.config[k] for k in plaintext_keys(row)}
    plain = {k: v for k, v in {**legacy, **new}.items() if k in config}
    kept = {k: v for k, v in (row.encrypted_secrets or {}).items() if k in config and k not in plain}
    return {**kept, **seal(plain, cipher)}


def holds(row: ExternalAuthProvider, secrets: dict[str, Any], cipher: CredentialCipher | None = None) -> bool:
    """Whether the provider stores exactly these secrets (not when a stored one cannot be decrypted)."""
    try:
        stored = {k: v for k, v in reveal(row, cipher).items() if k in SECRET_KEYS and v not in (None, "")}
    except Unavailable:
        return False
    return stored == {k: v for k, v in secrets.items() if v not in (None, "")}


def encrypt_plaintext(session: Session, cipher: CredentialCipher | None = None,
                      actor: str = UPGRADE_ACTOR) -> int:
    """Upgrade step: encrypt the secrets earlier versions stored in plain text in ``config`` (one audit
    entry per provider, in the caller's transaction). Idempotent; returns how many secrets it encrypted."""
    count = 0
    for row in session.exec(select(ExternalAuthProvider).with_for_update()):
        keys = plaintext_keys(row)
        if not keys:
            continue
        public, plain = split(row.config)
        kept = {k: v for k, v in (row.encrypted_secrets or {}).items() if k not in plain}
        row.encrypted_secrets, row.config = {**kept, **seal(plain, cipher)}, public
        session.add(row)
        audit(session, actor, "external_auth.provider_secrets_encrypted", "external_auth_provider", row.name,
              {"fields": keys})
        count += len(keys)
    if count:
        log.info("encrypted %d SSO provider secret(s) that were stored in plain text", count)
    return count
