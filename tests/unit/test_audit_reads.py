"""Reading the audit trail by time on each backend: a time without a zone is read as UTC."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from activities.audit import reads
from activities.audit.trail import audit


def test_since_and_until_without_a_zone_are_utc(db):
    audit(db, "admin", "user.created", "user", "u1")
    db.commit()
    now = datetime.now(timezone.utc)
    naive_before = (now - timedelta(minutes=5)).replace(tzinfo=None)
    naive_after = (now + timedelta(minutes=5)).replace(tzinfo=None)
    assert [e.target_id for e in reads.list_entries(db, since=naive_before).rows] == ["u1"]
    assert reads.list_entries(db, since=naive_after).rows == []
    assert [e.target_id for e in reads.list_entries(db, until=naive_after).rows] == ["u1"]
    assert reads.list_entries(db, until=naive_before).rows == []
    ahead = now.astimezone(timezone(timedelta(hours=5)))  # the same moment in another zone
    assert [e.target_id for e in reads.list_entries(db, since=ahead - timedelta(minutes=1)).rows] == ["u1"]
