"""Real processes for tests: ``runagent`` workers and uvicorn servers on the test database."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WaitTimeout(AssertionError, TimeoutError):
    """A wait gave up: a failed assertion in a test, a TimeoutError to a benchmark."""


def wait_until(
    predicate: Callable[[], object], what: str = "", *, timeout: float = 15.0, every: float = 0.02
) -> object:
    """Poll ``predicate`` until it returns something truthy (returned), or fail after ``timeout`` seconds.

    The one poll-with-a-deadline of the tests and benchmarks (``until`` is its async twin).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for {what or predicate}")
        time.sleep(every)


async def until(
    predicate: Callable[[], object], what: str = "", *, timeout: float = 10.0, every: float = 0.01
) -> object:
    """``wait_until`` for a coroutine: polls in a thread, so the event loop goes on meanwhile."""
    return await asyncio.to_thread(wait_until, predicate, what, timeout=timeout, every=every)


def test_database_url() -> str:
    """A DATABASE_URL for the database this test session uses (the test database)."""
    s = connection.settings_dict
    host = s["HOST"]
    query = f"?host={quote(host)}" if host.startswith("/") else ""
    netloc = "" if host.startswith("/") else f"{host}:{s['PORT'] or 5432}"
    auth = quote(s["USER"] or "") + (f":{quote(s['PASSWORD'])}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{netloc}/{s['NAME']}{query}"


def process_env(**overrides: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": test_database_url(),
        "PYTHONUNBUFFERED": "1",
    }
    env.update(overrides)
    return env


class WorkerProcess:
    """``manage.py runagent`` in a subprocess; stopped (by its own pid) when the test ends."""

    def __init__(self, *args: str, **env: str) -> None:
        self.args = ["--noreload", "--queue-poll-interval", "0.2", *args]
        self.env = process_env(**env)
        self.proc: subprocess.Popen | None = None

    def start(self) -> WorkerProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "runagent", *self.args],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def signal(self, sig: int) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def stop(self, timeout: float = 20) -> str:
        """SIGTERM, wait, and return what the worker logged."""
        if self.proc is None:
            return ""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return out or ""

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
