"""Keyset paging on SQLite and PostgreSQL: pages follow each other without gaps or repeats even with
ties on the sort time and rows added between pages; filters and totals hold; a foreign cursor is a
422; the query plan uses the paging index, not a scan of the table."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from activities.db.models import Job
from activities.errors import InvalidInput
from activities.jobs.jobs import list_jobs
from activities.paging import PageRequest, encode, positional

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def add_jobs(db: Session, n: int, start: int = 0, status: str = "queued") -> None:
    for i in range(start, start + n):
        db.add(Job(id=f"job-{i:04d}", owner_id="u1", owner_name="ann", config_name="c", target="worker", request_hash="",
                   status=status if i % 3 else "completed", created_at=T0 + timedelta(seconds=i // 4)))  # ties
    db.commit()


def all_pages(db: Session, limit: int, **filters) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        page = list_jobs(db, page=PageRequest(limit=limit, cursor=cursor), **filters)
        pages.append([j.id for j in page.rows])
        cursor = page.next_cursor
        if cursor is None:
            return pages


def test_pages_cover_every_row_once_in_order(db):
    add_jobs(db, 250)
    pages = all_pages(db, 100)
    ids = [i for p in pages for i in p]
    expected = [j.id for j in db.exec(select(Job).order_by(Job.created_at.desc(), Job.id.desc()))]
    assert [len(p) for p in pages] == [100, 100, 50] and ids == expected
    first = list_jobs(db, page=PageRequest(limit=100))
    assert first.total == 250 and first.next_cursor is not None


def test_rows_added_between_pages_do_not_shift_the_next_page(db):
    add_jobs(db, 30)
    first = list_jobs(db, page=PageRequest(limit=10))
    add_jobs(db, 5, start=1000)  # newer than everything: they belong before page 1, not in page 2
    second = list_jobs(db, page=PageRequest(limit=10, cursor=first.next_cursor))
    expected = [j.id for j in db.exec(select(Job).where(Job.id < "job-1000")
                                      .order_by(Job.created_at.desc(), Job.id.desc()))][10:20]
    assert [j.id for j in second.rows] == expected and second.total == 35


def test_filters_and_totals(db):
    add_jobs(db, 90)
    pages = all_pages(db, 25, status="completed")
    assert all(int(i[-4:]) % 3 == 0 for p in pages for i in p)
    assert sum(len(p) for p in pages) == 30 == list_jobs(db, status="completed").total


@pytest.mark.parametrize("cursor", ["%%%", "bm90IGpzb24", encode(["x"]), encode([1, 2, 3]), encode([True, "a"]),
                                    encode(["2026-01-01T00:00:00", "job-1"]), encode([5, "job-1"])])
def test_a_foreign_cursor_is_refused(db, cursor):
    with pytest.raises(InvalidInput, match="cursor"):
        list_jobs(db, page=PageRequest(cursor=cursor))


def test_the_status_page_reads_the_index(db):
    add_jobs(db, 50)
    cursor = list_jobs(db, status="queued", page=PageRequest(limit=5)).next_cursor
    page = list_jobs(db, status="queued", page=PageRequest(limit=5, cursor=cursor))
    assert len(page.rows) == 5
    query = ("SELECT * FROM job WHERE status = 'queued' AND (created_at < '2026-01-02' OR "
             "(created_at = '2026-01-02' AND id < 'x')) ORDER BY created_at DESC, id DESC LIMIT 6")
    if db.get_bind().dialect.name == "postgresql":
        db.exec(text("SET LOCAL enable_seqscan = off"))  # a 50-row table: make the planner show the index path
        plan = " ".join(str(row) for row in db.exec(text("EXPLAIN " + query)))
        assert "ix_job_status_page" in plan and "Sort" not in plan, plan
    else:
        plan = " ".join(str(row) for row in db.exec(text("EXPLAIN QUERY PLAN " + query)))
        assert "ix_job_status_page" in plan and "TEMP B-TREE" not in plan, plan


def test_positional_pages():
    items = list(range(7))
    first = positional(items, PageRequest(limit=3))
    second = positional(items, PageRequest(limit=3, cursor=first.next_cursor))
    third = positional(items, PageRequest(limit=3, cursor=second.next_cursor))
    assert (first.rows, second.rows, third.rows, third.next_cursor, first.total) == ([0, 1, 2], [3, 4, 5], [6], None, 7)
