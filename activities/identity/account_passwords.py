"""Who may have a local password, and how it is set or changed.

Only local accounts (``auth_source == "local"``) have one. Accounts of an identity provider
(``ldap:<name>``, ``oidc:<name>``) and the internal-network service identity (``bypass``) sign in
elsewhere: a password can neither be set for them nor used to sign them in, even if a hash were
somehow stored in their row. Changing one's own password needs the current one (a wrong guess
counts toward the login rate limit); an administrator setting another account's does not.
"""

from __future__ import annotations

from sqlmodel import Session

from activities.db.models import User
from activities.errors import Conflict, Forbidden, InvalidInput
from activities.identity import logins, passwords

LOCAL = "local"


class WrongCurrentPassword(Forbidden):
    """The current password sent with a change of one's own password is wrong (recorded as a failed login)."""


def is_local(auth_source: str | None) -> bool:
    return auth_source == LOCAL


def refuse_unless_local(auth_source: str, username: str) -> None:
    if not is_local(auth_source):
        raise Conflict(f"account {username!r} signs in through {auth_source}; it cannot have a local password")


def check_new(username: str, auth_source: str, password: str) -> str:
    """The argon2 hash of ``password`` for an account being created, once the rules allow it."""
    refuse_unless_local(auth_source, username)
    passwords.check_policy(password, username)
    return passwords.hash_password(password)


def check_change(session: Session, user: User, new_password: str, current_password: str | None,
                 actor_user_id: str, ip: str | None) -> str:
    """Validate a password change before anything else of the request is applied; returns the new hash.

    Raises before changing anything; only a wrong current password leaves a failure record behind
    (the caller commits it on ``WrongCurrentPassword``)."""
    refuse_unless_local(user.auth_source, user.username)
    if user.id == actor_user_id:
        if user.password_hash is None:
            raise Conflict("your account has no password yet; another administrator sets the first one")
        if not current_password:
            raise InvalidInput("current_password: required to change your own password")
        logins.check_rate(session, user.username, ip)
        if not passwords.verify(user.password_hash, current_password):
            logins.record_failure(session, user.username, ip, "wrong current password", method="password_change")
            raise WrongCurrentPassword("current_password is wrong")
    passwords.check_policy(new_password, user.username)
    return passwords.hash_password(new_password)


def apply(session: Session, user: User, password_hash: str) -> None:
    """Store the new hash and end every login session of the account."""
    user.password_hash = password_hash
    logins.revoke_sessions(session, user.id)
