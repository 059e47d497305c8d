"""What every control-plane process builds from its settings: logging and the database."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session

from activities import logging_setup
from activities.db.engine import init_db, make_engine, session
from activities.capacity import admission
from activities.jobs import configs
from activities.settings import ConfigFileError, Settings


@dataclass
class Database:
    engine: Engine
    read_engine: Engine | None = None  # SQLite: sessions that can only read and never take the write lock

    def session(self) -> Session:
        return session(self.engine)

    def read_session(self) -> Session:
        """For work that only reads (a write in it fails)."""
        return session(self.read_engine or self.engine)


def open_database(settings: Settings) -> Database:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.db_url)
    init_db(engine)
    with session(engine) as s:  # rows that reads expect (a read-only session cannot create them)
        admission.settings(s, lock=True)
        s.commit()
    read_engine = make_engine(settings.db_url, read_only=True) if settings.db_url.startswith("sqlite") else None
    return Database(engine, read_engine)


def load_config_dir(settings: Settings, db: Database) -> list[str]:
    if settings.config_dir is None:
        return []
    with db.session() as s:
        names = configs.load_directory(s, settings.config_dir)
        s.commit()
    return names


def configure_logging(settings: Settings) -> None:
    """Logging as the settings say; a bad level or format, or a log file that cannot be opened, is a
    start-up error naming the setting."""
    try:
        logging_setup.configure(settings.log_level, settings.log_format, settings.log_file)
    except ValueError as exc:
        raise ConfigFileError(str(exc)) from exc
    except OSError as exc:
        raise ConfigFileError(f"SIMPLETUNER_LOG_FILE: cannot open {settings.log_file}: {exc.strerror}") from exc
