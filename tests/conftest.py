"""Shared fixtures: personas, factories and helpers for starting real processes."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from runtime import conf
from runtime.api.credentials import credentials


@pytest.fixture(autouse=True)
def _reset_runtime_conf():
    yield
    conf.reset()
    credentials.clear()  # a token remembered by one test must not authenticate in the next


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
