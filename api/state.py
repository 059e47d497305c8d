"""Process-wide objects of the API, built once in the app factory and reached through dependencies."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

from temporalio.client import Client

from activities.runtime import Database
from activities.settings import Settings


@dataclass
class AppState:
    settings: Settings
    db: Database
    temporal: Client
    started_at: float = field(default_factory=time.monotonic)
    # the console's form token in single-user mode, where there is no login session to hold one
    single_user_csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
