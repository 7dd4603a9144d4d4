"""Anthropic's Messages API through the ``anthropic`` SDK, with streaming and tool use.

The neutral format is OpenAI-shaped (``tool_calls`` on assistant messages, ``role: tool``
results); Anthropic wants the system prompt apart, ``tool_use`` / ``tool_result`` content
blocks and strictly alternating roles. :func:`to_anthropic` and :func:`from_anthropic`
convert both ways.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import AsyncIterator
from typing import Any

import anthropic

from runtime import conf
from runtime.llm.base import (
    TRANSPORT_ERRORS,
    Chunk,
    LLMClient,
    LLMConfigurationError,
    LLMError,
    Message,
    assistant_message,
    tool_content,
)
from runtime.llm.credentials import credential
from runtime.llm.errors import sdk_error

DEFAULT_MAX_TOKENS = 4096
_STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
}

_clients: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[Any, ...], anthropic.AsyncAnthropic]
] = weakref.WeakKeyDictionary()


# conversion --------------------------------------------------------------------------------
def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return "" if content is None else str(content)


def _as_blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, list):
        return [dict(block) for block in content]
    text = _text_of(content)
    return [{"type": "text", "text": text}] if text else []


def to_anthropic(messages: list[Message]) -> tuple[str, list[dict[str, Any]]]:
    """Neutral messages -> ``(system, messages)`` for the Messages API."""
    system: list[str] = []
    converted: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role", "user")
        if role == "system":
            system.append(_text_of(message.get("content")))
            continue
        if role == "tool":
            role = "user"
            blocks = [
                {
                    "type": "tool_result",
                    "tool_use_id": message.get("tool_call_id", ""),
                    "content": tool_content(message.get("content")),
                }
            ]
        elif role == "assistant":
            blocks = _as_blocks(message.get("content"))
            for call in message.get("tool_calls") or []:
                try:
                    arguments = json.loads(call["function"].get("arguments") or "{}")
                except json.JSONDecodeError:
                    arguments = {}
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call["id"],
                        "name": call["function"]["name"],
                        "input": arguments if isinstance(arguments, dict) else {"value": arguments},
                    }
                )
        else:
            role = "user"
            blocks = _as_blocks(message.get("content"))
        if not blocks:
            continue  # Anthropic refuses empty content
        if converted and converted[-1]["role"] == role:
            # roles must alternate: consecutive tool results (and user text) share one turn
            converted[-1]["content"].extend(blocks)
        else:
            converted.append({"role": role, "content": blocks})
    return "\n\n".join(s for s in system if s), converted


def from_anthropic(messages: list[dict[str, Any]], system: str = "") -> list[Message]:
    """Messages API messages (and system prompt) -> neutral messages."""
    neutral: list[Message] = [{"role": "system", "content": system}] if system else []
    for message in messages:
        blocks = _as_blocks(message.get("content"))
        if message.get("role") == "assistant":
            text = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
            calls = [
                {
                    "id": b["id"],
                    "type": "function",
                    "function": {"name": b["name"], "arguments": json.dumps(b.get("input") or {})},
                }
                for b in blocks
                if b.get("type") == "tool_use"
            ]
            neutral.append(assistant_message(text, calls))
            continue
        text_parts = []
        for block in blocks:
            if block.get("type") == "tool_result":
                neutral.append(
                    {
                        "role": "tool",
                        "tool_call_id": block.get("tool_use_id", ""),
                        "content": _text_of(block.get("content")),
                    }
                )
            elif block.get("type") == "text":
                text_parts.append(block.get("text", ""))
        if text_parts:
            neutral.append({"role": "user", "content": "".join(text_parts)})
    return neutral


def to_anthropic_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI-format tool specs (what ``ToolRegistry.to_openai_format`` gives) -> Anthropic's."""
    converted = []
    for tool in tools:
        if "input_schema" in tool:
            converted.append(tool)
            continue
        function = tool.get("function") or tool
        converted.append(
            {
                "name": function["name"],
                "description": function.get("description", ""),
                "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
            }
        )
    return converted


# the client ----------------------------------------------------------------------------------
class AnthropicClient(LLMClient):
    provider = "anthropic"
    key_variable = "ANTHROPIC_API_KEY"

    def _api_key(self) -> str:
        return credential("ANTHROPIC_API_KEY")

    def _base_url(self) -> str | None:
        return conf.setting("ANTHROPIC_BASE_URL") or None

    def check_configured(self) -> None:
        if not self._api_key():
            raise LLMConfigurationError(
                "The anthropic provider needs an API key: set the ANTHROPIC_API_KEY environment variable, "
                "or choose another model.",
                provider=self.provider,
            )

    def sdk(self, timeout: float) -> anthropic.AsyncAnthropic:
        loop = asyncio.get_running_loop()
        key = (self._api_key(), self._base_url(), timeout)
        per_loop = _clients.setdefault(loop, {})
        client = per_loop.get(key)
        if client is None:
            client = anthropic.AsyncAnthropic(
                api_key=self._api_key(), base_url=self._base_url(), timeout=timeout, max_retries=0
            )
            per_loop[key] = client
        return client

    def _map_error(self, exc: BaseException) -> LLMError:
        return sdk_error(anthropic, exc, provider=self.provider, key_variable=self.key_variable)

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
        system, converted = to_anthropic(messages)
        request: dict[str, Any] = {
            "model": model,
            "messages": converted,
            "max_tokens": max_tokens or DEFAULT_MAX_TOKENS,
        }
        if system:
            request["system"] = system
        if tools:
            request["tools"] = to_anthropic_tools(tools)
        if temperature is not None:
            request["temperature"] = temperature
        client = self.sdk(timeout)
        try:
            if not stream:
                response = await client.messages.create(**request)
                for chunk in _chunks_from_message(response):
                    yield chunk
                return
            response = await client.messages.create(**request, stream=True)
            async with response:
                async for event in response:
                    chunk = _chunk_from_event(event)
                    if chunk is not None:
                        yield chunk
        except (anthropic.AnthropicError, *TRANSPORT_ERRORS) as exc:
            raise self._map_error(exc) from exc


def _chunk_from_event(event: Any) -> Chunk | None:
    kind = event.type
    if kind == "message_start":
        return Chunk(**_input_usage(event.message.usage), model=event.message.model)
    if kind == "content_block_start":
        block = event.content_block
        if block.type == "tool_use":
            return Chunk(
                tool_call={"index": event.index, "id": block.id, "name": block.name, "arguments": ""}
            )
        if block.type == "text" and block.text:
            return Chunk(text=block.text)
        return None
    if kind == "content_block_delta":
        delta = event.delta
        if delta.type == "text_delta":
            return Chunk(text=delta.text)
        if delta.type == "input_json_delta":
            return Chunk(tool_call={"index": event.index, "arguments": delta.partial_json})
        return None
    if kind == "message_delta":
        usage = getattr(event, "usage", None)
        reason = event.delta.stop_reason
        # newer API versions repeat the input counts here, final; older ones only the output
        counts = _input_usage(usage) if getattr(usage, "input_tokens", None) is not None else {}
        return Chunk(
            completion_tokens=usage.output_tokens if usage is not None else None,
            finish_reason=_STOP_REASONS.get(reason, reason) if reason else None,
            **counts,
        )
    return None


def _chunks_from_message(response: Any) -> list[Chunk]:
    chunks: list[Chunk] = []
    for index, block in enumerate(response.content):
        if block.type == "text":
            chunks.append(Chunk(text=block.text))
        elif block.type == "tool_use":
            chunks.append(
                Chunk(
                    tool_call={
                        "index": index,
                        "id": block.id,
                        "name": block.name,
                        "arguments": json.dumps(block.input or {}),
                    }
                )
            )
    reason = response.stop_reason or "end_turn"
    chunks.append(
        Chunk(
            **_input_usage(response.usage),
            completion_tokens=response.usage.output_tokens or 0,
            finish_reason=_STOP_REASONS.get(reason, reason),
            model=response.model,
        )
    )
    return chunks


def _input_usage(usage: Any) -> dict[str, int]:
    """Anthropic counts cache reads and writes apart from ``input_tokens``; prompt_tokens is all three."""
    read = getattr(usage, "cache_read_input_tokens", None) or 0
    written = getattr(usage, "cache_creation_input_tokens", None) or 0
    return {
        "prompt_tokens": (usage.input_tokens or 0) + read + written,
        "cached_tokens": read,
        "cache_write_tokens": written,
    }
