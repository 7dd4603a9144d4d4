"""Estimated prices, US dollars per million tokens (input, output).

Published list prices at the time of writing; they drift, so treat costs as estimates.
A model not in the table costs 0 and :func:`estimate_cost` says it is unknown. Names
match by longest prefix after dropping a provider prefix (``openai:``, ``litellm:openai/``),
so dated snapshots (``gpt-4o-2024-08-06``) find their family.
"""

from __future__ import annotations

PRICES: dict[str, tuple[float, float]] = {
    # OpenAI
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5": (1.25, 10.00),
    "o4-mini": (1.10, 4.40),
    "o3-mini": (1.10, 4.40),
    "o3": (2.00, 8.00),
    "gpt-3.5-turbo": (0.50, 1.50),
    # Anthropic
    "claude-opus-4-5": (5.00, 25.00),
    "claude-opus-4": (15.00, 75.00),
    "claude-sonnet-4": (3.00, 15.00),
    "claude-haiku-4": (1.00, 5.00),
    "claude-3-7-sonnet": (3.00, 15.00),
    "claude-3-5-sonnet": (3.00, 15.00),
    "claude-3-5-haiku": (0.80, 4.00),
    "claude-3-haiku": (0.25, 1.25),
    # offline
    "demo": (0.0, 0.0),
}


def _bare(model: str) -> str:
    name = model.strip().lower()
    if ":" in name:
        name = name.split(":", 1)[1]
    # litellm names carry their own provider: "openai/gpt-4o", "anthropic/claude-..."
    return name.rsplit("/", 1)[-1]


def price_for(model: str) -> tuple[float, float] | None:
    name = _bare(model)
    best: str | None = None
    for prefix in PRICES:
        if name.startswith(prefix) and (best is None or len(prefix) > len(best)):
            best = prefix
    return PRICES[best] if best is not None else None


def estimate_cost(model: str, prompt_tokens: int, completion_tokens: int) -> tuple[float, bool]:
    """``(cost_usd, known)``; unknown models cost 0 with ``known=False``."""
    price = price_for(model)
    if price is None:
        return 0.0, False
    cost = (prompt_tokens * price[0] + completion_tokens * price[1]) / 1_000_000
    return round(cost, 8), True
