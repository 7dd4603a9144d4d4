"""Prices: LiteLLM's bundled map, our committed subset, operator prices, cached and reasoning tokens."""

from __future__ import annotations

import asyncio
import json

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_model_prices
from runtime.llm import get_llm_client, pricing
from runtime.llm.pricing import (
    BUNDLED_PATH,
    Usage,
    bundled_subset,
    estimate_cost,
    litellm_map_path,
    price_for,
)
from tests.fakes.llm_servers import Text
from tests.fakes.sink import make_context, run_in_context

M = 1_000_000


def generate(model: str):
    ctx, sink = make_context("hi")
    response = asyncio.run(run_in_context(ctx, lambda: get_llm_client(model).generate(ctx.input_messages)))
    return response, ctx, sink


@pytest.fixture
def without_litellm(monkeypatch):
    """As if the litellm extra were not installed: only our table and prices.json remain."""
    monkeypatch.setattr(pricing, "litellm_map_path", lambda: None)
    pricing._maps.cache_clear()
    pricing._shipped_price.cache_clear()
    yield
    pricing._maps.cache_clear()
    pricing._shipped_price.cache_clear()


@pytest.mark.parametrize(
    ("model", "per_million"),
    [
        ("gpt-4o-mini", (0.15, 0.60)),
        ("openai:gpt-4o-2024-08-06", (2.50, 10.00)),
        ("openai:gpt-4o-2099-01-01", (2.50, 10.00)),  # an unknown snapshot finds its family
        ("anthropic:claude-sonnet-4-5-20250929", (3.00, 15.00)),
        ("litellm:anthropic/claude-haiku-4-5", (1.00, 5.00)),
        ("litellm:openai/o3", (2.00, 8.00)),
        ("litellm:groq/llama-3.3-70b-versatile", None),  # filled in below from the map itself
        ("anthropic:claude-3-5-haiku-20241022", (0.80, 4.00)),  # only in our override table
    ],
)
def test_prices_come_from_litellms_bundled_map_without_network(model, per_million):
    if per_million is None:
        entry = json.loads(litellm_map_path().read_text())["groq/llama-3.3-70b-versatile"]
        per_million = (entry["input_cost_per_token"] * M, entry["output_cost_per_token"] * M)
    assert estimate_cost(model, Usage(prompt_tokens=M)) == pytest.approx(per_million[0])
    assert estimate_cost(model, Usage(completion_tokens=M)) == pytest.approx(per_million[1])


def test_litellm_is_not_imported_to_read_its_prices():
    import subprocess
    import sys

    code = (
        "import sys, django; from django.conf import settings; settings.configure();"
        "from runtime.llm.pricing import price_for; assert price_for('groq/llama-3.3-70b-versatile');"
        "assert 'litellm' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_a_new_version_is_not_priced_as_an_older_one():
    assert price_for("gpt-5") is not None and price_for("openai:gpt-5.9-preview") is None


def test_unknown_models_have_no_price_not_a_zero_one():
    assert estimate_cost("litellm:hosted_vllm/house-model-7b", Usage(prompt_tokens=1000)) is None
    assert estimate_cost("litellm:ollama/llama3", Usage(prompt_tokens=1000)) == 0.0  # LiteLLM: local, free
    assert estimate_cost("openai:my-local-model", Usage(prompt_tokens=1000)) is None
    assert estimate_cost("demo", Usage(prompt_tokens=1000)) == 0.0


def test_the_committed_subset_agrees_with_litellms_map():
    """prices.json is LiteLLM's entries for our providers; refresh it with python -m runtime.llm.pricing."""
    assert json.loads(BUNDLED_PATH.read_text()) == bundled_subset(litellm_map_path())


@pytest.mark.parametrize(
    "model", ["openai:gpt-4o-mini", "anthropic:claude-sonnet-4-5", "gpt-5-mini-2025-08-07"]
)
def test_our_providers_are_priced_without_the_litellm_extra(without_litellm, model):
    price = price_for(model)
    assert price is not None and price.source == "bundled"
    assert estimate_cost("litellm:groq/llama-3.3-70b-versatile", Usage(prompt_tokens=10)) is None


def test_operator_prices_win_and_price_their_own_models(settings):
    settings.AGENT_MODEL_PRICES = {
        "llama3-local": {"input": 0, "output": 0},
        "gpt-4o-mini": {"input": 0.10, "output": 0.50, "cached_input": 0.01},
    }
    assert estimate_cost("openai:llama3-local", Usage(prompt_tokens=5000, completion_tokens=50)) == 0.0
    assert estimate_cost("openai:gpt-4o-mini", Usage(prompt_tokens=M)) == pytest.approx(0.10)
    assert estimate_cost("gpt-4o-mini", Usage(prompt_tokens=M, cached_tokens=M)) == pytest.approx(0.01)


def test_registered_price_sources_are_consulted_after_the_environment(settings, monkeypatch):
    monkeypatch.setattr(pricing, "_sources", [])
    pricing.register_price_source(
        lambda: {"house-model": {"input": 1, "output": 2}, "m2": {"input": 5, "output": 5}}
    )
    settings.AGENT_MODEL_PRICES = {"m2": {"input": 7, "output": 7}}
    assert estimate_cost("openai:house-model", Usage(prompt_tokens=M)) == pytest.approx(1.0)
    assert estimate_cost("m2", Usage(prompt_tokens=M)) == pytest.approx(7.0)


@pytest.mark.parametrize(
    "raw",
    [
        '{"m": {"input": 1}}',
        "not json",
        '["m"]',
        '{"m": {"input": -1, "output": 1}}',
        '{"m": {"input": 1, "output": 1, "x": 2}}',
    ],
)
def test_a_bad_price_setting_stops_start_up_naming_the_variable(monkeypatch, raw):
    monkeypatch.setenv("AGENT_MODEL_PRICES", raw)
    with pytest.raises(ImproperlyConfigured, match="AGENT_MODEL_PRICES"):
        env_model_prices("AGENT_MODEL_PRICES")


def test_openai_cached_and_reasoning_tokens_from_the_usage_payload(openai_server):
    # o3: input $2, cached input $0.50, output $8 per million; reasoning is output
    openai_server.push(Text(["ok"], prompt_tokens=1000, cached_tokens=800, reasoning_tokens=50))
    response, ctx, sink = generate("openai:o3")
    assert response.usage == {
        "prompt_tokens": 1000,
        "completion_tokens": 51,
        "cached_tokens": 800,
        "reasoning_tokens": 50,
    }
    expected = (200 * 2.0 + 800 * 0.5 + 51 * 8.0) / M
    assert ctx.cost_usd == pytest.approx(expected)
    (usage,) = sink.of_type("usage")
    assert usage["cached_tokens"] == 800 and usage["cost_usd"] == pytest.approx(expected)


def test_openai_cached_tokens_in_a_non_streamed_answer(openai_server):
    openai_server.push(Text(["ok"], prompt_tokens=1000, cached_tokens=1000))
    ctx, _ = make_context("hi")
    response = asyncio.run(
        run_in_context(
            ctx, lambda: get_llm_client("openai:gpt-4o").generate(ctx.input_messages, stream=False)
        )
    )
    assert response.usage["cached_tokens"] == 1000
    assert response.cost_usd == pytest.approx((1000 * 1.25 + 1 * 10.0) / M)


def test_anthropic_cache_reads_and_writes_are_priced(anthropic_server):
    # claude-sonnet-4-5: input $3, cache read $0.30, cache write $3.75, output $15 per million
    anthropic_server.push(Text(["ok", "!"], prompt_tokens=100, cached_tokens=2000, cache_write_tokens=400))
    response, ctx, _ = generate("anthropic:claude-sonnet-4-5")
    assert response.usage == {
        "prompt_tokens": 2500,
        "completion_tokens": 2,
        "cached_tokens": 2000,
        "cache_write_tokens": 400,
    }
    assert ctx.cost_usd == pytest.approx((100 * 3 + 2000 * 0.30 + 400 * 3.75 + 2 * 15) / M)


def test_unknown_price_is_said_in_the_usage_event_and_counted_as_unpriced_tokens(openai_server):
    openai_server.push(Text(["a", "b"], prompt_tokens=30))
    response, ctx, sink = generate("openai:llama3-local")
    (usage,) = sink.of_type("usage")
    assert usage["cost_usd"] is None and usage["cost_note"].startswith("Price unknown")
    assert response.cost_known is False
    assert ctx.cost_usd == 0.0 and ctx.unpriced_tokens == 32


@pytest.mark.parametrize("name", ["openai:my-finetune-7", "my-finetune-7"])
def test_an_operator_price_named_as_agents_name_the_model_prices_the_call(openai_server, settings, name):
    """Agents name models with their provider (``openai:my-finetune-7``); the operator may write
    either form. (The provider calls the model by its bare name, which alone matched nothing.)"""
    settings.AGENT_MODEL_PRICES = {name: {"input": 2, "output": 8}}
    openai_server.push(Text(["ok"], prompt_tokens=1000))
    response, ctx, _ = generate("openai:my-finetune-7")
    assert response.cost_usd == pytest.approx((1000 * 2 + 1 * 8) / M) and ctx.unpriced_tokens == 0


@pytest.mark.django_db(transaction=True)  # the provider reads stored prices on its helper thread
def test_a_price_stored_on_the_settings_page_prices_the_call(openai_server, django_user_model):
    from runtime.llm import model_prices

    admin = django_user_model.objects.create_superuser("root", "root@example.com", "x")
    model_prices.model_price_save(
        model="openai:my-finetune-8",
        input_per_million="2",
        output_per_million="8",
        cached_input_per_million="0.5",
        user=admin,
    )
    openai_server.push(Text(["ok"], prompt_tokens=1000, cached_tokens=600))
    try:
        response, _, sink = generate("openai:my-finetune-8")
    finally:
        model_prices.forget()
    assert response.cost_usd == pytest.approx((400 * 2 + 600 * 0.5 + 1 * 8) / M)
    assert "cost_note" not in sink.of_type("usage")[0]
