"""The ``limit``, ``cursor`` and ``offset`` query parameters every list endpoint takes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from activities.paging import DEFAULT_LIMIT, MAX_LIMIT, PageRequest


def page_request(limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="rows per page")] = DEFAULT_LIMIT,
                 cursor: Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page")]
                 = None,
                 offset: Annotated[int, Query(ge=0, le=10**9, description="rows to skip (without a cursor)")] = 0,
                 ) -> PageRequest:
    return PageRequest(limit=limit, cursor=cursor, offset=offset)


PageDep = Annotated[PageRequest, Depends(page_request)]
