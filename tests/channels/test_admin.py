"""The admin's API keys: each staff user sees the keys of the agents they may edit; revoke is a POST."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from runtime.channels.api_key_models import ApiKey
from runtime.channels.api_keys import api_key_create
from tests.builder.conftest import make_agent

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_owner_sees_and_revokes_other_staff_see_nothing(owner, other_staff):
    make_agent(owner)
    key, token = api_key_create(name="Shop", agent_keys=["helper"], user=owner)
    changelist = reverse("admin:runtime_apikey_changelist")
    owned = _client(owner).get(changelist).content.decode()
    assert "Shop" in owned and key.display_prefix in owned and key.secret_hash not in owned
    assert "Shop" not in _client(other_staff).get(changelist).content.decode()
    revoke = reverse("admin:runtime_apikey_revoke_key", args=[key.pk])
    assert _client(other_staff).post(revoke).status_code in (302, 404)
    assert ApiKey.objects.get().revoked_at is None
    confirm = _client(owner).get(revoke)
    assert confirm.status_code == 200 and ApiKey.objects.get().revoked_at is None
    assert _client(owner).post(revoke).status_code == 302
    assert ApiKey.objects.get().revoked_at is not None
    detail = _client(owner).get(reverse("admin:runtime_apikey_change", args=[key.pk])).content.decode()
    assert key.secret_hash not in detail and token not in detail
