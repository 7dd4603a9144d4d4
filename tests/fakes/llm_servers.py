"""Local servers that speak the OpenAI Chat Completions and Anthropic Messages wire protocols.

The real SDKs talk to them over HTTP on 127.0.0.1, so the tests exercise the same code
paths as production: SSE parsing, chunked bodies, status codes and headers. Each server
runs its own asyncio loop in a thread and answers requests from a script::

    with FakeOpenAIServer() as server:
        server.push(Text(["Hel", "lo"]), Status(429, headers={"Retry-After": "1"}), Hang())
        ...  # the next three requests get those behaviours, then Text() by default
        server.requests  # what the client sent (path, headers, json)

Behaviours: :class:`Text` (streamed or not, as the request asks), :class:`ToolCalls`,
:class:`Status` (an error status with the provider's error body), :class:`Hang` (read the
request, never answer), :class:`Cut` (stream some events, then drop the connection).
"""

from __future__ import annotations

import asyncio
import collections
import json
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Text:
    pieces: list[str] = field(default_factory=lambda: ["Hello", " from", " the", " fake", " model."])
    prompt_tokens: int = 11
    delay: float = 0.0  # seconds between streamed pieces
    # reported the way each provider does: OpenAI counts cached prompt tokens inside
    # prompt_tokens and reasoning inside completion_tokens; Anthropic counts cache reads and
    # writes apart from input_tokens (and has no reasoning count)
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass
class ToolCalls:
    # (name, arguments) pairs; arguments are streamed in fragments of ``fragment`` characters
    calls: list[tuple[str, dict[str, Any]]]
    text: str = ""
    fragment: int = 7
    prompt_tokens: int = 20


@dataclass
class Status:
    code: int
    message: str = "scripted error"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Hang:
    """Read the request and never answer (until the server stops)."""


@dataclass
class Cut:
    """Stream the first ``after`` pieces of ``pieces``, then drop the connection mid-body."""

    pieces: list[str] = field(default_factory=lambda: ["Partial", " answer", " that", " never", " ends"])
    after: int = 2


Behaviour = Text | ToolCalls | Status | Hang | Cut


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    json: dict[str, Any]


class FakeLLMServer(ABC):
    """The transport: HTTP/1.1 over asyncio, chunked bodies, one request per connection."""

    def __init__(self) -> None:
        self.script: collections.deque[Behaviour] = collections.deque()
        self.requests: list[Request] = []
        self.default: Behaviour = Text()
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._stopping: asyncio.Event | None = None
        self._server: asyncio.Server | None = None

    # lifecycle ---------------------------------------------------------------------------
    def start(self) -> FakeLLMServer:
        self._thread = threading.Thread(target=self._serve, name=type(self).__name__, daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("the fake LLM server did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        self._started.set()
        await self._stopping.wait()
        self._server.close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def push(self, *behaviours: Behaviour) -> None:
        self.script.extend(behaviours)

    # HTTP --------------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await self._read_request(reader)
            if request is None:
                return
            self.requests.append(request)
            behaviour = self.script.popleft() if self.script else self.default
            await self._respond(behaviour, request, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _read_request(self, reader: asyncio.StreamReader) -> Request | None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        if not lines or not lines[0]:
            return None
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
        return Request(method, path, headers, json.loads(body) if body else {})

    async def _respond(self, behaviour: Behaviour, request: Request, writer: asyncio.StreamWriter) -> None:
        if isinstance(behaviour, Hang):
            assert self._stopping is not None
            await self._stopping.wait()
            return
        if isinstance(behaviour, Status):
            body = json.dumps(self.error_body(behaviour)).encode()
            headers = {
                "content-type": "application/json",
                "content-length": str(len(body)),
                **behaviour.headers,
            }
            await self._write_head(writer, behaviour.code, headers)
            writer.write(body)
            await writer.drain()
            return
        stream = bool(request.json.get("stream"))
        if not stream:
            if isinstance(behaviour, Cut):  # a non-streamed body cut short
                await self._write_head(
                    writer, 200, {"content-type": "application/json", "content-length": "500"}
                )
                writer.write(b'{"id": "cut')
                await writer.drain()
                writer.transport.abort()
                return
            body = json.dumps(self.complete_body(behaviour, request)).encode()
            await self._write_head(
                writer, 200, {"content-type": "application/json", "content-length": str(len(body))}
            )
            writer.write(body)
            await writer.drain()
            return
        await self._write_head(
            writer,
            200,
            {
                "content-type": "text/event-stream",
                "transfer-encoding": "chunked",
                "cache-control": "no-cache",
            },
        )
        events = self.stream_events(behaviour, request)
        delay = behaviour.delay if isinstance(behaviour, Text) else 0.0
        for index, frame in enumerate(events):
            if isinstance(behaviour, Cut) and index >= behaviour.after + self.preamble_events:
                # drop the connection without the terminating chunk: a broken body
                writer.transport.abort()
                return
            data = frame.encode()
            writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            await writer.drain()
            if delay:
                await asyncio.sleep(delay)
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async def _write_head(self, writer: asyncio.StreamWriter, code: int, headers: dict[str, str]) -> None:
        reason = {200: "OK", 429: "Too Many Requests", 500: "Internal Server Error", 401: "Unauthorized"}.get(
            code, "Status"
        )
        lines = [f"HTTP/1.1 {code} {reason}", "connection: close", *(f"{k}: {v}" for k, v in headers.items())]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()

    # protocol, per provider ----------------------------------------------------------------
    preamble_events = 0

    @abstractmethod
    def error_body(self, behaviour: Status) -> dict[str, Any]: ...

    @abstractmethod
    def complete_body(self, behaviour: Behaviour, request: Request) -> dict[str, Any]: ...

    @abstractmethod
    def stream_events(self, behaviour: Behaviour, request: Request) -> list[str]: ...


def _pieces(behaviour: Behaviour) -> list[str]:
    if isinstance(behaviour, Text | Cut):
        return list(behaviour.pieces)
    if isinstance(behaviour, ToolCalls) and behaviour.text:
        return [behaviour.text]
    return []


def _fragments(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _prompt_tokens(behaviour: Behaviour) -> int:
    return getattr(behaviour, "prompt_tokens", 11)


def _openai_usage(behaviour: Behaviour, completion: int) -> dict[str, Any]:
    reasoning = getattr(behaviour, "reasoning_tokens", 0)
    usage: dict[str, Any] = {
        "prompt_tokens": _prompt_tokens(behaviour),
        "completion_tokens": completion + reasoning,
        "prompt_tokens_details": {"cached_tokens": getattr(behaviour, "cached_tokens", 0), "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": reasoning, "audio_tokens": 0},
    }
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    return usage


def _anthropic_input(behaviour: Behaviour) -> dict[str, int]:
    return {
        "input_tokens": _prompt_tokens(behaviour),
        "cache_read_input_tokens": getattr(behaviour, "cached_tokens", 0),
        "cache_creation_input_tokens": getattr(behaviour, "cache_write_tokens", 0),
    }


class FakeOpenAIServer(FakeLLMServer):
    """``POST /v1/chat/completions`` and ``/v1/embeddings``; use ``base_url + "/v1"`` as the SDK's base URL."""

    preamble_events = 1  # the role chunk

    @property
    def openai_base_url(self) -> str:
        return self.base_url + "/v1"

    def error_body(self, behaviour: Status) -> dict[str, Any]:
        kind = "rate_limit_exceeded" if behaviour.code == 429 else "server_error"
        return {"error": {"message": behaviour.message, "type": kind, "param": None, "code": kind}}

    def _envelope(self, request: Request, choices: list[dict[str, Any]], **extra: Any) -> str:
        body = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": request.json.get("model", "fake"),
            "choices": choices,
            **extra,
        }
        return f"data: {json.dumps(body)}\n\n"

    def stream_events(self, behaviour: Behaviour, request: Request) -> list[str]:
        events = [self._envelope(request, [{"index": 0, "delta": {"role": "assistant", "content": ""}}])]
        pieces = _pieces(behaviour)
        for piece in pieces:
            events.append(
                self._envelope(request, [{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
            )
        finish = "stop"
        if isinstance(behaviour, ToolCalls):
            finish = "tool_calls"
            for index, (name, arguments) in enumerate(behaviour.calls):
                head = {"index": index, "id": f"call_fake_{index}", "type": "function"}
                events.append(
                    self._envelope(
                        request,
                        [
                            {
                                "index": 0,
                                "delta": {
                                    "tool_calls": [{**head, "function": {"name": name, "arguments": ""}}]
                                },
                            }
                        ],
                    )
                )
                for fragment in _fragments(json.dumps(arguments), behaviour.fragment):
                    delta = {"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}
                    events.append(self._envelope(request, [{"index": 0, "delta": delta}]))
        events.append(self._envelope(request, [{"index": 0, "delta": {}, "finish_reason": finish}]))
        if (request.json.get("stream_options") or {}).get("include_usage"):
            completion = len(pieces) + (len(behaviour.calls) if isinstance(behaviour, ToolCalls) else 0)
            usage = _openai_usage(behaviour, completion)
            events.append(self._envelope(request, [], usage=usage))
        events.append("data: [DONE]\n\n")
        return events

    def embeddings_body(self, request: Request) -> dict[str, Any]:
        """``POST /v1/embeddings``: deterministic word-hash vectors of the requested ``dimensions``,
        as floats or (the SDK's default) base64 float32."""
        import base64
        import struct

        from rag.embeddings.hashing import HashEmbedder

        inputs = request.json.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        vectors = HashEmbedder(key="fake", dimensions=int(request.json.get("dimensions") or 1536)).embed(
            texts
        )
        as_base64 = request.json.get("encoding_format") == "base64"
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": base64.b64encode(struct.pack(f"<{len(v)}f", *v)).decode() if as_base64 else v,
            }
            for i, v in enumerate(vectors)
        ]
        tokens = sum(len(t.split()) for t in texts)
        return {
            "object": "list",
            "data": data,
            "model": request.json.get("model", "fake"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    def complete_body(self, behaviour: Behaviour, request: Request) -> dict[str, Any]:
        if request.path.endswith("/embeddings"):
            return self.embeddings_body(request)
        pieces = _pieces(behaviour)
        message: dict[str, Any] = {"role": "assistant", "content": "".join(pieces) or None}
        finish = "stop"
        if isinstance(behaviour, ToolCalls):
            finish = "tool_calls"
            message["tool_calls"] = [
                {
                    "id": f"call_fake_{i}",
                    "type": "function",
                    "function": {"name": n, "arguments": json.dumps(a)},
                }
                for i, (n, a) in enumerate(behaviour.calls)
            ]
        completion = len(pieces) + (len(behaviour.calls) if isinstance(behaviour, ToolCalls) else 0)
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 1700000000,
            "model": request.json.get("model", "fake"),
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": _openai_usage(behaviour, completion),
        }


class FakeAnthropicServer(FakeLLMServer):
    """``POST /v1/messages``; use ``base_url`` as the SDK's base URL."""

    preamble_events = 2  # message_start, first content_block_start

    def error_body(self, behaviour: Status) -> dict[str, Any]:
        kind = {429: "rate_limit_error", 529: "overloaded_error"}.get(behaviour.code, "api_error")
        return {"type": "error", "error": {"type": kind, "message": behaviour.message}}

    @staticmethod
    def _event(name: str, data: dict[str, Any]) -> str:
        return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n"

    def _blocks(self, behaviour: Behaviour) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        pieces = _pieces(behaviour)
        if pieces:
            blocks.append({"type": "text", "text": "".join(pieces)})
        if isinstance(behaviour, ToolCalls):
            for index, (name, arguments) in enumerate(behaviour.calls):
                blocks.append(
                    {"type": "tool_use", "id": f"toolu_fake_{index}", "name": name, "input": arguments}
                )
        return blocks

    def stream_events(self, behaviour: Behaviour, request: Request) -> list[str]:
        model = request.json.get("model", "fake")
        start = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**_anthropic_input(behaviour), "output_tokens": 1},
        }
        events = [self._event("message_start", {"message": start})]
        pieces = _pieces(behaviour)
        index = 0
        if pieces:
            events.append(
                self._event(
                    "content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}
                )
            )
            for piece in pieces:
                events.append(
                    self._event(
                        "content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": piece}}
                    )
                )
            events.append(self._event("content_block_stop", {"index": 0}))
            index = 1
        stop_reason = "end_turn"
        if isinstance(behaviour, ToolCalls):
            stop_reason = "tool_use"
            for offset, (name, arguments) in enumerate(behaviour.calls):
                block = {"type": "tool_use", "id": f"toolu_fake_{offset}", "name": name, "input": {}}
                events.append(self._event("content_block_start", {"index": index, "content_block": block}))
                for fragment in _fragments(json.dumps(arguments), behaviour.fragment):
                    delta = {"type": "input_json_delta", "partial_json": fragment}
                    events.append(self._event("content_block_delta", {"index": index, "delta": delta}))
                events.append(self._event("content_block_stop", {"index": index}))
                index += 1
        output = len(pieces) + (len(behaviour.calls) if isinstance(behaviour, ToolCalls) else 0)
        events.append(
            self._event(
                "message_delta",
                {
                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                    "usage": {"output_tokens": output},
                },
            )
        )
        events.append(self._event("message_stop", {}))
        return events

    def complete_body(self, behaviour: Behaviour, request: Request) -> dict[str, Any]:
        output = len(_pieces(behaviour)) + (len(behaviour.calls) if isinstance(behaviour, ToolCalls) else 0)
        return {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": request.json.get("model", "fake"),
            "content": self._blocks(behaviour),
            "stop_reason": "tool_use" if isinstance(behaviour, ToolCalls) else "end_turn",
            "stop_sequence": None,
            "usage": {**_anthropic_input(behaviour), "output_tokens": output},
        }
