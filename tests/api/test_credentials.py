"""Credentials remembered for a few seconds: revocation takes effect within the window, expiry exactly."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import AnonymousSession
from runtime.api.credentials import credentials
from tests.api.conftest import API

pytestmark = pytest.mark.django_db


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(credentials, "clock", fake)
    credentials.clear()
    yield fake
    credentials.clear()


def _client(**headers: str) -> APIClient:
    client = APIClient()
    client.credentials(**headers)
    return client


@override_settings(AGENT_API_AUTH_CACHE_SECONDS=5)
def test_a_deleted_token_is_refused_once_the_window_has_passed(clock, owner, django_assert_num_queries):
    key = Token.objects.create(user=owner).key
    client = _client(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get(f"{API}/models/").status_code == 200
    with django_assert_num_queries(0):  # the second request within the window asks nothing
        assert client.get(f"{API}/models/").status_code == 200
    Token.objects.filter(key=key).delete()
    clock.now += 5.1
    refused = client.get(f"{API}/models/")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "authentication_failed"


@override_settings(AGENT_API_AUTH_CACHE_SECONDS=0)
def test_with_the_window_at_zero_a_deleted_token_is_refused_at_once(clock, owner):
    key = Token.objects.create(user=owner).key
    client = _client(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get(f"{API}/models/").status_code == 200
    Token.objects.filter(key=key).delete()
    assert client.get(f"{API}/models/").status_code == 401


@override_settings(AGENT_API_AUTH_CACHE_SECONDS=5)
def test_a_deactivated_user_is_refused_once_the_window_has_passed(clock, owner):
    key = Token.objects.create(user=owner).key
    client = _client(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get(f"{API}/runs/").status_code == 200
    type(owner).objects.filter(pk=owner.pk).update(is_active=False)
    clock.now += 6
    assert client.get(f"{API}/runs/").status_code == 401


@override_settings(AGENT_API_AUTH_CACHE_SECONDS=60)
def test_an_anonymous_session_is_never_remembered_past_its_expiry(clock):
    session = AnonymousSession.objects.create(expires_at=timezone.now() + timedelta(seconds=2))
    client = _client(HTTP_X_ANONYMOUS_TOKEN=session.token)
    assert client.get(f"{API}/runs/").status_code == 200
    # the session is due to expire in 2 s; the window (60 s) must not outlast it
    AnonymousSession.objects.filter(pk=session.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    clock.now += 2.1
    expired = client.get(f"{API}/runs/")
    assert expired.status_code == 401
    assert "expired" in expired.json()["error"]["message"]


@override_settings(AGENT_API_AUTH_CACHE_SECONDS=5)
def test_a_wrong_token_always_reaches_the_database(clock, django_assert_num_queries):
    client = _client(HTTP_AUTHORIZATION="Token not-a-real-token")
    for _ in range(2):
        with django_assert_num_queries(1):
            assert client.get(f"{API}/models/").status_code == 401
