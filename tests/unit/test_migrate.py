"""A database made by an earlier version gains the new columns and keeps its admin usable."""

from __future__ import annotations

import sqlite3

from sqlmodel import select

from activities.db.engine import init_db, make_engine, session
from activities.db.models import UserLevel
from activities.identity.principals import authenticate_key
from activities.secrets.tokens import hash_token
from activities.identity.bootstrap import backfill_levels


def test_old_user_table_is_upgraded_and_admin_keeps_admin(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # the user/apikey tables as the first release created them
        db.executescript("""
            CREATE TABLE user (id VARCHAR PRIMARY KEY, username VARCHAR NOT NULL UNIQUE, email VARCHAR,
                               level VARCHAR NOT NULL, is_active BOOLEAN NOT NULL, created_at DATETIME NOT NULL);
            CREATE TABLE apikey (id VARCHAR PRIMARY KEY, user_id VARCHAR NOT NULL, name VARCHAR NOT NULL,
                                 key_hash VARCHAR NOT NULL UNIQUE, prefix VARCHAR NOT NULL, created_at DATETIME NOT NULL,
                                 expires_at DATETIME, revoked_at DATETIME);
            INSERT INTO user VALUES ('u_1', 'admin', NULL, 'admin', 1, '2026-11-01 00:00:00');
        """)
        db.execute("INSERT INTO apikey VALUES ('k_1', 'u_1', 'bootstrap', ?, 'st_x', '2026-11-01 00:00:00', NULL, NULL)",
                   (hash_token("st_old"),))
    engine = make_engine(f"sqlite:///{path}")
    init_db(engine)
    with sqlite3.connect(path) as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(user)")}
    assert {"password_hash", "auth_source", "display_name", "last_login_at"} <= columns
    assert backfill_levels(lambda: session(engine)) == 1
    with session(engine) as s:
        assert [r.level for r in s.exec(select(UserLevel))] == ["admin"]
        principal = authenticate_key(s, "st_old")
    assert principal.level == "admin" and principal.has("admin.users")
    init_db(engine)  # idempotent
    assert backfill_levels(lambda: session(engine)) == 0
