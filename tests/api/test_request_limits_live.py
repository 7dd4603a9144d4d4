"""Bodies over REQUEST_MAX_BYTES under a real uvicorn: 413 before the body is read, JSON or a page."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest
from django.db import connection

from runtime.models import AgentRun
from tests.api.conftest import API, say
from tests.api.live import uvicorn_server

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker, tmp_path_factory):
    with django_db_blocker.unblock():
        settings_dict = dict(connection.settings_dict)
    with uvicorn_server(
        settings_dict,
        tmp_path_factory.mktemp("uvicorn-limits"),
        REQUEST_MAX_BYTES=str(LIMIT),
        UPLOAD_MAX_BYTES=str(LIMIT * 4),
    ) as running:
        yield running


def _chunks(total: int, size: int = 16 * 1024):
    sent = 0
    while sent < total:
        yield b" " * min(size, total - sent)
        sent += size


def test_declared_length_over_the_limit_is_a_413_json_error(server, owner_token):
    body = json.dumps({"agent_key": "echo", "messages": say("x" * (LIMIT * 2))})
    response = httpx.post(
        f"{server.base_url}{API}/runs/",
        content=body,
        headers={"Authorization": f"Token {owner_token}", "Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert not AgentRun.objects.exists()


def test_chunked_body_over_the_limit_is_a_413(server, owner_token):
    response = httpx.post(
        f"{server.base_url}{API}/runs/",
        content=_chunks(LIMIT * 4),
        headers={"Authorization": f"Token {owner_token}", "Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


def test_builder_page_over_the_limit_is_a_readable_413(server):
    response = httpx.post(f"{server.base_url}/import/", content=b"text=" + b"x" * (LIMIT * 2), timeout=10)
    assert response.status_code == 413
    assert "text/html" in response.headers["content-type"]
    assert "at most 64 KB in one request" in response.text


def test_a_huge_declared_length_is_answered_without_waiting_for_the_body(server):
    host, port = server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            f"POST {API}/runs/ HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            "Content-Length: 10000000000\r\n\r\n".encode()
        )
        started = time.monotonic()
        head = sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 413"), head
    assert time.monotonic() - started < 5


def test_bodies_within_the_limit_still_work(server, owner_token):
    body = json.dumps({"agent_key": "echo", "messages": say("hello")}).encode()
    headers = {"Authorization": f"Token {owner_token}", "Content-Type": "application/json"}
    plain = httpx.post(f"{server.base_url}{API}/runs/", content=body, headers=headers, timeout=10)
    assert plain.status_code == 201, plain.text
    chunked = httpx.post(
        f"{server.base_url}{API}/runs/", content=iter([body[:10], body[10:]]), headers=headers, timeout=10
    )
    # it reaches the view (which, like DRF under any server, reads no body without a length)
    assert chunked.status_code == 400 and chunked.json()["error"]["code"] == "invalid"


def test_file_uploads_have_their_own_larger_cap(server):
    # a knowledge file may be far larger than a JSON body: multipart bodies are held to UPLOAD_MAX_BYTES
    def upload(size: int) -> httpx.Response:
        files = {"file": ("notes.txt", b"x" * size, "text/plain")}
        return httpx.post(f"{server.base_url}/import/", files=files, timeout=10)

    assert upload(LIMIT * 2).status_code != 413  # over REQUEST_MAX_BYTES, under UPLOAD_MAX_BYTES
    too_big = upload(LIMIT * 5)
    assert too_big.status_code == 413
    assert "at most 256 KB in one request" in too_big.text
