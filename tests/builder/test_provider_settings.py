"""Model keys entered in the UI: permission, write-only and encrypted, env wins, no restart."""

from __future__ import annotations

import asyncio

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
