"""Local passwords against a real SQLite file: only local accounts have one, and changing one's own
needs the current one."""

from __future__ import annotations


import pytest
from sqlmodel import Session, select

from activities.db.models import AuditEntry, AuthSession, LoginAttempt, User
from activities.errors import Conflict, InvalidInput, Unauthorized
from activities.identity import logins, passwords, users
from activities.identity.account_passwords import WrongCurrentPassword
from activities.identity.principals import Principal
from activities.identity.users import UserCreate, UserPatch

IP = "10.0.0.9"
OLD, NEW = "Old-Passw0rd-long", "New-Passw0rd-long"


def as_principal(user: User, *levels: str) -> Principal:
    return Principal(user_id=user.id, username=user.username, levels=levels, permissions=frozenset({"admin.users"}))


def local(db: Session, name: str, password: str = OLD) -> User:
    user = users.create(db, UserCreate(username=name, password=password), "admin", IP)
    db.commit()
    return user


def sso(db: Session, name: str, source: str = "ldap:corp") -> User:
    user = users.create(db, UserCreate(username=name), source, IP, auth_source=source, external_subject=name)
    db.commit()
    return user


def failures(db: Session) -> list[dict]:
    return [row.details for row in db.exec(select(AuditEntry).where(AuditEntry.action == "auth.login_failure"))]


@pytest.mark.parametrize("source", ["ldap:corp", "oidc:corp-sso", "bypass"])
def test_accounts_of_an_identity_provider_never_get_a_password(db, source):
    with pytest.raises(Conflict, match=f"signs in through {source}"):
        users.create(db, UserCreate(username="eve", password=NEW), source, IP, auth_source=source)
    db.rollback()
    eve = sso(db, "eve", source)
    admin = as_principal(local(db, "root"), "admin")
    with pytest.raises(Conflict, match="cannot have a local password"):
        users.update(db, eve.id, UserPatch(password=NEW), admin, IP)  # an admin resetting it
    db.rollback()
    with pytest.raises(Conflict, match="cannot have a local password"):
        users.update(db, eve.id, UserPatch(password=NEW, current_password=OLD), as_principal(eve), IP)  # herself
    db.rollback()
    assert db.get(User, eve.id).password_hash is None
    assert users.update(db, eve.id, UserPatch(display_name="Eve"), admin, IP).display_name == "Eve"  # the rest works


@pytest.mark.parametrize("source", ["ldap:corp", "oidc:corp-sso", "bypass"])
def test_a_stored_hash_does_not_sign_in_an_sso_account(db, source):
    eve = sso(db, "eve", source)
    eve.password_hash = passwords.hash_password(NEW)  # e.g. left over from a local past, or written by hand
    db.add(eve)
    db.commit()
    with pytest.raises(Unauthorized, match="invalid username or password"):
        logins.password_login(db, "eve", NEW, IP)
    assert failures(db)[-1]["reason"] == "not a local account"
    assert users.to_dict(db, eve)["has_password"] is False


def test_own_password_change_needs_the_current_one(db):
    kim = local(db, "kim")
    me = as_principal(kim)
    token, _ = logins.open_session(db, kim, IP, "test")
    db.commit()
    with pytest.raises(InvalidInput, match="current_password: required"):
        users.update(db, kim.id, UserPatch(password=NEW), me, IP)
    db.rollback()
    with pytest.raises(WrongCurrentPassword, match="current_password is wrong"):
        users.update(db, kim.id, UserPatch(password=NEW, current_password="Wrong-Passw0rd-x", email="k@corp.test"),
                     me, IP)
    db.commit()  # what the route does: the failure record stays, nothing else was changed
    assert db.get(User, kim.id).email is None and passwords.verify(db.get(User, kim.id).password_hash, OLD)
    assert failures(db)[-1] == {"reason": "wrong current password", "method": "password_change"}
    assert len(db.exec(select(LoginAttempt).where(LoginAttempt.account == "kim")).all()) == 1

    users.update(db, kim.id, UserPatch(password=NEW, current_password=OLD), me, IP)
    db.commit()
    assert passwords.verify(db.get(User, kim.id).password_hash, NEW)
    assert all(row.revoked_at is not None for row in db.exec(select(AuthSession)))  # every session ended
    assert logins.password_login(db, "kim", NEW, IP).id == kim.id and token


def test_guesses_at_the_current_password_are_rate_limited(db):
    kim = local(db, "kim")
    for _ in range(logins.MAX_FAILURES_PER_ACCOUNT):
        with pytest.raises(WrongCurrentPassword):
            users.update(db, kim.id, UserPatch(password=NEW, current_password="Wrong-Passw0rd-x"),
                         as_principal(kim), IP)
        db.commit()
    with pytest.raises(logins.TooManyAttempts):
        users.update(db, kim.id, UserPatch(password=NEW, current_password=OLD), as_principal(kim), IP)


def test_an_admin_sets_another_accounts_password_without_its_current_one(db):
    admin, kim = as_principal(local(db, "root"), "admin"), local(db, "kim")
    users.update(db, kim.id, UserPatch(password=NEW), admin, IP)
    db.commit()
    assert passwords.verify(db.get(User, kim.id).password_hash, NEW)
    with pytest.raises(InvalidInput, match="current_password"):  # but their own needs it like anyone's
        users.update(db, admin.user_id, UserPatch(password=NEW), admin, IP)


def test_an_account_without_a_password_cannot_give_itself_one(db):
    bare = User(id="u_bare", username="bare")  # the bootstrap admin: an API key, no password
    db.add(bare)
    db.commit()
    with pytest.raises(Conflict, match="no password yet"):
        users.update(db, bare.id, UserPatch(password=NEW, current_password="anything-at-all"), as_principal(bare), IP)
