"""The environment: a secret ``NAME`` is the variable ``NAME`` (an empty variable counts as unset)."""

from __future__ import annotations

import os
from collections.abc import Mapping


class EnvProvider:
    name = "env"

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env = os.environ if env is None else env  # os.environ itself: later changes are seen

    def get(self, secret: str) -> str | None:
        return self._env.get(secret) or None

    def check(self) -> None:
        return None

    def where(self) -> str:
        return "the process environment"
