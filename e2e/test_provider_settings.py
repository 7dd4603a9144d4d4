"""Model keys in Chromium: a bad base URL is shown at its field; a saved key is offered at once
(in the live server, a separate process, with no restart) and never shown back."""

from __future__ import annotations

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
