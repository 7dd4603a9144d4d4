"""Any provider LiteLLM supports, through ``litellm.acompletion``.

Model names are LiteLLM's own after the ``litellm:`` prefix (``litellm:ollama/llama3``,
``litellm:openai/gpt-4o-mini``). LiteLLM reads each provider's usual variables itself;
``LITELLM_API_BASE`` / ``LITELLM_API_KEY`` override them for every call. LiteLLM's own
retries are off (``num_retries=0``) so the policy in :mod:`runtime.llm.base` is the only one.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

from runtime import conf
from runtime.llm.base import (
    TRANSPORT_ERRORS,
    Chunk,
    LLMClient,
    LLMConfigurationError,
    LLMConnectionError,
    LLMError,
    LLMTimeoutError,
    Message,
    error_for_status,
)
from runtime.llm.openai import to_openai_messages

# LiteLLM downloads a price map on import unless told to use its bundled copy; no test or
# worker should reach the internet for that.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm  # noqa: E402

litellm.telemetry = False
litellm.suppress_debug_info = True


class LiteLLMClient(LLMClient):
    provider = "litellm"

    def _map_error(self, exc: BaseException) -> LLMError:
        if isinstance(exc, litellm.Timeout):
            return LLMTimeoutError(f"The {self.provider} request timed out.", provider=self.provider)
        status = getattr(exc, "status_code", None)
        if isinstance(status, int) and status >= 400 and not isinstance(exc, litellm.APIConnectionError):
            response = getattr(exc, "response", None)
            headers = getattr(response, "headers", None)
            return error_for_status(
                self.provider, status, getattr(exc, "message", "") or str(exc), headers=headers
            )
        return LLMConnectionError(
            f"The connection through {self.provider} broke: {type(exc).__name__}: {exc}",
            provider=self.provider,
        )

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
        if not model:
            raise LLMConfigurationError(
                "A litellm model needs a name such as litellm:ollama/llama3.", provider=self.provider
            )
        request: dict[str, Any] = {
            "model": model,
            "messages": to_openai_messages(messages),
            "timeout": timeout,
            "num_retries": 0,
        }
        api_base = conf.setting("LITELLM_API_BASE")
        api_key = conf.setting("LITELLM_API_KEY")
        if api_base:
            request["api_base"] = api_base
        if api_key:
            request["api_key"] = api_key
        if tools:
            request["tools"] = tools
        if temperature is not None:
            request["temperature"] = temperature
        if max_tokens is not None:
            request["max_tokens"] = max_tokens
        if stream:
            request["stream"] = True
            request["stream_options"] = {"include_usage": True}
        try:
            response = await litellm.acompletion(**request)
            if not stream:
                for chunk in _chunks_from_completion(response):
                    yield chunk
                return
            async for event in response:
                for chunk in _chunks_from_event(event):
                    yield chunk
        except LLMError:
            raise
        except (litellm.exceptions.OpenAIError, litellm.Timeout, *TRANSPORT_ERRORS) as exc:
            raise self._map_error(exc) from exc
        except Exception as exc:
            # LiteLLM wraps provider failures in its own classes, and not always the same ones
            if getattr(exc, "status_code", None) or getattr(exc, "llm_provider", None):
                raise self._map_error(exc) from exc
            raise


def _chunks_from_event(event: Any) -> list[Chunk]:
    chunks: list[Chunk] = []
    for choice in getattr(event, "choices", None) or []:
        delta = getattr(choice, "delta", None)
        if delta is not None:
            if getattr(delta, "content", None):
                chunks.append(Chunk(text=delta.content))
            for call in getattr(delta, "tool_calls", None) or []:
                function = call.function
                chunks.append(
                    Chunk(
                        tool_call={
                            "index": call.index or 0,
                            "id": call.id,
                            "name": function.name if function else None,
                            "arguments": function.arguments if function else None,
                        }
                    )
                )
        if getattr(choice, "finish_reason", None):
            chunks.append(Chunk(finish_reason=choice.finish_reason, model=getattr(event, "model", None)))
    usage = getattr(event, "usage", None)
    if usage is not None and getattr(usage, "prompt_tokens", None) is not None:
        chunks.append(_usage_chunk(usage))
    return chunks


def _usage_chunk(usage: Any) -> Chunk:
    # litellm reports usage in OpenAI's shape, whatever the provider behind it
    prompt = getattr(usage, "prompt_tokens_details", None)
    completion = getattr(usage, "completion_tokens_details", None)
    return Chunk(
        prompt_tokens=usage.prompt_tokens or 0,
        completion_tokens=usage.completion_tokens or 0,
        cached_tokens=(getattr(prompt, "cached_tokens", None) or 0) if prompt else 0,
        reasoning_tokens=(getattr(completion, "reasoning_tokens", None) or 0) if completion else 0,
    )


def _chunks_from_completion(response: Any) -> list[Chunk]:
    choice = response.choices[0]
    message = choice.message
    chunks = [Chunk(text=message.content or "")]
    for index, call in enumerate(getattr(message, "tool_calls", None) or []):
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
    usage = getattr(response, "usage", None)
    if usage is not None:
        chunks.append(_usage_chunk(usage))
    chunks.append(Chunk(finish_reason=choice.finish_reason or "stop", model=getattr(response, "model", None)))
    return chunks
