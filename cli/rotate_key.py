"""`simpletuner secrets rotate-key [--dry-run]`: re-encrypt every stored secret under the current key.

Works on the database the settings name (``SIMPLETUNER_DATABASE_URL`` or ``<data_dir>/simpletuner.db``)
with the keys they name (``SIMPLETUNER_SECRET_KEY`` or ``<data_dir>/secret.key``, plus
``SIMPLETUNER_SECRET_KEY_PREVIOUS``). Prints what it re-encrypted per kind and exits 0; exits 1 with
one line when a value cannot be decrypted by any configured key (then nothing is changed) or the
database fails, 2 when the settings or the key are unusable.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ACTOR = "system:secrets-cli"
LABELS = {"provider_credentials": "provider credentials",
          "notification_channel_passwords": "notification channel passwords",
          "sso_provider_secrets": "SSO provider secrets"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    secrets = sub.add_parser("secrets", help="manage the encryption of stored secrets")
    commands = secrets.add_subparsers(dest="secrets_command", required=True)
    rotate = commands.add_parser(
        "rotate-key", help="re-encrypt every stored secret under the current key, so the previous key can be dropped",
        description="Re-encrypt provider credentials, notification channel passwords and SSO provider secrets "
                    "under SIMPLETUNER_SECRET_KEY (or <data_dir>/secret.key); the old key must be listed in "
                    "SIMPLETUNER_SECRET_KEY_PREVIOUS. One transaction: all or nothing.")
    rotate.add_argument("--dry-run", action="store_true",
                        help="check that every value decrypts and count; change nothing")
    rotate.set_defaults(func=run)


def _fail(message: str, code: int) -> int:
    print(f"error: {' '.join(message.split())}", file=sys.stderr)  # one line, whatever the message held
    return code


def _sqlite_file(url: str) -> Path | None:
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None


def run(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from activities import logging_setup
    from activities.db.engine import init_db, make_engine, session
    from activities.secrets.credential_crypto import SecretKeyError, load_cipher
    from activities.secrets.providers.base import SecretProviderError
    from activities.secrets.rotation import RotationError, rotate
    from activities.settings import ConfigFileError, load_settings

    try:
        settings = load_settings()
        logging_setup.configure("WARNING", settings.log_format)
        # never a fresh key: it would decrypt nothing
        cipher = load_cipher(settings.data_dir, create=False, secrets=settings.secret_resolver)
    except (ConfigFileError, SecretKeyError, SecretProviderError) as exc:
        return _fail(str(exc), 2)
    db_file = _sqlite_file(settings.db_url)
    if db_file is not None and not db_file.is_file():
        return _fail(f"{db_file}: no database there (check SIMPLETUNER_DATA_DIR / SIMPLETUNER_DATABASE_URL)", 2)
    engine = make_engine(settings.db_url)
    try:
        init_db(engine)  # the additive schema upgrades the server would make (e.g. encrypted_secrets)
        with session(engine) as s:
            report = rotate(s, cipher, ACTOR, dry_run=args.dry_run)
            if args.dry_run:
                s.rollback()
            else:
                s.commit()
    except RotationError as exc:
        return _fail(str(exc), 1)
    except SQLAlchemyError as exc:
        return _fail(f"database: {type(exc).__name__}: {getattr(exc, 'orig', None) or exc}", 1)
    finally:
        engine.dispose()
    verb = "would be re-encrypted" if args.dry_run else "re-encrypted"
    print(f"current key from {cipher.source}; {cipher.previous_count} previous key(s) configured")
    for kind, count in report.kinds.items():
        print(f"{kind}: {count.reencrypted} {verb} ({count.stored} stored) - {LABELS[kind]}")
    print(f"sso_provider_secrets_plaintext: {report.plaintext_encrypted} "
          f"{'would be encrypted' if args.dry_run else 'encrypted'} - SSO secrets stored in plain text")
    if args.dry_run:
        print("dry run: nothing was changed")
    else:
        print("every stored secret is now under the current key; the previous key(s) can be removed")
    return 0
