"""Minting anonymous sessions: token strength, expiry, and the per-address rate limit."""

from __future__ import annotations

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import AnonymousSession

pytestmark = pytest.mark.django_db
MINT = "/api/accounts/anonymous-session/"
LOCAL_CACHE = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "mint-tests"}
}


@override_settings(AGENT_API_AUTH_CACHE_SECONDS=0)  # expired below by a write, not by time passing
def test_mint_returns_a_strong_token_that_works_until_it_expires():
    response = APIClient().post(MINT)
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"token", "expires_at"}
    # at least 128 bits: 22+ URL-safe base64 characters
    assert len(body["token"]) >= 22
    session = AnonymousSession.objects.get(token=body["token"])
    assert session.expires_at > timezone.now()
    assert APIClient().post(MINT).json()["token"] != body["token"]

    client = APIClient()
    client.credentials(HTTP_X_ANONYMOUS_TOKEN=body["token"])
    assert client.get("/api/agents/runs/").status_code == 200
    AnonymousSession.objects.filter(pk=session.pk).update(expires_at=timezone.now())
    expired = client.get("/api/agents/runs/")
    assert expired.status_code == 401
    assert "expired" in expired.json()["error"]["message"]


@override_settings(ANONYMOUS_SESSION_MINT_RATE="3/min", CACHES=LOCAL_CACHE)
def test_minting_is_rate_limited_per_client_address():
    client = APIClient()
    statuses = [client.post(MINT, REMOTE_ADDR="203.0.113.7").status_code for _ in range(4)]
    assert statuses == [201, 201, 201, 429]
    limited = client.post(MINT, REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert limited.status_code == 429, "a client must not escape the limit by inventing X-Forwarded-For"
    error = limited.json()["error"]
    assert error["code"] == "rate_limited" and error["message"]
    assert int(limited["Retry-After"]) > 0
    assert client.post(MINT, REMOTE_ADDR="203.0.113.8").status_code == 201
    assert AnonymousSession.objects.count() == 4


@override_settings(
    ANONYMOUS_SESSION_MINT_RATE="1/min",
    CACHES=LOCAL_CACHE,
    REST_FRAMEWORK={"NUM_PROXIES": 1, "EXCEPTION_HANDLER": "runtime.api.errors.exception_handler"},
)
def test_behind_a_declared_proxy_the_forwarded_address_is_the_key():
    client = APIClient()
    first = client.post(MINT, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.1")
    second = client.post(MINT, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.2")
    again = client.post(MINT, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="spoofed, 198.51.100.1")
    assert (first.status_code, second.status_code, again.status_code) == (201, 201, 429)


def test_staff_can_expire_sessions_in_the_admin_and_never_see_tokens(owner):
    from django.test import Client

    session = AnonymousSession.objects.create()
    admin = Client()
    owner.is_superuser = True
    owner.save()
    admin.force_login(owner)
    listing = admin.get("/admin/accounts/anonymoussession/")
    assert listing.status_code == 200
    detail = admin.get(f"/admin/accounts/anonymoussession/{session.pk}/change/")
    assert detail.status_code == 200 and session.token.encode() not in detail.content
    response = admin.post(
        "/admin/accounts/anonymoussession/",
        {"action": "expire_now", "_selected_action": [str(session.pk)]},
    )
    assert response.status_code == 302
    session.refresh_from_db()
    assert session.is_expired
