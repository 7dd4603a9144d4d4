"""OpenAI Chat Completions through the ``openai`` SDK, and any OpenAI-compatible server.

``OPENAI_BASE_URL`` points it at Ollama, vLLM or another compatible server; such a
server needs no key. The SDK's own retries are off (``max_retries=0``) so the retry
policy in :mod:`runtime.llm.base` is the only one.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from typing import Any

import openai
from django.conf import settings

from runtime.llm.base import (
    TRANSPORT_ERRORS,
    Chunk,
    LLMClient,
    LLMConfigurationError,
    LLMError,
    Message,
    tool_content,
)
from runtime.llm.errors import sdk_error

# An SDK client holds an HTTP connection pool bound to the event loop that first used it,
# so clients are shared per loop (connection reuse matters for time to first token).
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, ...], openai.AsyncOpenAI]] = (
    weakref.WeakKeyDictionary()
)


def to_openai_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """Neutral messages are OpenAI's shape already; keep only the fields the API accepts."""
    converted: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role", "user")
        item: dict[str, Any] = {"role": role}
        content = message.get("content")
        if role == "tool":
            item["tool_call_id"] = message.get("tool_call_id", "")
            item["content"] = tool_content(content)
        elif role == "assistant":
            item["content"] = content if content else ("" if not message.get("tool_calls") else None)
            if message.get("tool_calls"):
                item["tool_calls"] = [
                    {
                        "id": call["id"],
                        "type": "function",
                        "function": {
                            "name": call["function"]["name"],
                            "arguments": call["function"].get("arguments") or "{}",
                        },
                    }
                    for call in message["tool_calls"]
                ]
        else:
            item["content"] = content if content is not None else ""
        if message.get("name") and role in ("user", "system"):
            item["name"] = message["name"]
        converted.append(item)
    return converted


class OpenAIClient(LLMClient):
    provider = "openai"
    key_variable = "OPENAI_API_KEY"

    def _api_key(self) -> str:
        return getattr(settings, "OPENAI_API_KEY", "") or ""

    def _base_url(self) -> str | None:
        return getattr(settings, "OPENAI_BASE_URL", "") or None

    def check_configured(self) -> None:
        # a custom base URL (Ollama, vLLM) usually needs no key
        if not self._api_key() and not self._base_url():
            raise LLMConfigurationError(
                "The openai provider needs an API key: set the OPENAI_API_KEY environment variable "
                "(or OPENAI_BASE_URL for an OpenAI-compatible server), or choose the demo model.",
                provider=self.provider,
            )

    def sdk(self, timeout: float) -> openai.AsyncOpenAI:
        loop = asyncio.get_running_loop()
        key = (self._api_key(), self._base_url(), timeout)
        per_loop = _clients.setdefault(loop, {})
        client = per_loop.get(key)
        if client is None:
            client = openai.AsyncOpenAI(
                api_key=self._api_key() or "not-needed",
                base_url=self._base_url(),
                timeout=timeout,
                max_retries=0,
            )
            per_loop[key] = client
        return client

    def _map_error(self, exc: BaseException) -> LLMError:
        return sdk_error(openai, exc, provider=self.provider, key_variable=self.key_variable)

    def _request(
        self,
        messages: list[Message],
        *,
        model: str,
        tools: list[dict[str, Any]] | None,
        stream: bool,
        temperature: float | None,
        max_tokens: int | None,
    ) -> dict[str, Any]:
        request: dict[str, Any] = {"model": model, "messages": to_openai_messages(messages)}
        if tools:
            request["tools"] = tools
        if temperature is not None:
            request["temperature"] = temperature
        if max_tokens is not None:
            request["max_tokens"] = max_tokens
        if stream:
            request["stream"] = True
            request["stream_options"] = {"include_usage": True}
        return request

    async def _stream_once(
        self,
        messages: list[Message],
        *,
        model: str,
        tools: list[dict[str, Any]] | None,
        stream: bool,
        temperature: float | None,
        max_tokens: int | None,
        timeout: float,
    ) -> AsyncIterator[Chunk]:
        client = self.sdk(timeout)
        request = self._request(
            messages, model=model, tools=tools, stream=stream, temperature=temperature, max_tokens=max_tokens
        )
        try:
            response = await client.chat.completions.create(**request)
            if not stream:
                for chunk in _chunks_from_completion(response):
                    yield chunk
                return
            async with response:
                async for event in response:
                    for chunk in _chunks_from_stream_event(event):
                        yield chunk
        except (openai.OpenAIError, *TRANSPORT_ERRORS) as exc:
            raise self._map_error(exc) from exc


def _chunks_from_stream_event(event: Any) -> list[Chunk]:
    chunks: list[Chunk] = []
    for choice in event.choices or []:
        delta = choice.delta
        if delta is not None:
            if delta.content:
                chunks.append(Chunk(text=delta.content))
            for call in delta.tool_calls or []:
                function = call.function
                chunks.append(
                    Chunk(
                        tool_call={
                            "index": call.index,
                            "id": call.id,
                            "name": function.name if function else None,
                            "arguments": function.arguments if function else None,
                        }
                    )
                )
        if choice.finish_reason:
            chunks.append(Chunk(finish_reason=choice.finish_reason, model=event.model))
    if event.usage is not None:
        chunks.append(
            Chunk(
                prompt_tokens=event.usage.prompt_tokens or 0,
                completion_tokens=event.usage.completion_tokens or 0,
            )
        )
    return chunks


def _chunks_from_completion(response: Any) -> list[Chunk]:
    """A non-streamed answer in the same chunk form as a stream."""
    choice = response.choices[0]
    message = choice.message
    chunks = [Chunk(text=message.content or "")]
    for index, call in enumerate(message.tool_calls or []):
        chunks.append(
            Chunk(
                tool_call={
                    "index": index,
                    "id": call.id,
                    "name": call.function.name,
                    "arguments": call.function.arguments,
                }
            )
        )
    usage = response.usage
    chunks.append(
        Chunk(
            finish_reason=choice.finish_reason or "stop",
            model=response.model,
            prompt_tokens=(usage.prompt_tokens or 0) if usage else None,
            completion_tokens=(usage.completion_tokens or 0) if usage else None,
        )
    )
    return chunks
