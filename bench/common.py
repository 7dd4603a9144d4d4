"""Helpers every benchmark may use: a throw-away database, Django set-up, owned processes.

Benchmarks never touch the project database: each gets ``bench_<pid>`` (or
another prefix) on the same PostgreSQL server, migrated from scratch and
dropped at the end, so figures do not depend on what the database holds.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import psutil
import psycopg
from psycopg import sql

from tests.processes import wait_until  # noqa: F401  (the benchmarks import it from here)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
# Base settings: DEBUG off (dev settings turn it on, and Django then keeps every query in memory).
SETTINGS = "config.settings.base"
REGISTRY = "bench.agents:register_agents"


def server_url() -> str:
    """The PostgreSQL to benchmark on: ``DATABASE_URL`` if set, else the embedded server."""
    url = os.environ.get("BENCH_SERVER_URL") or os.environ.get("DATABASE_URL")
    if url:
        return url
    from config.embedded_pg import database_url

    return database_url()


def url_for(url: str, dbname: str) -> str:
    """The same server and credentials, another database."""
    return urlunparse(urlparse(url)._replace(path=f"/{dbname}"))


def _admin(url: str) -> psycopg.Connection:
    return psycopg.connect(url_for(url, "postgres"), autocommit=True)


def drop_stale_databases(url: str) -> list[str]:
    """Drop ``bench*_<pid>`` databases left behind by benchmark processes that no longer exist."""
    dropped = []
    with _admin(url) as conn:
        names = [
            row[0] for row in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'bench%%'")
        ]
        for name in names:
            match = re.fullmatch(r"bench[a-z]*_(\d+)", name)
            if match and not psutil.pid_exists(int(match.group(1))):
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
                dropped.append(name)
    return dropped


@contextlib.contextmanager
def dedicated_database(*, prefix: str = "bench", migrate: bool = True) -> Iterator[str]:
    """Create ``<prefix>_<pid>``, migrate it (``manage.py migrate``), yield its URL, drop it."""
    base = server_url()
    name = f"{prefix}_{os.getpid()}"
    ident = sql.Identifier(name)
    with _admin(base) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))
    url = url_for(base, name)
    try:
        if migrate:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            subprocess.run(
                [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"],
                cwd=PROJECT_ROOT,
                env=django_env(url),
                check=True,
                timeout=300,
            )
        yield url
    finally:
        with _admin(base) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))


def django_env(url: str, **extra: str) -> dict[str, str]:
    """Environment for a Django process (manage.py, a worker) on the benchmark database."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=url,
        DJANGO_SETTINGS_MODULE=SETTINGS,
        AGENT_RUNTIME_REGISTRY=REGISTRY,
        PYTHONPATH=str(PROJECT_ROOT),
    )
    env.update(extra)
    return env


def setup_django(url: str, **extra: str) -> None:
    """Configure Django in this process against ``url`` (call once, before importing models)."""
    os.environ.update(django_env(url, **extra))
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))
    import django

    django.setup()


def process_tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def cpu_seconds(procs: list[psutil.Process]) -> float:
    """User + system CPU of these processes (a vanished process counts as 0)."""
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def stop_process(popen: subprocess.Popen, *, grace: float = 15.0) -> None:
    """SIGTERM the process we started (and, if it does not exit in time, SIGKILL it and its children)."""
    if popen.poll() is not None:
        return
    children = process_tree(popen.pid)[1:]
    popen.send_signal(signal.SIGTERM)
    try:
        popen.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        for proc in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        popen.kill()
        popen.wait(timeout=10)
    for proc in children:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.TimeoutExpired):
            proc.wait(timeout=5)


def markdown_table(rows: list[dict]) -> str:
    if not rows:
        return "(no rows)"
    columns: list[str] = []
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(col, "")) for col in columns) + " |")
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.2f}"
    return str(value).replace("|", "\\|")


def page_p50(client, url: str, *, repeats: int) -> tuple[float, int]:
    """Server time of one page through Django's test client: p50 in ms of ``repeats`` requests
    after three warm-ups, and the number of queries one request makes."""
    import statistics
    import time

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(3):
        assert client.get(url).status_code == 200, url
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    with CaptureQueriesContext(connection) as ctx:
        client.get(url)
    return statistics.median(times), len(ctx.captured_queries)


def cpu_p50(client, url: str, *, repeats: int) -> float:
    """This process's CPU time per request (p50, ms): on a loaded machine wall time mostly
    measures the wait for a core, CPU time what the page itself costs."""
    import statistics
    import time

    times = []
    for _ in range(repeats):
        started = time.process_time()
        client.get(url)
        times.append((time.process_time() - started) * 1000)
    return statistics.median(times)
