"""Process logging: text or JSON lines (SIMPLETUNER_LOG_FORMAT), optional file (SIMPLETUNER_LOG_FILE).

A JSON record has exactly ``timestamp`` (UTC, ISO 8601), ``level``, ``logger``, ``message``,
``correlation_id`` (``activities/observability/correlation.py``; null outside any request or task),
``source`` (``file``, ``line``, ``function``) and ``extra``: the fields of the enclosing
``LogContext`` blocks, then the record's own ``extra=`` fields, then Temporal's workflow or activity
details, and ``exception`` when there is one. Text lines carry the correlation id in brackets. Used by
every process: the API, the worker host (workflows log through ``workflow.logger``), agents and
``simpletuner dev``.

No log line carries the value of an OAuth ``code`` or ``state`` query parameter (the OIDC callback's
URL in uvicorn's access log, or any other line quoting such a URL): ``RedactOAuthParams`` rewrites
them to ``[redacted]`` on uvicorn's access logger and on every handler.
"""

from __future__ import annotations

import json
import logging
import os
import re
from datetime import datetime, timezone
from typing import Any

from activities.observability.correlation import current as current_correlation_id
from activities.observability.log_context import LogContext, current_fields

__all__ = ["LogContext", "configure", "configure_structured_logging", "get_logger", "init_from_env", "LEVELS",
           "FORMATS", "JsonFormatter", "redact"]

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FORMATS = ("json", "text")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(correlation_id)s]: %(message)s"
_STD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "correlation_id"}
# ?code=… / &state=… in a URL, also percent-encoded inside another URL's parameter (%3Fcode%3D…)
_OAUTH_PARAM = re.compile(r"((?:[?&]|%3[Ff]|%26)(?i:code|state)(?:=|%3[Dd]))(?:(?!%26)[^&\s\"'#])*")
REDACTED = "[redacted]"
ACCESS_LOGGER = "uvicorn.access"


def redact(text: str) -> str:
    return _OAUTH_PARAM.sub(r"\1" + REDACTED, text)


def _redacted(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


class RedactOAuthParams(logging.Filter):
    """Rewrites ``code=`` and ``state=`` query values in a record's message and arguments (kept in place,
    so uvicorn's access-log arguments keep their shape). Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _redacted(v) for k, v in record.args.items()}
        return True


def install_redaction(handlers: list[logging.Handler]) -> None:
    """On uvicorn's access logger (whatever handles it) and on ``handlers`` (every other line)."""
    for target in (logging.getLogger(ACCESS_LOGGER), *handlers):
        if not any(isinstance(f, RedactOAuthParams) for f in target.filters):
            target.addFilter(RedactOAuthParams())


class CorrelationFilter(logging.Filter):
    """Puts the correlation id in effect on the record (``-`` when there is none), for text lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation_id = current_correlation_id() or "-"
        return True


def _json_safe(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return str(value)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extra: dict[str, Any] = dict(current_fields())
        extra.update((k, v) for k, v in vars(record).items() if k not in _STD)
        if record.exc_info:
            extra["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            extra["stack"] = self.formatStack(record.stack_info)
        cid = current_correlation_id()
        entry = {
            "timestamp": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")
                         .replace("+00:00", "Z"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
            "correlation_id": cid,
            "source": {"file": record.filename, "line": record.lineno, "function": record.funcName},
            "extra": _json_safe(extra),
        }
        return json.dumps(entry)


def configure(level: str = "INFO", fmt: str = "text", log_file: str | None = None) -> None:
    """Sets up the root logger. Raises ``ValueError`` naming the setting for an unknown level or format
    and ``OSError`` when the log file cannot be opened."""
    level, fmt = level.upper(), fmt.lower()
    if level not in LEVELS:
        raise ValueError(f"SIMPLETUNER_LOG_LEVEL: {level!r} is not one of {', '.join(LEVELS)}")
    if fmt not in FORMATS:
        raise ValueError(f"SIMPLETUNER_LOG_FORMAT: {fmt!r} is not one of {', '.join(FORMATS)}")
    formatter: logging.Formatter = JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT)
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_file:
        handlers.append(logging.FileHandler(log_file))
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(CorrelationFilter())
    install_redaction(handlers)
    logging.basicConfig(level=level, handlers=handlers, force=True)
    for chatty in ("httpx", "httpcore"):  # one line per request drowns everything else
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLogger().level))


def configure_structured_logging(level: str = "INFO", json_output: bool = True, log_file: str | None = None) -> None:
    configure(level, "json" if json_output else "text", log_file)


def init_from_env(env: dict[str, str] | None = None) -> None:
    """``SIMPLETUNER_LOG_LEVEL`` (INFO), ``SIMPLETUNER_LOG_FORMAT`` (text), ``SIMPLETUNER_LOG_FILE``."""
    env = dict(os.environ if env is None else env)
    configure(env.get("SIMPLETUNER_LOG_LEVEL") or "INFO", env.get("SIMPLETUNER_LOG_FORMAT") or "text",
              env.get("SIMPLETUNER_LOG_FILE") or None)


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)
