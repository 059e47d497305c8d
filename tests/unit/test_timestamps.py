"""Timestamps are timezone-aware end to end: every datetime column stores UTC and reads back aware,
on SQLite and on PostgreSQL whatever the server's or the session's time zone."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import DateTime
from sqlmodel import SQLModel, select
from sqlmodel.sql.sqltypes import UTCDateTime

from activities.db.engine import init_db, load_models, make_engine, session as open_session
from activities.db.models import User


def test_every_datetime_column_is_utc_aware():
    load_models()
    naive = [f"{t.name}.{c.name}" for t in SQLModel.metadata.sorted_tables for c in t.columns
             if isinstance(getattr(c.type, "impl", c.type), DateTime) and not isinstance(c.type, UTCDateTime)]
    assert naive == []
    aware = [c for t in SQLModel.metadata.sorted_tables for c in t.columns if isinstance(c.type, UTCDateTime)]
    assert len(aware) > 30


def test_times_round_trip_as_aware_utc(database_url):
    engine = make_engine(database_url)
    init_db(engine)
    tokyo = timezone(timedelta(hours=9))
    moment = datetime(2026, 6, 1, 9, 30, tzinfo=tokyo)
    with open_session(engine) as s:
        if engine.dialect.name == "postgresql":
            s.exec(select(1)).one()
            s.connection().exec_driver_sql("SET TIME ZONE 'America/New_York'")  # not UTC: must not shift
        s.add(User(id="u1", username="ann", created_at=moment))
        s.commit()
    with open_session(engine) as s:
        if engine.dialect.name == "postgresql":
            s.connection().exec_driver_sql("SET TIME ZONE 'Asia/Kolkata'")
        user = s.get(User, "u1")
        assert user.created_at == moment and user.created_at.utcoffset() == timedelta(0)
        found = s.exec(select(User).where(User.created_at < moment + timedelta(seconds=1),
                                          User.created_at > moment - timedelta(seconds=1))).all()
        assert [u.id for u in found] == ["u1"]
    with open_session(engine) as s, pytest.raises(Exception, match="timezone"):
        s.add(User(id="u2", username="bob", created_at=datetime(2026, 6, 1, 9, 30)))  # naive: refused
        s.commit()
    engine.dispose()
