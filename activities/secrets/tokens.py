"""Token generation and hashing: tokens are shown once and stored as SHA-256."""

import hashlib
import secrets


def new_token(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def reply_token() -> str:
    """32 URL-safe characters: short enough to sit in an e-mail subject as ``[ref:<token>]``."""
    return secrets.token_urlsafe(24)
