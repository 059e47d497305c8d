"""One correlation id per request, carried everywhere the request's work goes.

The id lives in a ``ContextVar``: the API sets it from ``X-Correlation-ID`` (or a new one), the
Temporal interceptors (``activities/temporal/correlation_interceptor.py``) carry it in headers into
workflows and activities, agents pass it to the training as ``SIMPLETUNER_CORRELATION_ID``, the
outbound HTTP client sends it, and every log record carries it. A value from outside is believed
only when it is short and made of safe characters; anything else is replaced, never echoed.

Workflow-safe: no I/O, and nothing here is called to make a new id inside a workflow.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token

HEADER = "X-Correlation-ID"
ENV_VAR = "SIMPLETUNER_CORRELATION_ID"
MAX_LENGTH = 128
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,%d}$" % (MAX_LENGTH - 1))

_current: ContextVar[str | None] = ContextVar("simpletuner_correlation_id", default=None)


def is_valid(value: object) -> bool:
    return isinstance(value, str) and bool(_SAFE.match(value))


def new_id() -> str:
    return uuid.uuid4().hex


def accept(value: str | None) -> str:
    """The id to use for a value from outside (a header, an environment variable): itself when it
    is safe, else a new one."""
    return value if is_valid(value) else new_id()


def current() -> str | None:
    """The id in effect, or None outside any request or task."""
    return _current.get()


def get_correlation_id() -> str:
    """The id in effect; one is made (and kept for this context) when there is none."""
    value = _current.get()
    if value is None:
        value = new_id()
        _current.set(value)
    return value


def set_correlation_id(value: str | None) -> Token:
    """Sets the id for this context (an unsafe value is replaced by a new one); returns the token
    ``reset`` takes."""
    return _current.set(None if value is None else accept(value))


def reset(token: Token) -> None:
    _current.reset(token)


def clear_correlation_id() -> None:
    _current.set(None)


@contextmanager
def correlation(value: str | None) -> Iterator[str | None]:
    """``with correlation(id):`` sets the id for the block and restores the previous one after."""
    token = set_correlation_id(value)
    try:
        yield _current.get()
    finally:
        _current.reset(token)
