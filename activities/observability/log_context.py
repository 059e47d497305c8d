"""``LogContext(**fields)``: fields every log record inside the block carries in ``extra``.

Nestable (an inner block adds to, and may override, the outer one's fields; leaving it restores
them) and safe across threads and asyncio tasks (a ``ContextVar``). The fields in common use:
``job_id``, ``user_id``, ``provider``, ``step``, ``attempt``.

Workflow-safe: no I/O.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from types import MappingProxyType
from typing import Any, Mapping

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_fields: ContextVar[Mapping[str, Any]] = ContextVar("simpletuner_log_context", default=_EMPTY)


def current_fields() -> Mapping[str, Any]:
    return _fields.get()


class LogContext:
    """``with LogContext(job_id=..., step="validation"):``; also usable as ``async with``."""

    def __init__(self, **fields: Any) -> None:
        self._add = {k: v for k, v in fields.items() if v is not None}
        self._tokens: list[Token] = []

    def __enter__(self) -> "LogContext":
        self._tokens.append(_fields.set(MappingProxyType({**_fields.get(), **self._add})))
        return self

    def __exit__(self, *_: object) -> None:
        _fields.reset(self._tokens.pop())

    async def __aenter__(self) -> "LogContext":
        return self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__(*exc)
