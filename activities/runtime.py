"""What every control-plane process builds from its settings: logging and the database."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session

from activities import logging_setup
from activities.db.engine import init_db, make_engine, session
from activities.jobs import configs
from activities.settings import Settings


@dataclass
class Database:
    engine: Engine

    def session(self) -> Session:
        return session(self.engine)


def open_database(settings: Settings) -> Database:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.db_url)
    init_db(engine)
    return Database(engine)


def load_config_dir(settings: Settings, db: Database) -> list[str]:
    if settings.config_dir is None:
        return []
    with db.session() as s:
        names = configs.load_directory(s, settings.config_dir)
        s.commit()
    return names


def configure_logging(settings: Settings) -> None:
    logging_setup.configure(settings.log_level, settings.log_format, settings.log_file)
