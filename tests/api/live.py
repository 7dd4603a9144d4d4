"""A real uvicorn process serving the project against the test database, and an SSE reader."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url(settings_dict: dict) -> str:
    """A DATABASE_URL for the database ``settings_dict`` points at (the test database)."""
    user = quote(settings_dict.get("USER") or "")
    password = quote(settings_dict.get("PASSWORD") or "")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or ""
    port = settings_dict.get("PORT") or ""
    name = settings_dict["NAME"]
    if host.startswith("/"):  # a unix socket directory
        return f"postgres://{auth}/{name}?host={quote(host)}" + (f"&port={port}" if port else "")
    return f"postgres://{auth}{host}{':' + str(port) if port else ''}/{name}"


@dataclass
class Server:
    base_url: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextmanager
def uvicorn_server(settings_dict: dict, tmp_path: Path, **env: str) -> Iterator[Server]:
    port = free_port()
    log_path = tmp_path / f"uvicorn-{port}.log"
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(settings_dict),
        "AGENT_SSE_KEEPALIVE_SECONDS": "0.5",
        **env,
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "config.asgi:application",
                "--port",
                str(port),
                "--no-access-log",
            ],
            cwd=ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", process, log_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"uvicorn exited early:\n{server.log()}")
            try:
                httpx.get(f"{server.base_url}/api/schema/", timeout=1.0)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"uvicorn did not start in 30 s:\n{server.log()}") from None
                time.sleep(0.05)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Frame:
    id: int | None
    event: str | None
    data: str | None
    comment: bool = False


@dataclass
class Parsed:
    frames: list[Frame] = field(default_factory=list)
    retry: int | None = None
    rest: bytes = b""


def parse_sse(raw: bytes) -> Parsed:
    """Complete frames only: a frame counts when its blank line arrived, as in EventSource."""
    parsed = Parsed()
    text = raw.replace(b"\r\n", b"\n")
    *blocks, parsed.rest = text.split(b"\n\n")
    for block in blocks:
        frame = Frame(None, None, None)
        for line in block.decode().split("\n"):
            if line.startswith(":"):
                frame.comment = True
            elif line.startswith("retry: "):
                parsed.retry = int(line[7:])
            elif line.startswith("id: "):
                frame.id = int(line[4:])
            elif line.startswith("event: "):
                frame.event = line[7:]
            elif line.startswith("data: "):
                frame.data = line[6:]
        parsed.frames.append(frame)
    return parsed


def read_stream(
    url: str,
    *,
    headers: dict[str, str] | None = None,
    cut_after: int | None = None,
    timeout: float = 20.0,
    max_seconds: float = 15.0,
) -> tuple[int, bytes, bool]:
    """GET an event stream; stop after ``cut_after`` bytes (closing mid-frame), after
    ``max_seconds``, or at its end. Returns (status, bytes kept, ended_by_server).
    """
    kept = b""
    deadline = time.monotonic() + max_seconds
    with (
        httpx.Client(timeout=timeout) as client,
        client.stream("GET", url, headers=headers or {}) as response,
    ):
        if response.status_code != 200:
            return response.status_code, response.read(), True
        for chunk in response.iter_raw():
            kept += chunk
            if cut_after is not None and len(kept) >= cut_after:
                return 200, kept[:cut_after], False
            if time.monotonic() > deadline:
                return 200, kept, False
    return 200, kept, True
