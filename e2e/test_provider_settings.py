"""Model keys and prices in Chromium: a bad base URL or price is shown at its field; a saved key
is offered at once and a saved price prices the next run (in the live server and worker,
separate processes, with no restart); keys are never shown back."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from playwright.sync_api import expect

from e2e.conftest import shot
from runtime.models import ProviderCredential

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_enter_a_model_key_in_the_browser(page, live, staff):
    staff.user_permissions.add(Permission.objects.get(codename="manage_providers"))
    page.goto("/settings/models/")
    expect(page.locator("#builder").get_by_role("heading", name="Model keys")).to_be_visible()
    page.get_by_label("OpenAI-compatible base URL").fill("gpu-box:8000/v1")
    page.get_by_role("button", name="Save keys").click()
    expect(page.locator("#id_OPENAI_BASE_URL-error")).to_contain_text("starting with http://")
    shot(page, "settings-01-bad-base-url")
    assert not ProviderCredential.objects.exists()

    page.get_by_label("OpenAI-compatible base URL").fill("")
    page.get_by_label("Anthropic API key").fill("sk-ant-e2e-secret")
    page.get_by_role("button", name="Save keys").click()
    expect(page.get_by_text("Saved. The model picker offers the new providers now.")).to_be_visible()
    expect(page.locator("#provider-models")).to_contain_text("anthropic:claude")
    expect(page.get_by_role("row", name="ANTHROPIC_API_KEY")).to_contain_text("Stored here")
    expect(page.get_by_role("row", name="OPENAI_API_KEY")).to_contain_text("From the environment (wins)")
    assert "sk-ant-e2e-secret" not in page.content()
    shot(page, "settings-02-saved")


def test_price_a_model_in_the_browser_and_the_next_run_is_priced(page, live, staff, fake_openai):
    """A model no price list knows reads "price unknown" in the playground; a wrong price is
    answered at its field and saves nothing; the right one prices the next run in the worker
    (another process) with no restart; it can be edited and removed."""
    from builder.services import agent_create
    from runtime.models import ModelPrice
    from tests.fakes.llm_servers import Text

    staff.user_permissions.add(Permission.objects.get(codename="manage_providers"))
    agent = agent_create(
        owner=staff,
        slug="local-llm",
        name="Local LLM",
        config={"system_prompt": "x", "model": "openai:my-vllm-model"},
    )
    fake_openai.push(Text(["unpriced"], prompt_tokens=500_000), Text(["priced"], prompt_tokens=500_000))

    def chat(text: str):
        page.goto(f"/agents/{agent.public_id}/")
        page.get_by_label("Message").fill(text)
        page.get_by_role("button", name="Send").click()
        usage = page.locator("#pg-chat .b-turn").last.locator(".b-usage")
        expect(usage).to_contain_text("succeeded", timeout=30_000)
        return usage

    usage = chat("first")
    expect(usage).to_contain_text("price unknown")
    assert "$0.0000" not in usage.inner_text()
    shot(page, "prices-01-playground-price-unknown")

    page.goto("/settings/models/")
    prices = page.locator("#model-prices")
    expect(prices.get_by_text("No prices entered.")).to_be_visible()
    prices.get_by_label("Model").fill("openai:my-vllm-model")
    prices.get_by_label("Input, $ per million tokens", exact=True).fill("-2")
    prices.get_by_label("Output, $ per million tokens").fill("eight")
    prices.get_by_role("button", name="Save price").click()
    expect(page.locator("#id_input_per_million-error")).to_contain_text("cannot be negative")
    expect(page.locator("#id_output_per_million-error")).to_contain_text("Write a number")
    expect(prices.get_by_label("Model")).to_have_value("openai:my-vllm-model")  # nothing typed is lost
    shot(page, "prices-02-wrong-value")
    assert not ModelPrice.objects.exists()

    prices.get_by_label("Input, $ per million tokens", exact=True).fill("2")
    prices.get_by_label("Output, $ per million tokens").fill("8")
    prices.get_by_role("button", name="Save price").click()
    expect(page.get_by_text("Added the price of openai:my-vllm-model")).to_be_visible()
    row = page.get_by_role("row", name=re.compile("openai:my-vllm-model"))
    expect(row).to_contain_text("$2")
    expect(row).to_contain_text("Entered here")
    shot(page, "prices-03-saved")

    usage = chat("second")  # 500,000 prompt tokens at $2 per million, plus a few output tokens
    expect(usage).to_contain_text(re.compile(r"\$1\.00\d\d"))
    shot(page, "prices-04-playground-priced")

    page.goto("/settings/models/")
    page.get_by_role("link", name="Edit the price of openai:my-vllm-model").click()
    expect(page.get_by_role("heading", name="Change the price of openai:my-vllm-model")).to_be_visible()
    expect(page.locator("#model-prices").get_by_label("Output, $ per million tokens")).to_have_value("8")
    page.locator("#model-prices").get_by_label("Cached input, $ per million tokens").fill("0.5")
    page.get_by_role("button", name="Save price").click()
    expect(page.get_by_text("Changed the price of openai:my-vllm-model")).to_be_visible()
    assert ModelPrice.objects.get().cached_input_per_million == Decimal("0.5")
    page.get_by_role("button", name="Remove the price of openai:my-vllm-model").click()
    expect(page.get_by_text("Removed the price of openai:my-vllm-model")).to_be_visible()
    assert not ModelPrice.objects.exists()
