"""The API keys page in Chromium: create a key, copy it, use it with the openai SDK, revoke it
(behind a confirmation) and see it refused; a wrong value shows its message by the field."""

from __future__ import annotations

import time

import openai
import pytest
from playwright.sync_api import expect

from e2e.conftest import shot
from tests.fakes.llm_servers import Text

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _published_agent(staff):
    from builder.services import agent_create, agent_publish

    agent = agent_create(
        owner=staff,
        slug="shop-helper",
        name="Shop helper",
        config={"system_prompt": "Help.", "model": "openai:gpt-4o-mini"},
    )
    agent_publish(agent=agent, user=staff)
    return agent


def field_error(page, label: str):
    return page.locator(".b-field").filter(has=page.get_by_label(label, exact=True)).locator(".b-error")


def test_create_copy_use_and_revoke_a_key(page, live, staff, fake_openai):
    from runtime.channels.api_key_models import ApiKey

    agent = _published_agent(staff)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live)
    page.goto(f"/agents/{agent.public_id}/publish/api-keys/")
    expect(page.get_by_text("No keys yet")).to_be_visible()

    page.get_by_label("Key name").fill("Shop website")
    page.get_by_label("Requests per minute").fill("30")
    page.get_by_role("button", name="Create key").click()
    secret = page.get_by_label("New API key")
    expect(page.get_by_text("you will not see it again")).to_be_visible()
    token = secret.input_value()
    assert token.startswith("sk_live_") and len(token) > 40
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="Copied.")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == token
    row = page.get_by_role("row").filter(has_text="Shop website")
    expect(row).to_contain_text("Active")
    expect(row).to_contain_text("Never")
    shot(page, "api-keys-01-created")

    # the copied key works with the real SDK, and the page shows its use
    fake_openai.push(Text(["Hi", " from", " the", " shop."]))
    client = openai.OpenAI(base_url=f"{live}/v1", api_key=token, max_retries=0)
    answer = client.chat.completions.create(
        model="shop-helper", messages=[{"role": "user", "content": "hello"}]
    )
    assert answer.choices[0].message.content == "Hi from the shop."
    page.reload()
    expect(page.get_by_role("row").filter(has_text="Shop website")).to_contain_text("ago")
    assert token not in page.content()  # shown once, never again

    # revoke: a confirmation first, then the key is refused
    page.get_by_role("row").filter(has_text="Shop website").get_by_role("link", name="Revoke").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("cannot be undone")
    shot(page, "api-keys-02-revoke-confirm")
    dialog.get_by_role("button", name="Revoke key").click()
    expect(page.get_by_role("row").filter(has_text="Shop website")).to_contain_text("Revoked")
    assert ApiKey.objects.get().revoked_at is not None
    shot(page, "api-keys-03-revoked")
    # a web process takes a key it just saw good as good for AGENT_API_AUTH_CACHE_SECONDS (5 s)
    deadline = time.monotonic() + 15
    while True:
        try:
            client.models.list()
        except openai.AuthenticationError as refused:
            assert "revoked" in refused.message
            break
        assert time.monotonic() < deadline, "the revoked key was still accepted after 15 s"
        time.sleep(0.25)


def test_bad_values_show_by_their_fields(page, staff):
    from runtime.channels.api_key_models import AgentBudget, ApiKey

    agent = _published_agent(staff)
    page.goto(f"/agents/{agent.public_id}/publish/api-keys/")
    page.get_by_label("Key name").fill("Bot")
    page.get_by_label("Requests per minute").fill("lots")
    page.get_by_role("button", name="Create key").click()
    expect(field_error(page, "Requests per minute")).to_contain_text("Write a whole number from 1 to 10000")
    expect(page.get_by_label("Key name")).to_have_value("Bot")
    assert not ApiKey.objects.exists()

    page.get_by_label("Daily budget (US dollars)").fill("1.999")
    page.get_by_role("button", name="Save budget").click()
    expect(field_error(page, "Daily budget (US dollars)")).to_contain_text("two decimals")
    shot(page, "api-keys-04-bad-budget")
    assert not AgentBudget.objects.exists()
    page.get_by_label("Daily budget (US dollars)").fill("2.50")
    page.get_by_label("Daily budget (tokens)").fill("about 200k")
    page.get_by_role("button", name="Save budget").click()
    expect(field_error(page, "Daily budget (tokens)")).to_contain_text("Write a whole number of tokens")
    expect(page.get_by_label("Daily budget (US dollars)")).to_have_value("2.50")  # kept, not saved
    shot(page, "api-keys-05-bad-token-budget")
    assert not AgentBudget.objects.exists()
    page.get_by_label("Daily budget (tokens)").fill("200k")
    page.get_by_role("button", name="Save budget").click()
    expect(page.get_by_text("Daily budget set to $2.50 and 200,000 tokens.")).to_be_visible()
    expect(page.get_by_label("Daily budget (US dollars)")).to_have_value("2.50")
    expect(page.get_by_label("Daily budget (tokens)")).to_have_value("200000")
    expect(page.locator("#spend-today")).to_contain_text("0 tokens of 200,000")

    # an existing key's rate: a wrong value shows under its own box, the stored one stays
    from runtime.channels.api_keys import api_key_create

    api_key_create(name="Mobile app", agent_keys=["shop-helper"], user=staff, requests_per_minute=20)
    page.reload()
    rate = page.get_by_label("Requests per minute for Mobile app")
    rate.fill("0")
    page.get_by_role("row").filter(has_text="Mobile app").get_by_role("button", name="Save").click()
    expect(page.get_by_role("row").filter(has_text="Mobile app").locator(".b-error")).to_contain_text(
        "Write a whole number from 1 to 10000"
    )
    expect(page.get_by_label("Requests per minute for Mobile app")).to_have_value("0")
    assert ApiKey.objects.get(name="Mobile app").requests_per_minute == 20
    page.get_by_label("Requests per minute for Mobile app").fill("45")
    page.get_by_role("row").filter(has_text="Mobile app").get_by_role("button", name="Save").click()
    expect(page.get_by_text("“Mobile app” may send 45 requests per minute.")).to_be_visible()
    assert ApiKey.objects.get(name="Mobile app").requests_per_minute == 45
