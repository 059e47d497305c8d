"""Process logging: text or JSON lines (SIMPLETUNER_LOG_FORMAT), optional file (SIMPLETUNER_LOG_FILE)."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

_STD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


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
    logging.basicConfig(level=level.upper(), handlers=handlers, force=True)
    for chatty in ("httpx", "httpcore"):  # one line per request drowns everything else
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLogger().level))
