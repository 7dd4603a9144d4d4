"""Keys: the secret is hashed, found in constant time, touched at most once a minute; the limit."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import RequestFactory
from rest_framework import exceptions
from rest_framework.request import Request

from runtime.channels import api_keys
from runtime.channels.api_key_models import ApiKey
from runtime.channels.api_keys import (
    ChannelInputError,
    api_key_create,
    api_key_revoke,
    key_for_token,
    key_touch,
)
from runtime.channels.auth import ApiKeyAuthentication, ApiKeyRateThrottle

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(db):
    return get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-12345")


def _request(token: str) -> Request:
    return Request(RequestFactory().get("/v1/models", HTTP_AUTHORIZATION=f"Bearer {token}"))


def test_only_a_hash_is_stored_and_a_near_miss_is_refused(admin):
    key, token = api_key_create(name="k", agent_keys=["echo"], user=admin)
    row = ApiKey.objects.values().get()
    assert token.startswith("sk_live_" + key.lookup) and token not in str(row)
    assert key_for_token(token) == key
    assert key_for_token(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert key_for_token("sk_live_\x00") is None and key_for_token("Token abc") is None


def test_revoked_and_unknown_keys_fail_authentication(admin):
    key, token = api_key_create(name="k", agent_keys=["echo"], user=admin)
    assert ApiKeyAuthentication().authenticate(_request(token))[1] == key
    api_key_revoke(key=key, user=admin)
    from runtime.api.credentials import credentials

    credentials.clear()  # what AGENT_API_AUTH_CACHE_SECONDS would do after a few seconds
    with pytest.raises(exceptions.AuthenticationFailed, match="revoked"):
        ApiKeyAuthentication().authenticate(_request(token))
    with pytest.raises(exceptions.AuthenticationFailed, match="not valid"):
        ApiKeyAuthentication().authenticate(_request("sk_live_" + "x" * 50))
    assert ApiKeyAuthentication().authenticate(_request("some.jwt.token")) is None  # another scheme's


def test_last_used_is_written_at_most_once_a_minute(admin, django_assert_num_queries):
    key, _ = api_key_create(name="k", agent_keys=["echo"], user=admin)
    api_keys._touched.clear()
    with django_assert_num_queries(1):
        key_touch(key)
    with django_assert_num_queries(0):
        key_touch(key)
        key_touch(key)
    assert ApiKey.objects.get().last_used_at is not None


@pytest.mark.parametrize("value", ["0", "-1", "abc", "10001", "1.5"])
def test_bad_rates_are_refused(admin, value):
    with pytest.raises(ChannelInputError) as bad:
        api_key_create(name="k", agent_keys=["echo"], user=admin, requests_per_minute=value)
    assert bad.value.field == "requests_per_minute"


def test_unknown_agents_and_blank_names_are_refused(admin):
    with pytest.raises(ChannelInputError, match="No agent"):
        api_key_create(name="k", agent_keys=["nope"], user=admin)
    with pytest.raises(ChannelInputError, match="name"):
        api_key_create(name="  ", agent_keys=["echo"], user=admin)


def test_the_limit_slides_over_two_windows(admin):
    key, _ = api_key_create(name="k", agent_keys=["echo"], user=admin, requests_per_minute=2)
    cache.clear()
    now = [6000.0 * 60 + 10]  # 10 s into a minute
    throttle = ApiKeyRateThrottle()
    throttle.clock = lambda: now[0]
    request = type("R", (), {"auth": key})()
    assert throttle.allow_request(request, None) and throttle.allow_request(request, None)
    assert not throttle.allow_request(request, None)
    assert 1 <= throttle.wait() <= 110
    # 5 s into the next minute the previous minute still weighs 55/60 of its 2 requests
    now[0] += 55
    assert not throttle.allow_request(request, None)
    # 40 s in it weighs 20/60 * 2 = 0.67: one more fits
    now[0] += 35
    assert throttle.allow_request(request, None)
    assert not throttle.allow_request(request, None)
