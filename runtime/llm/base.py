"""The provider-neutral LLM client: messages, responses, errors, retries and timeouts.

A provider implements one verb, :meth:`LLMClient._stream_once`, an async iterator of
:class:`Chunk` for a single attempt. Everything that must behave the same for every
provider lives here:

1. pick the model (per-call ``model`` > the client's model > the run's model > settings);
2. run an attempt, forwarding text chunks as ``assistant.delta`` events to the current run;
3. guard every read with ``AGENT_LLM_TIMEOUT`` so a hung provider fails instead of hanging;
4. retry 429 (honouring ``Retry-After``, capped) and 5xx/timeouts with exponential backoff,
   but only while nothing has been streamed yet: text a client has already shown cannot be
   taken back, so a stream cut after the first delta fails the attempt as retryable and the
   runner's run-level retry (with its ``run.retrying`` event) takes over;
5. record usage and an estimated cost on the run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from runtime import conf
from runtime.interfaces import EventType, current_context
from runtime.llm.errors import (
    TRANSPORT_ERRORS,
    LLMBadRequestError,
    LLMConfigurationError,
    LLMConnectionError,
    LLMError,
    LLMRateLimitError,
    LLMServerError,
    LLMStreamInterrupted,
    LLMTimeoutError,
    error_for_status,
    parse_retry_after,
)
from runtime.llm.pricing import Usage, estimate_cost

__all__ = [
    "PROVIDERS",
    "TRANSPORT_ERRORS",
    "Chunk",
    "LLMBadRequestError",
    "LLMClient",
    "LLMConfigurationError",
    "LLMConnectionError",
    "LLMError",
    "LLMRateLimitError",
    "LLMResponse",
    "LLMServerError",
    "LLMStreamInterrupted",
    "LLMTimeoutError",
    "Message",
    "error_for_status",
    "parse_model",
    "parse_retry_after",
]

logger = logging.getLogger(__name__)

Message = dict[str, Any]

PROVIDERS = ("openai", "anthropic", "litellm", "demo")


# responses --------------------------------------------------------------------------------
@dataclass
class Chunk:
    """One piece of a streamed answer, in neutral form."""

    text: str = ""
    # tool-call fragments keyed by position: {"index", "id", "name", "arguments"}
    tool_call: dict[str, Any] | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    # parts of the above the provider reports: prompt tokens read from / written to its cache,
    # completion tokens spent on reasoning (priced at their own rates when known)
    cached_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    finish_reason: str | None = None
    model: str | None = None


@dataclass
class LLMResponse:
    message: Message
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=lambda: {"prompt_tokens": 0, "completion_tokens": 0})
    model: str = ""
    provider: str = ""
    finish_reason: str | None = None
    # None when no price is known for the model (see runtime/llm/pricing.py): never a silent 0
    cost_usd: float | None = 0.0

    @property
    def cost_known(self) -> bool:
        return self.cost_usd is not None

    @property
    def content(self) -> str:
        return self.message.get("content") or ""


class _Assembler:
    """Builds the final message from chunks (tool-call arguments arrive in fragments)."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.detail = {"cached_tokens": 0, "cache_write_tokens": 0, "reasoning_tokens": 0}
        self.finish_reason: str | None = None
        self.model: str | None = None

    @property
    def started(self) -> bool:
        return bool(self.text or self.calls)

    def add(self, chunk: Chunk) -> None:
        if chunk.text:
            self.text.append(chunk.text)
        if chunk.tool_call is not None:
            index = int(chunk.tool_call.get("index", len(self.calls)))
            call = self.calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
            if chunk.tool_call.get("id"):
                call["id"] = chunk.tool_call["id"]
            if chunk.tool_call.get("name"):
                call["name"] += chunk.tool_call["name"]
            call["arguments"] += chunk.tool_call.get("arguments") or ""
        if chunk.prompt_tokens is not None:
            self.prompt_tokens = chunk.prompt_tokens
        if chunk.completion_tokens is not None:
            self.completion_tokens = chunk.completion_tokens
        for name in self.detail:
            if getattr(chunk, name) is not None:
                self.detail[name] = getattr(chunk, name)
        if chunk.finish_reason:
            self.finish_reason = chunk.finish_reason
        if chunk.model:
            self.model = chunk.model

    def tool_calls(self) -> list[dict[str, Any]]:
        calls = []
        for index in sorted(self.calls):
            call = self.calls[index]
            calls.append(
                {
                    "id": call["id"] or f"call_{index}",
                    "type": "function",
                    "function": {"name": call["name"], "arguments": call["arguments"] or "{}"},
                }
            )
        return calls


def assistant_message(content: str, tool_calls: list[dict[str, Any]]) -> Message:
    message: Message = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return message


def tool_content(content: Any) -> str:
    """Tool results travel to models as text."""
    if isinstance(content, str):
        return content
    return json.dumps(content, default=str)


# model selection ----------------------------------------------------------------------------
def _runtime_setting(key: str) -> Any:
    return conf.get(key)


def parse_model(model: str | None, provider: str | None = None) -> tuple[str, str]:
    """``"openai:gpt-4o"`` -> ``("openai", "gpt-4o")``; unprefixed names use ``MODEL_PROVIDER``.

    When the configured provider is ``demo`` and the name is plainly another provider's
    (``gpt-*``, ``o3*``, ``claude-*``), it goes to that provider: someone who picked
    ``gpt-4o`` wants GPT-4o (or to be told which key is missing), not the demo.
    """
    model = (model or "").strip()
    if provider:
        provider = provider.strip().lower()
        if provider not in PROVIDERS:
            raise LLMConfigurationError(
                f"Unknown model provider {provider!r}; use one of {', '.join(PROVIDERS)}."
            )
        prefix, sep, rest = model.partition(":")
        if sep and prefix == provider:
            model = rest
        return provider, model or ("demo" if provider == "demo" else _default_model_for(provider))
    if not model:
        model = _runtime_setting("DEFAULT_MODEL") or "demo"
    prefix, sep, rest = model.partition(":")
    if sep and prefix.lower() in PROVIDERS:
        return prefix.lower(), rest or (
            "demo" if prefix.lower() == "demo" else _default_model_for(prefix.lower())
        )
    if model == "demo":
        return "demo", "demo"
    configured = _runtime_setting("MODEL_PROVIDER")
    if configured == "demo":
        lowered = model.lower()
        if lowered.startswith(("gpt-", "chatgpt", "o1", "o3", "o4")):
            return "openai", model
        if lowered.startswith("claude"):
            return "anthropic", model
    return configured, model


def _default_model_for(provider: str) -> str:
    default = _runtime_setting("DEFAULT_MODEL") or ""
    prefix, sep, rest = default.partition(":")
    if sep and prefix == provider:
        return rest
    if not sep and _runtime_setting("MODEL_PROVIDER") == provider:
        return default
    return {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-4-6", "litellm": "gpt-4o-mini"}.get(
        provider, "demo"
    )


# the client ---------------------------------------------------------------------------------
class LLMClient(ABC):
    """Talks to one provider. Subclasses implement :meth:`_stream_once`."""

    provider: str = ""

    def __init__(self, model: str | None = None) -> None:
        # None: decided per call (the run's model, then DEFAULT_MODEL)
        self.default_model = model

    @abstractmethod
    def _stream_once(
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
        """One attempt. Raise :class:`LLMError` subclasses; a non-streamed call yields one chunk."""

    def check_configured(self) -> None:
        """Raise :class:`LLMConfigurationError` naming the variable to set, if any is missing."""
        return None

    async def generate(
        self,
        messages: list[Message],
        *,
        tools: list[dict[str, Any]] | None = None,
        model: str | None = None,
        stream: bool = True,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> LLMResponse:
        ctx = current_context()
        if model:
            # a prefixed name may switch provider; a bare one is this provider's model
            prefixed = model.partition(":")[0].lower() in PROVIDERS and ":" in model
            provider, model_name = (
                parse_model(model) if prefixed or model == "demo" else (self.provider, model)
            )
        elif self.default_model:
            provider, model_name = self.provider, self.default_model
        else:
            provider, model_name = parse_model(ctx.model if ctx is not None and ctx.model else None)
        if provider != self.provider:
            from runtime.llm import get_llm_client  # cycle: runtime.llm imports this module

            return await get_llm_client(provider=provider, model=model_name).generate(
                messages, tools=tools, stream=stream, temperature=temperature, max_tokens=max_tokens
            )
        self.check_configured()
        timeout = float(conf.setting("AGENT_LLM_TIMEOUT"))
        max_retries = int(conf.setting("AGENT_LLM_MAX_RETRIES"))
        attempt = 0
        while True:
            emitted = [False]
            try:
                response = await self._attempt(
                    messages,
                    model=model_name,
                    tools=tools or None,
                    stream=stream,
                    temperature=temperature,
                    max_tokens=max_tokens,
                    timeout=timeout,
                    emitted=emitted,
                )
                break
            except LLMError as exc:
                exc.provider = exc.provider or self.provider
                if not exc.retryable or emitted[0] or attempt >= max_retries:
                    raise
                delay = self._retry_delay(exc, attempt)
                logger.warning(
                    "%s call failed (%s); retry %d/%d in %.2fs",
                    self.provider,
                    exc,
                    attempt + 1,
                    max_retries,
                    delay,
                )
                if ctx is not None and ctx.cancelled():
                    raise
                await asyncio.sleep(delay)
                attempt += 1
        await self._record_usage(response)
        return response

    @staticmethod
    def _retry_delay(exc: LLMError, attempt: int) -> float:
        cap = float(conf.setting("AGENT_LLM_RETRY_MAX_WAIT"))
        if exc.retry_after is not None and exc.retry_after >= 0:
            return min(exc.retry_after, cap)
        base = float(conf.setting("AGENT_LLM_RETRY_BASE_DELAY"))
        # full jitter keeps many workers that failed together from retrying together
        return min(cap, base * (2**attempt)) * (0.5 + random.random() / 2)

    async def _attempt(
        self,
        messages: list[Message],
        *,
        model: str,
        tools: list[dict[str, Any]] | None,
        stream: bool,
        temperature: float | None,
        max_tokens: int | None,
        timeout: float,
        emitted: list[bool],
    ) -> LLMResponse:
        ctx = current_context() if stream else None
        assembler = _Assembler()
        iterator = self._stream_once(
            messages,
            model=model,
            tools=tools,
            stream=stream,
            temperature=temperature,
            max_tokens=max_tokens,
            timeout=timeout,
        ).__aiter__()
        try:
            while True:
                try:
                    # every read is bounded: a provider that stops talking fails the attempt
                    chunk = await asyncio.wait_for(iterator.__anext__(), timeout)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise LLMTimeoutError(
                        f"The {self.provider} model did not answer within {timeout:g} s (AGENT_LLM_TIMEOUT).",
                        provider=self.provider,
                    ) from None
                except LLMError as exc:
                    if assembler.started:
                        raise LLMStreamInterrupted(
                            f"The {self.provider} stream broke after the answer had started: {exc.message}",
                            provider=self.provider,
                            status_code=exc.status_code,
                        ) from exc
                    raise
                assembler.add(chunk)
                if chunk.text and ctx is not None:
                    emitted[0] = True
                    await ctx.emit(EventType.ASSISTANT_DELTA, {"delta": chunk.text})
        finally:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except Exception:  # closing a broken stream must not hide the real error
                    logger.debug("closing the %s stream failed", self.provider, exc_info=True)
        if assembler.finish_reason is None:
            raise LLMStreamInterrupted(
                f"The {self.provider} stream ended before the model finished its answer.",
                provider=self.provider,
            )
        tool_calls = assembler.tool_calls()
        content = "".join(assembler.text)
        usage = {"prompt_tokens": assembler.prompt_tokens, "completion_tokens": assembler.completion_tokens}
        usage.update({name: count for name, count in assembler.detail.items() if count})
        return LLMResponse(
            message=assistant_message(content, tool_calls),
            tool_calls=tool_calls,
            usage=usage,
            model=assembler.model or model,
            provider=self.provider,
            finish_reason=assembler.finish_reason,
            # the name the caller chose is priced (an operator prices what they configured, with
            # or without the provider prefix agents use), the one the provider answered with only
            # when that is unknown
            cost_usd=_cost(f"{self.provider}:{model}", assembler.model, usage),
        )

    async def _record_usage(self, response: LLMResponse) -> None:
        ctx = current_context()
        if ctx is None:
            return
        ctx.add_usage(
            prompt_tokens=response.usage["prompt_tokens"],
            completion_tokens=response.usage["completion_tokens"],
            cost_usd=response.cost_usd,
        )
        payload: dict[str, Any] = {
            "model": response.model,
            "provider": response.provider,
            **response.usage,
            "cost_usd": response.cost_usd,
        }
        if not response.cost_known:
            payload["cost_note"] = (
                f"Price unknown: no price is known for {response.model}, so its tokens are counted but "
                "not its cost. An operator can set one in AGENT_MODEL_PRICES or on the settings page."
            )
        await ctx.emit(EventType.USAGE, payload)


def _cost(requested: str, answered: str | None, usage: dict[str, int]) -> float | None:
    tokens = Usage(**usage)
    cost = estimate_cost(requested, tokens)
    if cost is None and answered and answered != requested:
        cost = estimate_cost(answered, tokens)
    return cost
