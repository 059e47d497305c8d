"""Process logging: text or JSON lines (SIMPLETUNER_LOG_FORMAT), optional file (SIMPLETUNER_LOG_FILE).

No log line carries the value of an OAuth ``code`` or ``state`` query parameter (the OIDC callback's
URL in uvicorn's access log, or any other line quoting such a URL): ``RedactOAuthParams`` rewrites
them to ``[redacted]`` on uvicorn's access logger and on every handler.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timezone
from typing import Any

_STD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
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


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "timestamp": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
            "source": {"file": record.filename, "line": record.lineno, "function": record.funcName},
        }
        extra = {k: v for k, v in vars(record).items() if k not in _STD}
        if extra:
            entry["extra"] = {k: v if isinstance(v, (str, int, float, bool, type(None))) else repr(v)
                              for k, v in extra.items()}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure(level: str = "INFO", fmt: str = "text", log_file: str | None = None) -> None:
    formatter: logging.Formatter = (JsonFormatter() if fmt == "json" else
                                    logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_file:
        handlers.append(logging.FileHandler(log_file))
    for handler in handlers:
        handler.setFormatter(formatter)
    install_redaction(handlers)
    logging.basicConfig(level=level.upper(), handlers=handlers, force=True)
    for chatty in ("httpx", "httpcore"):  # one line per request drowns everything else
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLogger().level))
