"""Shared fixtures: personas, factories and helpers for starting real processes."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache

from accounts.throttles import AnonymousSessionMintThrottle
from runtime import conf
from runtime.api.credentials import credentials
from runtime.channels.api import WidgetSessionMintThrottle

# Django's test client posts from this address, so every test's mints share one count per limit.
TEST_CLIENT_ADDRESS = "127.0.0.1"
MINT_COUNTS = [
    throttle.cache_format % {"scope": throttle.scope, "ident": TEST_CLIENT_ADDRESS}
    for throttle in (WidgetSessionMintThrottle, AnonymousSessionMintThrottle)
]


@pytest.fixture(autouse=True)
def _reset_runtime_conf():
    yield
    conf.reset()
    credentials.clear()  # a token remembered by one test must not authenticate in the next


@pytest.fixture(autouse=True)
def _fresh_mint_counts():
    """Widget visitor tokens (``WIDGET_SESSION_MINT_RATE``, 30 a minute) and anonymous sessions
    (``ANONYMOUS_SESSION_MINT_RATE``, 20 a minute) one address may mint are counted in Django's
    cache, which outlives a test: every test starts with none counted, whichever tests this
    process ran before it. Only those keys: with ``REDIS_URL`` set the cache is a Redis that
    others may be using, and nothing else the tests keep in the cache needs resetting."""
    cache.delete_many(MINT_COUNTS)


@pytest.fixture
def owner(db):
    return get_user_model().objects.create_user("owner", "owner@example.com", "pw-owner-123", is_staff=True)


@pytest.fixture
def other_staff(db):
    return get_user_model().objects.create_user(
        "editor", "editor@example.com", "pw-editor-123", is_staff=True
    )


@pytest.fixture
def stranger(db):
    return get_user_model().objects.create_user("stranger", "stranger@example.com", "pw-stranger-123")
