"""The agent's API keys page, as each persona; the key is shown once and stored hashed."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from runtime.channels.api_key_models import AgentBudget, ApiKey
from runtime.channels.api_keys import NotAllowed, api_key_create, key_for_token

pytestmark = pytest.mark.django_db


def _url(agent, name="agent-api-keys", *extra):
    return reverse(f"builder:{name}", args=[agent.public_id, *extra])


def test_owner_creates_a_key_shown_once_and_stored_hashed(owner_client, agent):
    response = owner_client.post(_url(agent), {"name": "Shop website", "requests_per_minute": "30"})
    assert response.status_code == 200
    token = response.context["new_token"]
    assert token.startswith("sk_live_") and token in response.content.decode()
    assert "you will not see it again" in response.content.decode()
    assert response["Cache-Control"] == "no-store"
    key = ApiKey.objects.get()
    assert (key.name, key.agent_keys, key.requests_per_minute) == ("Shop website", ["helper"], 30)
    assert token not in str(ApiKey.objects.values().get()) and key_for_token(token) == key
    again = owner_client.get(_url(agent)).content.decode()
    assert token not in again and key.display_prefix in again and "Never" in again


def test_htmx_create_answers_the_region(owner_client, agent):
    response = owner_client.post(
        _url(agent), {"name": "Bot", "requests_per_minute": "60"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 201
    assert response.content.decode().lstrip().startswith('<div id="api-keys"')


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"name": "", "requests_per_minute": "60"}, "name", "This field is required."),
        ({"name": "x", "requests_per_minute": "lots"}, "requests_per_minute", "Write a whole number from 1"),
        ({"name": "x", "requests_per_minute": "0"}, "requests_per_minute", "Write a whole number from 1"),
    ],
)
def test_bad_values_are_422_next_to_the_field(owner_client, agent, data, field, message):
    response = owner_client.post(_url(agent), data, headers={"HX-Request": "true"})
    assert response.status_code == 422
    assert message in " ".join(response.context["create_form"].errors[field])
    assert f'id="id_{field}-error"' in response.content.decode()
    assert not ApiKey.objects.exists()


def test_budget_is_set_and_checked(owner_client, agent):
    bad = owner_client.post(
        _url(agent, "agent-api-budget"), {"daily_budget_usd": "-3"}, headers={"HX-Request": "true"}
    )
    assert bad.status_code == 422 and "Write an amount from 0" in bad.content.decode()
    cents = owner_client.post(_url(agent, "agent-api-budget"), {"daily_budget_usd": "1.234"})
    assert cents.status_code == 422 and "two decimals" in cents.content.decode()
    good = owner_client.post(_url(agent, "agent-api-budget"), {"daily_budget_usd": "$12.50"})
    assert good.status_code == 302
    assert AgentBudget.objects.get(agent_key="helper").daily_budget_usd == Decimal("12.50")
    owner_client.post(_url(agent, "agent-api-budget"), {"daily_budget_usd": ""})
    assert AgentBudget.objects.get(agent_key="helper").daily_budget_usd is None


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        ("lots", "Write a whole number of tokens"),
        ("1.5", "Write a whole number of tokens"),
        ("-10", "from 0 to"),
        ("2000000000000", "from 0 to"),
    ],
)
def test_a_bad_token_budget_is_422_next_to_its_field_and_saves_nothing(owner_client, agent, tokens, message):
    response = owner_client.post(
        _url(agent, "agent-api-budget"),
        {"daily_budget_usd": "5", "daily_budget_tokens": tokens},
        headers={"HX-Request": "true"},
    )
    body = response.content.decode()
    assert response.status_code == 422 and 'id="id_daily_budget_tokens-error"' in body and message in body
    assert not AgentBudget.objects.exists()  # the good dollar amount is not saved half-way either


def test_a_token_budget_is_set_beside_the_dollar_one(owner_client, agent):
    response = owner_client.post(
        _url(agent, "agent-api-budget"), {"daily_budget_usd": "2", "daily_budget_tokens": "200k"}, follow=True
    )
    assert "Daily budget set to $2.00 and 200,000 tokens." in response.content.decode()
    budget = AgentBudget.objects.get(agent_key="helper")
    assert (budget.daily_budget_usd, budget.daily_budget_tokens) == (Decimal("2.00"), 200_000)
    page = owner_client.get(_url(agent)).content.decode()
    assert 'value="200000"' in page and "0 tokens of 200,000" in page
    owner_client.post(
        _url(agent, "agent-api-budget"), {"daily_budget_usd": "", "daily_budget_tokens": "1,500,000"}
    )
    budget.refresh_from_db()
    assert (budget.daily_budget_usd, budget.daily_budget_tokens) == (None, 1_500_000)


def test_the_page_warns_when_the_agents_model_has_no_price(owner_client, owner):
    from builder.services import agent_publish
    from tests.builder.conftest import make_agent

    agent = make_agent(owner, slug="local-llm", model="openai:my-finetune-2031")
    agent_publish(agent=agent, user=owner)
    owner_client.post(_url(agent, "agent-api-budget"), {"daily_budget_usd": "5"})
    page = owner_client.get(_url(agent)).content.decode()
    assert "openai:my-finetune-2031</code> has no known price" in page
    assert "With a budget in dollars only, every request is refused." in page


def test_revoke_confirms_then_revokes(owner_client, owner, agent):
    key, token = api_key_create(name="Old", agent_keys=["helper"], user=owner)
    dialog = owner_client.get(_url(agent, "agent-api-key-revoke", key.pk), headers={"HX-Request": "true"})
    assert dialog.status_code == 200 and "<dialog" in dialog.content.decode()
    assert ApiKey.objects.get().revoked_at is None  # a GET changes nothing
    response = owner_client.post(_url(agent, "agent-api-key-revoke", key.pk))
    assert response.status_code == 302
    assert ApiKey.objects.get().revoked_at is not None
    assert "Revoked" in owner_client.get(_url(agent)).content.decode()


def test_limit_is_changed_per_key(owner_client, owner, agent):
    key, _ = api_key_create(name="K", agent_keys=["helper"], user=owner)
    prefix = f"k{key.pk.hex[:8]}"
    bad = owner_client.post(
        _url(agent, "agent-api-key-limit", key.pk),
        {f"{prefix}-requests_per_minute": "x"},
        headers={"HX-Request": "true"},
    )
    assert bad.status_code == 422 and "Write a whole number" in bad.content.decode()
    owner_client.post(_url(agent, "agent-api-key-limit", key.pk), {f"{prefix}-requests_per_minute": "5"})
    assert ApiKey.objects.get().requests_per_minute == 5


def test_strangers_and_other_staff_see_nothing_and_change_nothing(
    staff_client, stranger_client, owner, agent
):
    key, _ = api_key_create(name="K", agent_keys=["helper"], user=owner)
    for client in (staff_client, stranger_client):
        for method, url, data in [
            ("get", _url(agent), {}),
            ("post", _url(agent), {"name": "mine", "requests_per_minute": "60"}),
            ("post", _url(agent, "agent-api-budget"), {"daily_budget_usd": "1"}),
            ("post", _url(agent, "agent-api-key-revoke", key.pk), {}),
            (
                "post",
                _url(agent, "agent-api-key-limit", key.pk),
                {f"k{key.pk.hex[:8]}-requests_per_minute": "1"},
            ),
        ]:
            response = getattr(client, method)(url, data)
            assert response.status_code in (302, 404), (url, response.status_code)  # 302: not staff, to login
    key.refresh_from_db()
    assert key.revoked_at is None and key.requests_per_minute == 60
    assert ApiKey.objects.count() == 1 and not AgentBudget.objects.exists()


def test_the_service_refuses_other_users_too(other_staff, agent):
    with pytest.raises(NotAllowed):
        api_key_create(name="K", agent_keys=["helper"], user=other_staff)


def test_csrf_is_required(owner, agent):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.post(_url(agent), {"name": "K", "requests_per_minute": "60"}).status_code == 403
    assert not ApiKey.objects.exists()


def test_the_caps_every_run_has_are_shown(owner_client, owner, agent):
    from builder.services import agent_publish, agent_update_draft

    agent_update_draft(agent=agent, user=owner, config={"system_prompt": "x", "max_tokens": 321})
    agent_publish(agent=agent, user=owner)
    text = owner_client.get(_url(agent)).content.decode()
    assert "At most 10 model calls" in text and "At most 321 tokens per model answer" in text
    assert "stopped after 900 seconds" in text


def test_a_system_has_its_own_keys_page(owner_client, staff_client, owner, agent):
    from builder.services import agent_publish
    from builder.services.systems import system_publish, system_save

    agent_publish(agent=agent, user=owner)
    system = system_save(
        owner=owner, slug="team", name="Team", entry_agent=agent, members={agent.slug: "lead"}
    )
    url = reverse("builder:system-api-keys", args=[system.public_id])
    assert "not published yet" in owner_client.get(url).content.decode()
    system_publish(system=system, user=owner)
    response = owner_client.post(url, {"name": "Team app", "requests_per_minute": "10"})
    assert response.status_code == 200 and response.context["new_token"]
    assert ApiKey.objects.get().agent_keys == ["team"]
    assert "not published yet" not in response.content.decode()
    assert staff_client.get(url).status_code == 404
    assert staff_client.post(url, {"name": "x", "requests_per_minute": "10"}).status_code == 404
    assert ApiKey.objects.count() == 1
