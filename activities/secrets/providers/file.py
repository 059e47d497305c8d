"""A local file of secrets: a flat JSON or YAML mapping of ``NAME: value`` (by the file's suffix).

The file is refused while group or others have any access to it (``mode & 0o077``): it must be
``chmod 600``. It is read again whenever its inode, size, modification time or mode changes (one
``stat`` per lookup), so a rewritten file is seen at once; replace it atomically (write a new file,
then rename it over the old one) so a reader never sees half of it.
"""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import yaml

from activities.secrets.providers.base import SecretProviderError

SUFFIXES = {".json": "JSON", ".yaml": "YAML", ".yml": "YAML"}
DEFAULT_DIR = ".simpletuner"
DEFAULT_NAMES = ("secrets.json", "secrets.yaml", "secrets.yml")


def default_path(home: Path) -> Path | None:
    """The first of ``~/.simpletuner/secrets.json``, ``.yaml``, ``.yml`` that exists."""
    return next((p for p in (home / DEFAULT_DIR / n for n in DEFAULT_NAMES) if p.exists()), None)


class FileProvider:
    name = "file"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._signature: tuple[int, int, int, int] | None = None
        self._values: dict[str, str] = {}
        self._lock = threading.Lock()

    def _fail(self, reason: str, secret: str | None = None) -> SecretProviderError:
        return SecretProviderError(self.name, secret, f"{self.path}: {reason}")

    def values(self, secret: str | None = None) -> dict[str, str]:
        """Every name -> value of the file, read again when it changed."""
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise self._fail(f"cannot read: {exc.strerror}", secret) from None
        signature = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode)
        with self._lock:
            if signature == self._signature:
                return self._values
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            raise self._fail(f"mode {mode:04o} lets group or others access it; allowed only for its owner "
                             "(chmod 600)", secret)
        if not stat.S_ISREG(st.st_mode):
            raise self._fail("not a regular file", secret)
        values = self._parse(secret)
        with self._lock:
            self._signature, self._values = signature, values
        return values

    def _parse(self, secret: str | None) -> dict[str, str]:
        kind = SUFFIXES.get(self.path.suffix.lower())
        if kind is None:
            raise self._fail("the name must end in .json, .yaml or .yml (the format follows the suffix)", secret)
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeError) as exc:
            raise self._fail(f"cannot read: {getattr(exc, 'strerror', None) or type(exc).__name__}", secret) from None
        try:
            data = json.loads(text) if kind == "JSON" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            mark = getattr(exc, "problem_mark", None)
            line = exc.lineno if isinstance(exc, json.JSONDecodeError) else (mark.line + 1 if mark else "?")
            raise self._fail(f"not valid {kind} (line {line})", secret) from None  # no excerpt: it may hold a value
        if data is None and kind == "YAML":
            return {}
        if not isinstance(data, dict):
            raise self._fail("must be a mapping of secret name to value", secret)
        bad = sorted(str(k) for k, v in data.items() if not isinstance(k, str) or not isinstance(v, str))
        if bad:
            raise self._fail(f"every value must be a string; not so for {', '.join(bad[:5])}", secret)
        return dict(data)

    def get(self, secret: str) -> str | None:
        return self.values(secret).get(secret) or None

    def check(self) -> None:
        self.values()

    def where(self) -> str:
        return str(self.path)
