"""Shared parts of the ``sse_*`` benchmarks: a uvicorn process, a user, and raw SSE clients.

The clients speak HTTP/1.1 over plain asyncio streams (no client library), so a
thousand of them fit in one process and what is measured is the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psutil

from bench.common import PROJECT_ROOT, PYTHON, django_env, stop_process, wait_until

SSE_SETTINGS = "bench._sse_settings"


def raise_fd_limit(wanted: int = 16384) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(hard, max(soft, wanted))
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Uvicorn:
    port: int
    process: subprocess.Popen

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss(self) -> int:
        return psutil.Process(self.process.pid).memory_info().rss


@contextlib.contextmanager
def uvicorn(url: str, *, workers: int = 1, settings: str = SSE_SETTINGS, **env: str) -> Iterator[Uvicorn]:
    """uvicorn (``workers`` processes) serving the project and the plain endpoint on ``url``'s database."""
    raise_fd_limit()
    port = free_port()
    environment = django_env(url, DJANGO_SETTINGS_MODULE=settings, LOG_LEVEL="WARNING", **env)
    process = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--port",
            str(port),
            "--no-access-log",
            "--backlog",
            "4096",
            "--log-level",
            "warning",
            "--workers",
            str(workers),
        ],
        cwd=PROJECT_ROOT,
        env=environment,
    )
    server = Uvicorn(port, process)

    def up() -> bool:
        if process.poll() is not None:
            raise RuntimeError("uvicorn exited during start-up")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
        return False

    try:
        wait_until(up, timeout=60, what="uvicorn to listen")
        yield server
    finally:
        stop_process(process)


def make_user_token() -> tuple[object, str]:
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    user, _ = get_user_model().objects.get_or_create(username="bench-sse", defaults={"is_staff": True})
    token, _ = Token.objects.get_or_create(user=user)
    return user, token.key


@dataclass
class SseClient:
    """One open stream; ``seen`` maps a marker to the wall-clock time it first arrived."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    buffer: bytearray = field(default_factory=bytearray)
    seen: dict[bytes, float] = field(default_factory=dict)

    async def wait_for(self, marker: bytes, timeout: float = 30.0) -> float:
        if marker in self.buffer:  # arrived with an earlier read
            self.seen.setdefault(marker, time.time())
            del self.buffer[: self.buffer.index(marker) + len(marker)]
            return self.seen[marker]
        async with asyncio.timeout(timeout):
            while marker not in self.buffer:
                chunk = await self.reader.read(65536)
                if not chunk:
                    raise ConnectionError("stream closed")
                now = time.time()
                self.buffer += chunk
                if marker in self.buffer:
                    self.seen[marker] = now
                    del self.buffer[: self.buffer.index(marker) + len(marker)]
                    return now
                # keep only a tail long enough to hold a marker split across reads
                del self.buffer[: max(0, len(self.buffer) - 4096)]
        return self.seen[marker]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


async def open_stream(port: int, path: str, headers: dict[str, str] | None = None) -> SseClient:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Accept: text/event-stream"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        writer.close()
        raise ConnectionError(head.split(b"\r\n", 1)[0].decode())
    client = SseClient(reader, writer)
    await client.wait_for(b"retry: 2000")
    return client


class ApiClient:
    """JSON requests over keep-alive HTTP/1.1 connections on plain asyncio streams.

    Like the stream clients, and for the same reason: an HTTP client library costs the
    benchmark process 2-3 ms of CPU per request on these two cores, which would be
    counted as server latency.
    """

    def __init__(self, port: int, headers: dict[str, str] | None = None) -> None:
        self.port = port
        self.headers = headers or {}
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        reader, writer = (
            self._idle.pop() if self._idle else await asyncio.open_connection("127.0.0.1", self.port)
        )
        data = json.dumps(body).encode() if body is not None else b""
        lines = [
            f"{method} {path} HTTP/1.1",
            f"Host: 127.0.0.1:{self.port}",
            "Content-Type: application/json",
            f"Content-Length: {len(data)}",
            *(f"{name}: {value}" for name, value in self.headers.items()),
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + data)
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
        status = int(head.split(" ", 2)[1])
        length = int(head.split("content-length:", 1)[1].split("\r\n", 1)[0])
        payload = await reader.readexactly(length)
        if "connection: close" in head:
            writer.close()
        else:
            self._idle.append((reader, writer))
        return status, json.loads(payload) if payload else None

    def close(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()


async def open_many(
    port: int, paths: list[str], headers: dict[str, str], *, parallel: int = 50
) -> list[SseClient]:
    """Open one stream per path, ``parallel`` at a time."""
    semaphore = asyncio.Semaphore(parallel)

    async def one(path: str) -> SseClient:
        async with semaphore:
            return await open_stream(port, path, headers)

    return list(await asyncio.gather(*(one(path) for path in paths)))


def db_connections(url: str) -> int:
    """Client connections to the benchmark database, other than the one asking."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        ).fetchone()[0]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


def run_loop(coro):
    """Run the clients on uvloop when it is installed: the client's own overhead inflates the figures."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return asyncio.run(coro, loop_factory=uvloop.new_event_loop)


def idle_streams(url: str, paths: list[str], headers: dict[str, str], *, n: int, warm: int) -> dict:
    """Open ``warm`` streams, then ``n`` more against one uvicorn; memory per connection and DB
    connections held, from the web process's RSS and ``pg_stat_activity`` before and after."""
    with uvicorn(url) as server:

        async def scenario() -> dict:
            first = await open_many(server.port, paths[:warm], headers)
            await asyncio.sleep(1.0)  # let the warm-up settle before the baseline reading
            before = server.rss()
            held_warm = db_connections(url)
            started = time.perf_counter()
            clients = await open_many(server.port, paths[warm : warm + n], headers)
            opened = time.perf_counter() - started
            await asyncio.sleep(1.0)
            after = server.rss()
            held = db_connections(url)
            for client in first + clients:
                client.close()
            return {
                "per_conn_kb": (after - before) / n / 1024,
                "db_conns": f"{held_warm} / {held}",
                "open_s": opened,
                "rss_mb": after / 1e6,
            }

        return run_loop(scenario())
