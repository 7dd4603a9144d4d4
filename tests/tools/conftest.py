"""A local "external" HTTP server and a loopback canary for the outbound-HTTP tests."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest


@dataclass
class Recorder:
    requests: list[dict] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    # What /inject answers: text planted by a hostile page or API.
    inject_body: str = ""


class _Handler(BaseHTTPRequestHandler):
    recorder: Recorder

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def _record(self) -> dict:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        entry = {
            "method": self.command,
            "path": parts.path,
            "raw_path": self.path,
            "query": {k: v[-1] for k, v in parse_qs(parts.query).items()},
            "headers": {k: v for k, v in self.headers.items()},
            "body": body,
        }
        self.recorder.requests.append(entry)
        return entry

    def _send(self, status: int, body: bytes, content_type: str, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Set-Cookie", "session=server-cookie")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _dispatch(self) -> None:
        entry = self._record()
        path = entry["path"]
        if path.startswith("/redirect"):
            self._send(302, b"", "text/plain", {"Location": entry["query"].get("to", "/done")})
        elif path == "/big":
            self._send(200, b"x" * 200_000, "text/plain")
        elif path == "/slow":
            self.recorder.release.wait(10)
            self._send(200, b"late", "text/plain")
        elif path.endswith("/inject"):
            self._send(200, self.recorder.inject_body.encode(), "text/plain; charset=utf-8")
        elif path == "/text":
            self._send(200, b"plain words", "text/plain; charset=utf-8")
        else:
            # Echo everything, including credentials, the way a careless or hostile API might.
            payload = json.dumps(entry).encode()
            echo = {"X-Echo-Authorization": entry["headers"].get("Authorization", "")}
            self._send(200, payload, "application/json", echo)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch


@dataclass
class LocalServer:
    port: int
    recorder: Recorder

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def local_server(settings) -> Iterator[LocalServer]:
    """An HTTP server on 127.0.0.1, opened (that port only) through AGENT_HTTP_ALLOWED_HOSTS."""
    recorder = Recorder()
    handler = type("Handler", (_Handler,), {"recorder": recorder})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    settings.AGENT_HTTP_ALLOWED_HOSTS = [f"127.0.0.1:{port}"]
    try:
        yield LocalServer(port=port, recorder=recorder)
    finally:
        recorder.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


class Canary:
    """A listening socket on a loopback address nobody may reach; connections queue in its backlog."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            self.sock.bind((host, 0))
            self.sock.listen(16)
        except OSError:
            self.sock.close()
            raise
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]

    def connections(self) -> int:
        # A TCP handshake completes in the kernel even before accept(), so whatever tried
        # to connect is in the backlog by the time the refused call has returned.
        count = 0
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return count
            conn.close()
            count += 1


@pytest.fixture
def canary() -> Iterator[Canary]:
    c = Canary()
    try:
        yield c
    finally:
        c.sock.close()


@pytest.fixture
def canary6() -> Iterator[Canary]:
    """A canary on the IPv6 loopback, [::1]; skipped only on a machine that has none."""
    if not socket.has_ipv6:
        pytest.skip("no IPv6 canary: this Python was built without IPv6 (socket.has_ipv6 is False)")
    try:
        c = Canary("::1")
    except OSError as exc:
        pytest.skip(f"no IPv6 canary: this machine has no IPv6 loopback (binding [::1] failed: {exc})")
    try:
        yield c
    finally:
        c.sock.close()
