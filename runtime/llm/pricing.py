"""Estimated prices of model calls, in US dollars.

Where a price comes from, first match wins:

1. the operator's prices: ``AGENT_MODEL_PRICES`` (settings or environment, JSON, dollars per
   million tokens), then the prices entered on the model settings page (``ModelPrice`` rows,
   runtime/llm/model_prices.py, seen by every process within a few seconds), then any source
   registered with :func:`register_price_source`;
2. :data:`OVERRIDES`, our own short table for models the maps below lack or get wrong;
3. LiteLLM's cost map, read from the JSON file inside the installed ``litellm`` package
   (its bundled copy: nothing is downloaded and ``litellm`` itself is not imported);
4. ``prices.json`` next to this module: the OpenAI and Anthropic chat models of that map,
   committed so the providers we ship are priced without the ``litellm`` extra
   (``python -m runtime.llm.pricing`` rewrites it; a test keeps it in step with LiteLLM's map).

A name matches exactly (``openai:gpt-4o``, ``litellm:groq/llama3-8b``), then without its
provider prefix, then by the longest known name it starts with followed by ``-`` (so a new
dated snapshot finds its family, but ``gpt-5.1`` never takes ``gpt-5``'s price). A model
nothing matches has no price: its cost is unknown, never shown as $0.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from runtime import conf
from runtime.llm import model_prices

logger = logging.getLogger(__name__)

MILLION = 1_000_000
BUNDLED_PATH = Path(__file__).with_name("prices.json")
LITELLM_MAP_FILE = "model_prices_and_context_window_backup.json"
BUNDLED_PROVIDERS = ("openai", "anthropic")

# LiteLLM's field names, which prices.json and :func:`Price.from_litellm` share.
_FIELDS = {
    "input": "input_cost_per_token",
    "output": "output_cost_per_token",
    "cache_read": "cache_read_input_token_cost",
    "cache_write": "cache_creation_input_token_cost",
    "reasoning": "output_cost_per_reasoning_token",
}


@dataclass(frozen=True)
class Price:
    """Dollars per token. A missing cache or reasoning rate falls back to the input/output rate."""

    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None
    reasoning: float | None = None
    source: str = ""

    @classmethod
    def from_litellm(cls, entry: dict[str, Any], source: str) -> Price | None:
        try:
            values = {name: entry.get(key) for name, key in _FIELDS.items()}
            if values["input"] is None or values["output"] is None:
                return None
            return cls(**{k: (float(v) if v is not None else None) for k, v in values.items()}, source=source)
        except (TypeError, ValueError):
            return None

    @classmethod
    def per_million(cls, entry: dict[str, Any], source: str) -> Price:
        """An operator's price: ``{"input": 2.5, "output": 10, "cached_input": 1.25, ...}``."""

        def rate(*keys: str) -> float | None:
            for key in keys:
                if entry.get(key) is not None:
                    return float(entry[key]) / MILLION
            return None

        price_in, price_out = rate("input"), rate("output")
        if price_in is None or price_out is None:
            raise ValueError("a model price needs both 'input' and 'output' (dollars per million tokens)")
        return cls(
            input=price_in,
            output=price_out,
            cache_read=rate("cached_input", "cache_read"),
            cache_write=rate("cache_write"),
            reasoning=rate("reasoning"),
            source=source,
        )


@dataclass(frozen=True)
class Usage:
    """Tokens of one call. ``prompt_tokens`` counts every input token, cached ones included;
    ``completion_tokens`` every output token, reasoning ones included."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # input read from the provider's prompt cache
    cache_write_tokens: int = 0  # input written to it (Anthropic charges extra)
    reasoning_tokens: int = 0


# Dollars per million tokens (input, output): only models the maps lack or price wrongly.
OVERRIDES: dict[str, tuple[float, float]] = {
    "demo": (0.0, 0.0),
    # retired from LiteLLM's map, still answered by Anthropic for some accounts
    "claude-3-5-sonnet": (3.00, 15.00),
    "claude-3-5-haiku": (0.80, 4.00),
}

PriceSource = Callable[[], dict[str, dict[str, Any]]]
_sources: list[PriceSource] = []


def register_price_source(source: PriceSource) -> None:
    """Add operator prices kept elsewhere (a project's own table or service): a callable
    returning ``{model: {"input": ..., "output": ...}}`` in dollars per million tokens.
    It is called on every lookup, so it should be cheap (cached by its owner)."""
    if source not in _sources:
        _sources.append(source)


def litellm_map_path() -> Path | None:
    """The cost map inside the installed litellm wheel, found without importing litellm."""
    try:
        spec = importlib.util.find_spec("litellm")
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location) / LITELLM_MAP_FILE
        if path.is_file():
            return path
    return None


def _read_prices(path: Path, source: str) -> dict[str, Price]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        logger.warning("the price map %s cannot be read; its models are unpriced", path)
        return {}
    prices = {}
    for name, entry in raw.items():
        if isinstance(entry, dict) and entry.get("mode", "chat") in {"chat", "completion", "responses"}:
            price = Price.from_litellm(entry, source)
            if price is not None:
                prices[name.lower()] = price
    return prices


@lru_cache(maxsize=1)
def _maps() -> tuple[dict[str, Price], ...]:
    path = litellm_map_path()
    litellm = _read_prices(path, "litellm") if path else {}
    overrides = {
        name: Price(i / MILLION, o / MILLION, source="override") for name, (i, o) in OVERRIDES.items()
    }
    return overrides, litellm, _read_prices(BUNDLED_PATH, "bundled")


def _operator_prices() -> dict[str, Price]:
    prices: dict[str, Price] = {}
    tables = [conf.setting("AGENT_MODEL_PRICES"), model_prices.stored()]
    for source in _sources:
        try:
            tables.append(source() or {})
        except Exception:  # a broken source must not stop runs; the other prices still hold
            logger.exception("a model price source failed")
    for table in reversed(tables):  # the environment wins, then the settings page: applied last
        for name, entry in table.items():
            try:
                prices[str(name).lower()] = Price.per_million(entry, "operator")
            except (TypeError, ValueError, AttributeError):
                logger.warning("the price given for %r is not valid and is ignored", name)
    return prices


def _candidates(model: str) -> list[str]:
    """Names to look up, most specific first: ``litellm:groq/llama3`` -> it, ``groq/llama3``, ``llama3``."""
    name = model.strip().lower()
    names = [name]
    if ":" in name and not name.startswith("ft:"):
        name = name.split(":", 1)[1]
        names.append(name)
    if "/" in name:
        names.append(name.rsplit("/", 1)[-1])
    return names


def _lookup(table: dict[str, Price], names: list[str]) -> Price | None:
    for name in names:
        if name in table:
            return table[name]
    for name in names:
        best = None
        for known in table:
            if name.startswith(known + "-") and (best is None or len(known) > len(best)):
                best = known
        if best is not None:
            return table[best]
    return None


@lru_cache(maxsize=2048)
def _shipped_price(model: str) -> Price | None:
    names = _candidates(model)
    for table in _maps():
        price = _lookup(table, names)
        if price is not None:
            return price
    return None


def price_for(model: str) -> Price | None:
    """The price of ``model``, or None when no source knows it."""
    operator = _operator_prices()
    if operator:
        price = _lookup(operator, _candidates(model))
        if price is not None:
            return price
    return _shipped_price(model)


def cost_of(price: Price, usage: Usage) -> float:
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    written = min(usage.cache_write_tokens, usage.prompt_tokens - cached)
    plain_in = usage.prompt_tokens - cached - written
    reasoning = min(usage.reasoning_tokens, usage.completion_tokens)
    cost = (
        plain_in * price.input
        + cached * (price.cache_read if price.cache_read is not None else price.input)
        + written * (price.cache_write if price.cache_write is not None else price.input)
        + (usage.completion_tokens - reasoning) * price.output
        + reasoning * (price.reasoning if price.reasoning is not None else price.output)
    )
    return round(cost, 8)


def estimate_cost(model: str, usage: Usage) -> float | None:
    """Dollars for ``usage`` on ``model``; None when its price is unknown (never a silent 0)."""
    price = price_for(model)
    return None if price is None else cost_of(price, usage)


def bundled_subset(path: Path) -> dict[str, dict[str, float]]:
    """The entries of LiteLLM's map that ``prices.json`` keeps: our providers' chat models."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    subset = {}
    for name, entry in sorted(raw.items()):
        if (
            isinstance(entry, dict)
            and entry.get("litellm_provider") in BUNDLED_PROVIDERS
            and entry.get("mode") == "chat"
            and "/" not in name
            and entry.get("input_cost_per_token") is not None
        ):
            subset[name] = {key: entry[key] for key in _FIELDS.values() if entry.get(key) is not None}
    return subset


if __name__ == "__main__":  # python -m runtime.llm.pricing: refresh prices.json from the installed litellm
    source = litellm_map_path()
    if source is None:
        raise SystemExit("litellm is not installed; install the litellm extra first.")
    BUNDLED_PATH.write_text(json.dumps(bundled_subset(source), indent=1, sort_keys=True) + "\n")
    print(f"wrote {BUNDLED_PATH}")
