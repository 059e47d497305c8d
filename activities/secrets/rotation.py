"""Key rotation: every value stored with the credential cipher, re-encrypted under the current key.

After the operator makes a new key current and lists the old one as previous
(``SIMPLETUNER_SECRET_KEY`` / ``SIMPLETUNER_SECRET_KEY_PREVIOUS``), ``rotate`` moves every stored
value over, so the previous key can be dropped. It runs in the caller's transaction, with the rows
locked: first every value is checked, and if one matches none of the configured keys nothing is
changed (``RotationError`` names the rows, never a value). SSO secrets an earlier version left in
plain text are encrypted on the way. The change and its audit entry ``secrets.key_rotated`` (the
counts, never key material) commit together.

Every encrypted column is listed in ``FIELDS``: a new one must be added there, or rotation would
leave it under a key that is about to be dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, select

from activities.audit.trail import audit
from activities.db.models_approvals import NotificationChannel
from activities.db.models_credentials import ProviderCredential
from activities.db.models_sso import ExternalAuthProvider
from activities.identity.sso import provider_secrets
from activities.secrets.credential_crypto import ENV_KEY, ENV_PREVIOUS, CredentialCipher, UndecryptableError

log = logging.getLogger(__name__)

SHOWN_FAILURES = 5


@dataclass(frozen=True)
class EncryptedField:
    """One kind of encrypted value: its table, the tokens of a row by field name, how to store one back."""
    kind: str
    model: type
    ident: Callable[[Any], str]
    tokens: Callable[[Any], dict[str, str | None]]
    store: Callable[[Any, str, str], None]


def _set_channel_password(row: NotificationChannel, name: str, token: str) -> None:
    setattr(row, f"{name}_encrypted", token)


def _set_sso_secret(row: ExternalAuthProvider, name: str, token: str) -> None:
    row.encrypted_secrets = {**(row.encrypted_secrets or {}), name: token}  # a new dict: the JSON column sees it


FIELDS: tuple[EncryptedField, ...] = (
    EncryptedField("provider_credentials", ProviderCredential, lambda r: r.id,
                   lambda r: {"value": r.ciphertext}, lambda r, _, token: setattr(r, "ciphertext", token)),
    EncryptedField("notification_channel_passwords", NotificationChannel, lambda r: r.id,
                   lambda r: {"smtp_password": r.smtp_password_encrypted, "imap_password": r.imap_password_encrypted},
                   _set_channel_password),
    EncryptedField("sso_provider_secrets", ExternalAuthProvider, lambda r: r.name,
                   lambda r: dict(r.encrypted_secrets or {}), _set_sso_secret),
)


@dataclass
class KindCount:
    stored: int = 0       # values of this kind in the database
    reencrypted: int = 0  # of them, moved from a previous key to the current one


@dataclass
class RotationReport:
    kinds: dict[str, KindCount] = field(default_factory=lambda: {f.kind: KindCount() for f in FIELDS})
    plaintext_encrypted: int = 0  # SSO secrets an earlier version stored in plain text
    dry_run: bool = False

    @property
    def changed(self) -> int:
        return sum(c.reencrypted for c in self.kinds.values()) + self.plaintext_encrypted

    def as_dict(self) -> dict[str, Any]:
        return {"reencrypted": {k: c.reencrypted for k, c in self.kinds.items()},
                "stored": {k: c.stored for k, c in self.kinds.items()},
                "plaintext_encrypted": self.plaintext_encrypted}


class RotationError(Exception):
    """Some stored values match none of the configured keys; nothing was changed."""

    def __init__(self, failures: list[str]) -> None:
        shown = ", ".join(failures[:SHOWN_FAILURES]) + (", ..." if len(failures) > SHOWN_FAILURES else "")
        super().__init__(f"{len(failures)} stored value(s) cannot be decrypted with the configured keys "
                         f"({ENV_KEY} and {ENV_PREVIOUS}): {shown}; nothing was changed")
        self.failures = failures


Move = tuple[EncryptedField, Any, str, str]  # (field, row, name in the row, the new token)


def _plan(session: Session, cipher: CredentialCipher, report: RotationReport) -> list[Move]:
    """Every value not yet under the current key, with its new token; counts what is stored. Raises
    RotationError, before anything is written, when a value cannot be decrypted."""
    moves, failures = [], []
    for spec in FIELDS:
        for row in session.exec(select(spec.model).with_for_update()):
            for name, token in spec.tokens(row).items():
                if not token:
                    continue
                report.kinds[spec.kind].stored += 1
                if cipher.is_current(token):
                    continue
                try:
                    moves.append((spec, row, name, cipher.reencrypt(token)))
                except UndecryptableError:
                    failures.append(f"{spec.kind} {spec.ident(row)} ({name})")
    if failures:
        raise RotationError(failures)
    return moves


def rotate(session: Session, cipher: CredentialCipher, actor: str, dry_run: bool = False) -> RotationReport:
    """Re-encrypt every stored value under ``cipher``'s current key, in the caller's transaction
    (the caller commits; with ``dry_run`` nothing is written and the report says what would be)."""
    report = RotationReport(dry_run=dry_run)
    moves = _plan(session, cipher, report)
    for spec, _, _, _ in moves:
        report.kinds[spec.kind].reencrypted += 1
    report.plaintext_encrypted = sum(len(provider_secrets.plaintext_keys(row))
                                     for row in session.exec(select(ExternalAuthProvider)))
    if dry_run:
        return report
    for spec, row, name, token in moves:
        spec.store(row, name, token)
        session.add(row)
    session.flush()
    provider_secrets.encrypt_plaintext(session, cipher, actor)
    audit(session, actor, "secrets.key_rotated", "secret_key", None,
          {**report.as_dict(), "key_source": cipher.source, "previous_keys": cipher.previous_count})
    log.info("re-encrypted %d stored value(s) under the current key", report.changed)
    return report
