"""Password hashing (argon2id) and the password policy."""

from __future__ import annotations

import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from activities.errors import InvalidInput

_hasher = PasswordHasher()
MIN_LENGTH = 10
_COMMON = {"password123", "1234567890", "qwertyuiop", "letmein123", "changeme123", "password1234", "administrator"}
# A hash of a random password: verifying against it costs the same as a real check, so an unknown
# username takes as long as a wrong password.


@functools.cache
def _dummy_hash() -> str:
    """Verified against when there is no hash, so a missing account costs the same time; made on first
    use, not at import (every process imports this module, few check passwords)."""
    return _hasher.hash("dummy-password-for-timing")


def check_policy(password: str, username: str) -> None:
    if len(password) < MIN_LENGTH:
        raise InvalidInput(f"password: must be at least {MIN_LENGTH} characters")
    if len(password) > 1024:
        raise InvalidInput("password: must be at most 1024 characters")
    if password.lower() in _COMMON or len(set(password)) < 4:
        raise InvalidInput("password: too easy to guess")
    if username and username.lower() in password.lower():
        raise InvalidInput("password: must not contain the username")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False
