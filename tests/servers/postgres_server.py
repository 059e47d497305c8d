"""A real PostgreSQL server on 127.0.0.1 for tests (Debian's ``postgresql`` package, installed by
``tests/servers/install.sh``): ``initdb`` in a temporary directory, ``postgres`` on a free port with
durability switched off (throwaway data), one database per ``create_database()``.

PostgreSQL refuses to run as root; when the tests run as root the server runs as the ``postgres``
system user the package creates, in a directory it owns.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from tests.ports import free_port


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"PostgreSQL's {name} is missing: run tests/servers/install.sh")
    return path


class PostgresServer:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="st-pg-"))
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self._user: pwd.struct_passwd | None = pwd.getpwnam("postgres") if os.geteuid() == 0 else None

    def _as_server_user(self):
        user = self._user
        if user is None:
            return None

        def demote() -> None:
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
        return demote

    def start(self) -> "PostgresServer":
        os.chmod(self.dir, 0o755)
        data, sockets = self.dir / "data", self.dir / "sock"
        sockets.mkdir()
        if self._user is not None:
            for path in (self.dir, sockets):
                os.chown(path, self._user.pw_uid, self._user.pw_gid)
        subprocess.run([_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                        "--no-sync", "--locale=C"], check=True, capture_output=True, preexec_fn=self._as_server_user(),
                       timeout=120)
        log = open(self.dir / "postgres.log", "ab")
        self.proc = subprocess.Popen(
            [_bin("postgres"), "-D", str(data), "-p", str(self.port), "-k", str(sockets),
             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off", "-c", "max_connections=300"],
            stdout=log, stderr=subprocess.STDOUT, preexec_fn=self._as_server_user(), start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            ready = subprocess.run([_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)], capture_output=True)
            if ready.returncode == 0:
                return self
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"postgres did not start: {(self.dir / 'postgres.log').read_text()[-2000:]}")
            time.sleep(0.1)

    def create_database(self, name: str | None = None, template: str | None = None) -> str:
        """A fresh database (a copy of ``template`` when given, else empty); its SQLAlchemy URL."""
        name = name or f"st_{uuid.uuid4().hex[:12]}"
        subprocess.run([_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                        *(["-T", template] if template else []), name], check=True, capture_output=True, timeout=60)
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # smart shutdown; fast enough with fsync off
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "PostgresServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
