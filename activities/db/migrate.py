"""Additive schema upgrades: columns that newer models added to tables an older version created.

Only nullable or defaulted columns are ever added this way; anything else needs a real migration.
"""

from __future__ import annotations

import logging

from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

log = logging.getLogger(__name__)

UNIQUE_INDEXES = {"ux_user_email": ("user", "email")}


def _default_sql(column) -> str:
    default = column.default.arg if column.default is not None and not callable(column.default.arg) else None
    if isinstance(default, bool):
        return f" DEFAULT {int(default)}"
    if isinstance(default, (int, float)):
        return f" DEFAULT {default}"
    if isinstance(default, str):
        return " DEFAULT '" + default.replace("'", "''") + "'"
    return ""


def add_missing_columns(engine: Engine) -> list[str]:
    added: list[str] = []
    with engine.begin() as conn:  # inspect on this connection: a second one would wait for its lock
        inspector = inspect(conn)
        for table in SQLModel.metadata.sorted_tables:
            if not inspector.has_table(table.name):
                continue
            present = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name in present:
                    continue
                ddl_type = column.type.compile(dialect=engine.dialect)
                conn.execute(text(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {ddl_type}{_default_sql(column)}'))
                added.append(f"{table.name}.{column.name}")
        for name, (table, column) in UNIQUE_INDEXES.items():
            conn.execute(text(f'CREATE UNIQUE INDEX IF NOT EXISTS {name} ON "{table}" ("{column}")'))
        for table in SQLModel.metadata.sorted_tables:  # indexes newer models declare on older tables
            for index in table.indexes:
                index.create(conn, checkfirst=True)
    if added:
        log.info("added columns: %s", ", ".join(added))
    return added
