"""Encryption at rest of stored credentials (Fernet: AES-128-CBC + HMAC-SHA256).

The key comes from the secret ``SIMPLETUNER_SECRET_KEY`` (a url-safe base64 encoding of 32 bytes, as
``Fernet.generate_key()`` prints), read through the secrets providers (the environment first, see
``activities.secrets.resolver``), else from ``<data_dir>/secret.key``, generated once with mode
0600. Keys listed in ``SIMPLETUNER_SECRET_KEY_PREVIOUS`` (comma-separated) still decrypt, so a
key can be rotated without losing what was stored under the old one. Key material is never logged
nor put in an error message.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

log = logging.getLogger(__name__)

ENV_KEY = "SIMPLETUNER_SECRET_KEY"
ENV_PREVIOUS = "SIMPLETUNER_SECRET_KEY_PREVIOUS"
KEY_FILE_NAME = "secret.key"
_HOW_TO = ("expected 32 bytes in url-safe base64 (44 characters); generate one with: python -c "
           "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'")


class SecretKeyError(ValueError):
    """The configured encryption key is unusable; the message names where it came from."""


class UndecryptableError(ValueError):
    """A ciphertext matches none of the configured keys (wrong key, or tampered data)."""


def key_file_path(data_dir: Path) -> Path:
    return Path(data_dir) / KEY_FILE_NAME


def parse_key(value: str | bytes, source: str) -> Fernet:
    """A Fernet for ``value``; SecretKeyError naming ``source`` (never the value) when malformed."""
    raw = value.strip() if isinstance(value, bytes) else value.strip().encode("ascii", "replace")
    try:
        return Fernet(raw)
    except (ValueError, TypeError):
        raise SecretKeyError(f"{source}: not a valid encryption key; {_HOW_TO}") from None


def _create_key_file(path: Path) -> None:
    """Write a new key to ``path`` atomically: a complete 0600 temp file, then hard-linked into
    place, so a concurrent starter never reads half a key and the first writer wins."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, Fernet.generate_key() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another process created it first: use theirs
    else:
        log.info("generated a new credential encryption key in %s (mode 0600); back it up with the database",
                 path)
    finally:
        tmp.unlink(missing_ok=True)


def load_key_file(path: Path, create: bool = True) -> Fernet:
    """The key stored in ``path``, created on first use (SecretKeyError instead when not ``create``)."""
    path = Path(path)
    if not path.exists() and not create:
        raise SecretKeyError(f"{path}: no encryption key there (and {ENV_KEY} is not set)")
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        _create_key_file(path)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        log.warning("%s is readable by others (mode %o); restricting it to 0600", path, mode)
        os.chmod(path, 0o600)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SecretKeyError(f"{path}: cannot read the encryption key: {exc.strerror}") from None
    return parse_key(data, str(path))


class CredentialCipher:
    """Encrypts with the current key; decrypts with the current or any previous key."""

    def __init__(self, current: Fernet, previous: list[Fernet] | None = None, source: str = "") -> None:
        self.previous_count = len(previous or [])
        self.source = source
        self._current = current
        self._fernet = MultiFernet([current, *(previous or [])])

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise UndecryptableError("the stored ciphertext cannot be decrypted with the configured "
                                     f"key(s) ({ENV_KEY} / {ENV_PREVIOUS})") from None

    def is_current(self, token: str) -> bool:
        """Whether ``token`` was encrypted under the current key (no re-encryption needed)."""
        try:
            self._current.decrypt(token.encode("ascii"))
            return True
        except (InvalidToken, UnicodeError):
            return False

    def reencrypt(self, token: str) -> str:
        """The same plaintext under the current key (MultiFernet.rotate)."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError):
            raise UndecryptableError("the stored ciphertext cannot be decrypted with the configured key(s)") from None


def _read_secret(name: str, env: Mapping[str, str] | None, secrets: Any) -> tuple[str, str]:
    """(value or "", where it came from) of ``name``: from ``secrets`` (a ``SecretResolver``) unless an
    ``env`` mapping is given, else from the process environment."""
    if env is None and secrets is not None:
        found = secrets.lookup(name)  # SecretProviderError when a provider cannot answer: fail closed
        if found is None:
            return "", name
        return found.value, name if found.provider == "env" else f"{name} (secrets provider {found.provider})"
    return (os.environ if env is None else env).get(name, ""), name


def load_cipher(data_dir: Path, env: Mapping[str, str] | None = None, create: bool = True,
                secrets: Any = None) -> CredentialCipher:
    """The cipher from the secret ``SIMPLETUNER_SECRET_KEY`` (through ``secrets``, the settings'
    ``secret_resolver``; or ``env``), else from (and, with ``create``, maybe creating)
    ``<data_dir>/secret.key``. Raises SecretKeyError for a malformed key anywhere: a startup error,
    not a later surprise."""
    configured, source = _read_secret(ENV_KEY, env, secrets)
    if configured.strip():
        current = parse_key(configured, source)
    else:
        path = key_file_path(data_dir)
        current, source = load_key_file(path, create), str(path)
    previous_keys, previous_source = _read_secret(ENV_PREVIOUS, env, secrets)
    previous = [parse_key(item, f"{previous_source} (item {i + 1})")
                for i, item in enumerate(previous_keys.split(",")) if item.strip()]
    log.info("credential encryption key from %s, %d previous key(s) accepted for decryption", source, len(previous))
    return CredentialCipher(current, previous, source)


_installed: CredentialCipher | None = None


def install(cipher: CredentialCipher | None) -> None:
    """Make ``cipher`` the process's cipher (done once at API startup)."""
    global _installed
    _installed = cipher


def current() -> CredentialCipher:
    if _installed is None:
        raise RuntimeError("credential encryption is not configured in this process "
                           "(credential_crypto.install was not called)")
    return _installed
