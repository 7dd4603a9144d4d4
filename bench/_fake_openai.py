"""A paced, time-stamping OpenAI-compatible server in its own process, for the ``llm_*`` e2e benchmarks.

tests/fakes/llm_servers.py answers from a script in a thread of the test process; here
the server must keep 200 paced streams going while the benchmark process reads 6,000
SSE frames a second, so it gets its own process (and its own GIL). What it streams is
set by the last user message, ``bench tokens=<n> rate=<per second>`` (rate 0 = all at
once); token ``i`` is written at ``start + i / rate`` (never early, caught up if late),
so 200 streams at 30/s offer 6,000 tokens/s however busy the machine. Every text piece
is ``<unix time it was written> `` so a client downstream can tell, without any side
channel, how long each token took to reach it; the first piece carries the time the
response's first byte (the status line) was written instead.
HTTP/1.1 keep-alive, so the SDKs reuse connections as they would with a real provider.

``POST /v1/embeddings`` answers at once, a whole batch per request, with a deterministic
vector per input text (SHAKE-256 of the text, of the requested ``dimensions``), as floats or
as the SDK's default base64 float32: the knowledge benchmarks' embedding service.

    python -m bench._fake_openai     # prints "port <n>" once listening on 127.0.0.1
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import re
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from bench.common import PROJECT_ROOT, PYTHON, stop_process

_SPEC = re.compile(r"tokens=(\d+)\s+rate=([\d.]+)")
_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)


def _chunk(model: str, delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> bytes:
    body: dict[str, Any] = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": model,
        "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }
    data = f"data: {json.dumps(body, separators=(',', ':'))}\n\n".encode()
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _spec(request: dict[str, Any]) -> tuple[int, float]:
    for message in reversed(request.get("messages") or []):
        if message.get("role") == "user":
            match = _SPEC.search(str(message.get("content") or ""))
            if match:
                return int(match.group(1)), float(match.group(2))
    return 5, 0.0


async def _until(due: float) -> None:
    """Sleep until ``time.monotonic()`` reaches ``due``; return at once if it already has.

    Token ``i`` of a stream is due at ``start + i / rate`` on one absolute schedule, so a
    late wake-up (a busy machine) is caught up by the next tokens instead of pushing every
    later one back, and the server offers exactly ``rate`` per stream. The clock is read
    afresh, not ``loop.time()``: uvloop caches that per loop iteration and rounds timers to
    whole milliseconds, so one sleep may end a little early; the loop sleeps again then,
    so no token is ever written before it is due.
    """
    while (remaining := due - time.monotonic()) > 0:
        await asyncio.sleep(remaining)


async def _stream(writer: asyncio.StreamWriter, request: dict[str, Any]) -> None:
    tokens, rate = _spec(request)
    model = str(request.get("model", "bench"))
    first_byte = time.time()
    started = time.monotonic()
    writer.write(_HEAD + _chunk(model, {"role": "assistant", "content": ""}))
    for index in range(tokens):
        if rate > 0:
            await _until(started + index / rate)
        stamp = first_byte if index == 0 else time.time()
        writer.write(_chunk(model, {"content": f"{stamp:.6f} "}))
        await writer.drain()
    writer.write(_chunk(model, {}, "stop"))
    if (request.get("stream_options") or {}).get("include_usage"):
        usage = {"prompt_tokens": 10, "completion_tokens": tokens, "total_tokens": 10 + tokens}
        writer.write(_chunk(model, None, usage=usage))
    data = b"data: [DONE]\n\n"
    writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\n\r\n")
    await writer.drain()


def _vector(text: str, dimensions: int) -> list[float]:
    return [(b - 127.5) / 128 for b in hashlib.shake_256(text.encode()).digest(dimensions)]


def embeddings_response(request: dict[str, Any]) -> bytes:
    """The whole HTTP response to ``POST /v1/embeddings``: one vector per input, in order."""
    inputs = request.get("input")
    texts = [inputs] if isinstance(inputs, str) else [str(t) for t in inputs or []]
    dimensions = int(request.get("dimensions") or 1536)
    as_base64 = request.get("encoding_format") == "base64"
    data = []
    for index, text in enumerate(texts):
        vector = _vector(text, dimensions)
        embedding: Any = (
            base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode() if as_base64 else vector
        )
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    tokens = sum(len(t.split()) for t in texts)
    body = json.dumps(
        {
            "object": "list",
            "data": data,
            "model": str(request.get("model", "bench")),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        },
        separators=(",", ":"),
    ).encode()
    head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    return head.encode() + body


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:  # keep-alive: one request after another on this connection
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            body = await reader.readexactly(length)
            request = json.loads(body) if body else {}
            if head.split(b" ", 2)[1].rstrip(b"/").endswith(b"/embeddings"):
                writer.write(embeddings_response(request))
                await writer.drain()
            else:
                await _stream(writer, request)
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def _main() -> None:
    server = await asyncio.start_server(_handle, "127.0.0.1", 0, backlog=1024)
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


@contextlib.contextmanager
def fake_openai() -> Iterator[tuple[str, subprocess.Popen]]:
    """Start the server process; yield its OpenAI base URL (``.../v1``) and the process."""
    process = subprocess.Popen(
        [PYTHON, "-m", "bench._fake_openai"],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # bounded: the child prints it or exits (EOF)
        if not line.startswith("port "):
            raise RuntimeError("the fake OpenAI server did not start")
        yield f"http://127.0.0.1:{int(line.split()[1])}/v1", process
    finally:
        stop_process(process, grace=5)


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.run(_main())
    except ImportError:
        asyncio.run(_main())
    except KeyboardInterrupt:
        sys.exit(0)
