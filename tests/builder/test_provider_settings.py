"""Model keys and prices entered in the UI: permission, write-only and encrypted keys, bad prices
answered at their field, the environment wins, no restart."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client

from runtime.llm import get_llm_client, list_models
from runtime.llm.credentials import credential, forget
from runtime.models import ProviderCredential

URL = "/settings/models/"


@pytest.fixture(autouse=True)
def _no_env_keys(settings):
    settings.OPENAI_API_KEY = settings.OPENAI_BASE_URL = settings.ANTHROPIC_API_KEY = ""
    forget()
    yield
    forget()


@pytest.fixture
def manager(other_staff):
    other_staff.user_permissions.add(Permission.objects.get(codename="manage_providers"))
    client = Client()
    client.force_login(other_staff)
    return client


def test_only_superusers_and_provider_managers_see_the_page(owner_client, manager):
    assert owner_client.get(URL).status_code == 403
    assert owner_client.post(URL, {"OPENAI_API_KEY": "sk-x"}).status_code == 403
    assert not ProviderCredential.objects.exists()
    assert manager.get(URL).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_saved_key_is_encrypted_write_only_and_offered_without_restart(manager):
    assert not any(m["provider"] == "openai" for m in list_models()["models"])
    response = manager.post(URL, {"OPENAI_API_KEY": "sk-ui-secret-123", "ANTHROPIC_API_KEY": ""})
    assert response.status_code == 302
    with connection.cursor() as cursor:
        cursor.execute("SELECT value FROM runtime_providercredential")
        (raw,) = cursor.fetchone()
    assert "sk-ui-secret" not in raw
    page = manager.get(URL).content.decode()
    assert "sk-ui-secret" not in page and "Stored here" in page and "openai:gpt-4o-mini" in page
    assert any(m["id"] == "openai:gpt-4o-mini" for m in list_models()["models"])

    async def key_seen_by_a_worker() -> str:  # the ORM is sync-only; this runs inside a loop
        return get_llm_client("openai:gpt-4o-mini")._api_key()

    forget()
    assert asyncio.run(key_seen_by_a_worker()) == "sk-ui-secret-123"

    manager.post(URL, {"clear": ["OPENAI_API_KEY"]})
    assert not ProviderCredential.objects.exists() and credential("OPENAI_API_KEY") == ""


def test_blank_keeps_the_stored_key_and_the_environment_wins(manager, settings):
    manager.post(URL, {"ANTHROPIC_API_KEY": "sk-ant-stored"})
    manager.post(URL, {"ANTHROPIC_API_KEY": "", "OPENAI_BASE_URL": "http://gpu-box:8000/v1"})
    assert credential("ANTHROPIC_API_KEY") == "sk-ant-stored"
    assert credential("OPENAI_BASE_URL") == "http://gpu-box:8000/v1"
    settings.ANTHROPIC_API_KEY = "sk-ant-from-env"
    assert credential("ANTHROPIC_API_KEY") == "sk-ant-from-env"
    assert "From the environment (wins)" in manager.get(URL).content.decode()


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"OPENAI_BASE_URL": "gpu-box:8000/v1"}, "OPENAI_BASE_URL", "starting with http://"),
        ({"OPENAI_API_KEY": "sk-a b"}, "OPENAI_API_KEY", "no spaces"),
    ],
)
def test_bad_input_is_a_422_next_to_the_field_and_saves_nothing(manager, data, field, message):
    response = manager.post(URL, data)
    body = response.content.decode()
    assert response.status_code == 422 and f'id="id_{field}-error"' in body and message in body
    assert not ProviderCredential.objects.exists()


# -- model prices --------------------------------------------------------------------------------

PRICES = "/settings/models/prices/"
REMOVE = "/settings/models/prices/remove/"


@pytest.fixture
def _fresh_prices():
    from runtime.llm import model_prices

    model_prices.forget()
    yield
    model_prices.forget()


@pytest.mark.django_db(transaction=True)  # the async read runs on another thread's connection
@pytest.mark.usefixtures("_fresh_prices")
def test_a_price_entered_on_the_page_prices_runs_without_a_restart(manager, settings):
    from runtime.llm.pricing import Usage, estimate_cost
    from runtime.models import ModelPrice

    settings.AGENT_MODEL_PRICES = {}
    usage = Usage(prompt_tokens=1_000_000, completion_tokens=1_000_000, cached_tokens=500_000)
    assert estimate_cost("openai:my-finetune", usage) is None  # price unknown
    response = manager.post(
        PRICES,
        {
            "model": " OpenAI:My-Finetune ",
            "input_per_million": "$2.00",
            "output_per_million": "8",
            "cached_input_per_million": "0.5",
        },
        follow=True,
    )
    assert "Added the price of openai:my-finetune" in response.content.decode()
    row = ModelPrice.objects.get()
    assert (row.model, row.input_per_million, row.cached_input_per_million) == (
        "openai:my-finetune",
        Decimal("2"),
        Decimal("0.5"),
    )
    # 500k plain input at $2 + 500k cached at $0.50 + 1M output at $8
    assert estimate_cost("openai:my-finetune", usage) == pytest.approx(1.0 + 0.25 + 8.0)

    async def priced_inside_a_worker_loop() -> float | None:  # the providers price from async code
        return estimate_cost("openai:my-finetune", Usage(completion_tokens=1_000_000))

    from runtime.llm import model_prices

    model_prices.forget()
    assert asyncio.run(priced_inside_a_worker_loop()) == pytest.approx(8.0)

    # edit: the form comes back filled in; saving the same name changes it
    form = manager.get(URL, {"edit": "openai:my-finetune"}).content.decode()
    assert 'value="openai:my-finetune"' in form and 'value="8"' in form
    manager.post(PRICES, {"model": "openai:my-finetune", "input_per_million": "0", "output_per_million": "0"})
    assert estimate_cost("openai:my-finetune", usage) == 0.0
    assert ModelPrice.objects.get().cached_input_per_million is None

    manager.post(REMOVE, {"model": "openai:my-finetune"})
    assert not ModelPrice.objects.exists() and estimate_cost("openai:my-finetune", usage) is None


@pytest.mark.usefixtures("_fresh_prices")
def test_the_environment_wins_and_the_page_says_so(manager, settings):
    from runtime.llm.pricing import Usage, estimate_cost

    settings.AGENT_MODEL_PRICES = {"local-llama": {"input": 0, "output": 0}}
    response = manager.post(
        PRICES, {"model": "local-llama", "input_per_million": "1", "output_per_million": "1"}, follow=True
    )
    body = response.content.decode()
    assert "AGENT_MODEL_PRICES in the server&#x27;s environment also prices local-llama" in body
    assert "From the environment (wins)" in body
    assert estimate_cost("local-llama", Usage(prompt_tokens=1_000_000)) == 0.0


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"model": "", "input_per_million": "1", "output_per_million": "1"}, "model", "Write the model"),
        ({"model": "my model", "input_per_million": "1", "output_per_million": "1"}, "model", "no spaces"),
        (
            {"model": "m", "input_per_million": "-1", "output_per_million": "1"},
            "input_per_million",
            "negative",
        ),
        (
            {"model": "m", "input_per_million": "cheap", "output_per_million": "1"},
            "input_per_million",
            "number",
        ),
        (
            {"model": "m", "input_per_million": "1", "output_per_million": ""},
            "output_per_million",
            "Write dollars",
        ),
        (
            {
                "model": "m",
                "input_per_million": "1",
                "output_per_million": "1",
                "cached_input_per_million": "-0.1",
            },
            "cached_input_per_million",
            "negative",
        ),
        (
            {"model": "m", "input_per_million": "NaN", "output_per_million": "1"},
            "input_per_million",
            "number",
        ),
    ],
)
def test_a_bad_price_is_a_422_next_to_its_field_and_saves_nothing(manager, data, field, message):
    from runtime.models import ModelPrice

    response = manager.post(PRICES, data)
    body = response.content.decode()
    assert response.status_code == 422 and f'id="id_{field}-error"' in body and message in body
    assert not ModelPrice.objects.exists()


def test_staff_without_the_permission_get_403_and_change_no_price(owner_client, manager):
    from runtime.models import ModelPrice

    manager.post(PRICES, {"model": "kept", "input_per_million": "1", "output_per_million": "2"})
    assert (
        owner_client.post(
            PRICES, {"model": "m", "input_per_million": "1", "output_per_million": "1"}
        ).status_code
        == 403
    )
    assert owner_client.post(REMOVE, {"model": "kept"}).status_code == 403
    assert list(ModelPrice.objects.values_list("model", flat=True)) == ["kept"]
    assert owner_client.get(PRICES).status_code in (403, 405)  # never a change on GET
    assert manager.get(REMOVE).status_code == 405


def test_the_service_refuses_users_without_the_permission(owner):
    from runtime.llm.model_prices import NotAllowed, model_price_save

    with pytest.raises(NotAllowed):
        model_price_save(
            model="m", input_per_million="1", output_per_million="1", cached_input_per_million="", user=owner
        )
