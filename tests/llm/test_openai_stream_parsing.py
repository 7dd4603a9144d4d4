"""The openai provider reads streams as raw SSE bytes: framing, in-stream errors, connection reuse.

tests/fakes/llm_servers.py always frames events one way and closes each connection. Real
servers split events across reads, end lines with CRLF, send ``:`` keep-alive comments,
report errors inside a 200 stream and keep connections alive; this server sends exactly
the bytes a test scripts, on a keep-alive connection, and counts connections.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque

import pytest

from runtime.llm import LLMServerError, LLMStreamInterrupted, get_llm_client
from tests.fakes.sink import make_context, run_in_context


def _event(payload: dict, *, eol: bytes = b"\n") -> bytes:
    return b"data: " + json.dumps(payload).encode() + eol + eol


def _chunk(delta: dict, finish: str | None = None, **extra) -> dict:
    return {
        "id": "chatcmpl-raw",
        "object": "chat.completion.chunk",
        "model": "raw-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }


USAGE = {
    "id": "chatcmpl-raw",
    "object": "chat.completion.chunk",
    "model": "raw-model",
    "choices": [],
    "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9},
}


class RawSSEServer:
    """Answers each request with the next scripted list of body writes (chunked, keep-alive)."""

    def __init__(self) -> None:
        self.script: deque[list[bytes]] = deque()
        self.connections = 0
        self.requests = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self.port = 0

    def __enter__(self) -> RawSSEServer:
        self._thread.start()
        assert self._ready.wait(10), "the raw SSE server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stop.wait()
        server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:  # keep-alive: one request after another
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                await reader.readexactly(length)
                self.requests += 1
                if not self.script:  # unscripted: a test asked for more than it expected
                    return
                writes = self.script.popleft()
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                    b"transfer-encoding: chunked\r\n\r\n"
                )
                for data in writes:
                    if data is CUT:
                        writer.transport.abort()
                        return
                    writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                    await writer.drain()
                    await asyncio.sleep(0.001)  # separate reads on the client side
                writer.write(b"0\r\n\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


CUT = b"<cut>"


@pytest.fixture(scope="module")
def _raw_server():
    with RawSSEServer() as server:
        yield server


@pytest.fixture
def raw_server(_raw_server, fast_llm):
    _raw_server.script.clear()
    _raw_server.requests = 0
    fast_llm.OPENAI_API_KEY = "sk-test-key"
    fast_llm.OPENAI_BASE_URL = f"http://127.0.0.1:{_raw_server.port}/v1"
    return _raw_server


def run_generate(**kwargs):
    ctx, sink = make_context("Hi")
    response = asyncio.run(
        run_in_context(ctx, lambda: get_llm_client("openai:raw-model").generate(ctx.input_messages, **kwargs))
    )
    return response, sink


def test_events_split_across_reads_with_crlf_and_comments_are_read_whole(raw_server, settings):
    settings.AGENT_LLM_TIMEOUT = 10  # one byte a millisecond: an event takes ~0.2 s to arrive
    body = (
        b": keep-alive comment\r\n\r\n"
        + _event(_chunk({"role": "assistant", "content": ""}), eol=b"\r\n")
        + _event(_chunk({"content": "Olá, "}), eol=b"\r\n")
        + _event(_chunk({"content": "mundo"}), eol=b"\r")
        + b"event: ignored\r\n"
        # one event's JSON over several CRLF-ended data: lines (joined with newlines)
        + b"".join(
            b"data: " + line.encode() + b"\r\n"
            for line in json.dumps(_chunk({}, "stop"), indent=1).splitlines()
        )
        + b"\r\n"
        + _event(USAGE)
        + b"data: [DONE]\r\n\r\n"
    )
    # every byte in its own write: lines, CRLF pairs and UTF-8 characters are all split
    raw_server.script.append([body[i : i + 1] for i in range(len(body))])
    response, sink = run_generate()
    assert sink.streamed_text() == "Olá, mundo"
    assert response.content == "Olá, mundo"
    assert response.finish_reason == "stop"
    assert response.usage == {"prompt_tokens": 7, "completion_tokens": 2}


def test_multi_line_data_and_tool_call_fragments(raw_server):
    call = _chunk(
        {"tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "f"}}]}
    )
    # one event's JSON spread over several data: lines (joined with newlines, still JSON)
    multi = b"".join(b"data: " + line.encode() + b"\n" for line in json.dumps(call, indent=1).splitlines())
    raw_server.script.append(
        [
            multi + b"\n",
            _event(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"x": '}}]})),
            _event(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]})),
            _event(_chunk({}, "tool_calls")),
            b"data: [DONE]\n\n",
        ]
    )
    response, sink = run_generate()
    assert response.tool_calls == [
        {"id": "call_a", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}
    ]
    assert response.finish_reason == "tool_calls" and sink.of_type("assistant.delta") == []


def test_an_error_inside_the_stream_before_any_text_is_retried(raw_server):
    raw_server.script.extend(
        [
            [_event({"error": {"message": "model overloaded", "type": "server_error"}})],
            [_event(_chunk({"content": "ok"})), _event(_chunk({}, "stop")), b"data: [DONE]\n\n"],
        ]
    )
    response, _ = run_generate()
    assert response.content == "ok"
    assert raw_server.requests == 2


def test_an_error_inside_the_stream_after_text_fails_the_attempt_as_retryable(raw_server):
    error = _event({"error": {"message": "model overloaded", "type": "server_error"}})
    raw_server.script.append([_event(_chunk({"content": "Part"})), error])
    with pytest.raises(LLMStreamInterrupted, match="model overloaded") as info:
        run_generate()
    assert info.value.retryable is True
    assert isinstance(info.value.__cause__, LLMServerError)
    assert raw_server.requests == 1


def test_a_stream_that_sends_non_json_is_a_retryable_server_error(raw_server):
    raw_server.script.extend([[b"data: {not json\n\n"]] * 3)
    with pytest.raises(LLMServerError, match="not JSON") as info:
        run_generate()
    assert info.value.retryable is True


def test_a_cut_stream_after_text_is_interrupted(raw_server):
    raw_server.script.append([_event(_chunk({"content": "Part"})), CUT])
    with pytest.raises(LLMStreamInterrupted):
        run_generate()
    assert raw_server.requests == 1


def test_the_connection_is_reused_after_done(raw_server):
    """Reading past [DONE] to the end of the body returns the connection to the pool."""
    answer = [_event(_chunk({"content": "hi"})), _event(_chunk({}, "stop")), b"data: [DONE]\n\n"]
    raw_server.script.extend([list(answer), list(answer)])
    before = raw_server.connections

    async def twice():
        ctx, _ = make_context("Hi")
        client = get_llm_client("openai:raw-model")
        first = await run_in_context(ctx, lambda: client.generate(ctx.input_messages))
        second = await run_in_context(ctx, lambda: client.generate(ctx.input_messages))
        return first, second

    first, second = asyncio.run(twice())
    assert first.content == second.content == "hi"
    assert raw_server.connections - before == 1
