"""LLM clients behind one provider-neutral interface.

    from runtime.llm import get_llm_client

    llm = get_llm_client()                       # the run's model, else DEFAULT_MODEL
    llm = get_llm_client("anthropic:claude-sonnet-4-5")
    response = await llm.generate(messages, tools=registry.to_openai_format())

Model names: ``demo``, ``gpt-4o`` (unprefixed names use ``MODEL_PROVIDER``),
``openai:gpt-4o-mini``, ``anthropic:claude-sonnet-4-5``, ``litellm:ollama/llama3``.
Providers are imported lazily so the SDKs stay optional extras.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from runtime import conf
from runtime.llm.base import (
    LLMBadRequestError,
    LLMClient,
    LLMConfigurationError,
    LLMConnectionError,
    LLMError,
    LLMRateLimitError,
    LLMResponse,
    LLMServerError,
    LLMStreamInterrupted,
    LLMTimeoutError,
    parse_model,
)
from runtime.llm.credentials import credential

__all__ = [
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
    "get_llm_client",
    "list_models",
    "parse_model",
]

_CLIENT_CLASSES = {
    "demo": ("runtime.llm.demo", "DemoClient", None),
    "openai": ("runtime.llm.openai", "OpenAIClient", "openai"),
    "anthropic": ("runtime.llm.anthropic", "AnthropicClient", "anthropic"),
    "litellm": ("runtime.llm.litellm", "LiteLLMClient", "litellm"),
}


def get_llm_client(model: str | None = None, provider: str | None = None) -> LLMClient:
    """A client for ``model`` (or ``provider``'s default).

    With neither, the model is chosen per call: the running run's ``model`` if it has
    one, else ``DEFAULT_MODEL``.
    """
    if model is None and provider is None:
        chosen, _ = parse_model(None)
        name: str | None = None
    else:
        chosen, name = parse_model(model, provider)
    module_path, class_name, extra = _CLIENT_CLASSES[chosen]
    try:
        module = importlib.import_module(module_path)
    except ImportError as exc:
        raise LLMConfigurationError(
            f"The {chosen} provider needs its SDK: pip install 'agent-builder[{extra}]' ({exc}).",
            provider=chosen,
        ) from exc
    return getattr(module, class_name)(name)


_KNOWN_MODELS: dict[str, list[tuple[str, str]]] = {
    "openai": [
        ("gpt-4o", "GPT-4o"),
        ("gpt-4o-mini", "GPT-4o mini"),
        ("gpt-4.1", "GPT-4.1"),
        ("gpt-4.1-mini", "GPT-4.1 mini"),
    ],
    "anthropic": [
        ("claude-sonnet-4-6", "Claude Sonnet 4.6"),
        ("claude-haiku-4-5", "Claude Haiku 4.5"),
        ("claude-opus-4-5", "Claude Opus 4.5"),
    ],
}


def _entry(provider: str, model: str, name: str | None = None) -> dict[str, Any]:
    return {
        "id": "demo" if provider == "demo" else f"{provider}:{model}",
        "name": name or model,
        "provider": provider,
        "supports_tools": True,
        "supports_streaming": True,
        "is_demo": provider == "demo",
    }


def _provider_ready(provider: str) -> bool:
    if provider == "demo":
        return True
    if provider == "openai":
        return bool(credential("OPENAI_API_KEY") or credential("OPENAI_BASE_URL"))
    if provider == "anthropic":
        return bool(credential("ANTHROPIC_API_KEY"))
    if provider == "litellm":
        return importlib.util.find_spec("litellm") is not None
    return False


def list_models() -> dict[str, Any]:
    """The models the configured providers offer, and the default model's id.

    OpenAI and Anthropic models are listed only when their key (or, for OpenAI-compatible
    servers, ``OPENAI_BASE_URL``) is set; ``AGENT_LLM_MODELS`` adds more (``litellm:ollama/llama3``).
    The demo model is always there, flagged ``is_demo``.
    """
    models: list[dict[str, Any]] = [_entry("demo", "demo", "Demo (offline, no key needed)")]
    for provider in ("openai", "anthropic"):
        if provider == "openai" and not credential("OPENAI_API_KEY"):
            # an OpenAI-compatible server (Ollama, vLLM) serves its own names; list only configured ones
            continue
        if _provider_ready(provider):
            models.extend(_entry(provider, model, name) for model, name in _KNOWN_MODELS[provider])
    seen = {m["id"] for m in models}
    extra = conf.setting("AGENT_LLM_MODELS")
    default_provider, default_name = parse_model(None)
    default_id = "demo" if default_provider == "demo" else f"{default_provider}:{default_name}"
    for raw in [*extra, default_id]:
        try:
            provider, name = parse_model(raw)
        except LLMError:
            continue
        entry = _entry(provider, name)
        if entry["id"] not in seen and _provider_ready(provider):
            models.append(entry)
            seen.add(entry["id"])
    return {"models": models, "default": default_id}
