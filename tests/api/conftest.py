"""Personas for the API: users with API tokens, anonymous sessions (live and expired)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import AnonymousSession
from builder.services import agent_create, agent_publish
from runtime.channels.models import WidgetChannel

API = "/api/agents"
# The page the anonymous personas' sessions were minted from (the Origin the mint recorded).
VISITOR_SITE = "https://visitors.example.com"


def say(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


@pytest.fixture
def client_for():
    """``client_for(headers)``: an API client sending those headers on every request."""

    def make(headers: dict[str, str] | None = None) -> APIClient:
        client = APIClient()
        if headers:
            client.credentials(**headers)
        return client

    return make


@pytest.fixture
def published(owner):
    """The published agent ``support`` (the widget tests give it their own channel)."""
    agent = agent_create(owner=owner, slug="support", name="Support", config={"system_prompt": "Help."})
    agent_publish(agent=agent, user=owner)
    return agent


@pytest.fixture
def owner_token(owner) -> str:
    return Token.objects.create(user=owner).key


@pytest.fixture
def stranger_token(stranger) -> str:
    return Token.objects.create(user=stranger).key


def visitor_session(origin: str = VISITOR_SITE, **fields) -> AnonymousSession:
    """An anonymous session as ``/api/accounts/anonymous-session/`` mints it from a page on ``origin``."""
    return AnonymousSession.objects.create(metadata={"origin": origin, "same_origin": False}, **fields)


def open_to_visitors(*agent_keys: str, origins=(VISITOR_SITE,), **settings) -> list[WidgetChannel]:
    """Give each agent the web widget channel anonymous sessions need to run it, allowing ``origins``."""
    return [
        WidgetChannel.objects.update_or_create(
            agent_key=key, defaults={"allowed_origins": list(origins), **settings}
        )[0]
        for key in agent_keys
    ]


@pytest.fixture
def anon_session(db) -> AnonymousSession:
    return visitor_session()


@pytest.fixture
def other_anon_session(db) -> AnonymousSession:
    return visitor_session()


@pytest.fixture
def expired_session(db) -> AnonymousSession:
    return visitor_session(expires_at=timezone.now() - timedelta(minutes=1))


@pytest.fixture
def personas(
    owner_token, stranger_token, anon_session, other_anon_session, expired_session
) -> dict[str, dict]:
    """Request headers per persona."""
    return {
        "owner": {"HTTP_AUTHORIZATION": f"Token {owner_token}"},
        "other_user": {"HTTP_AUTHORIZATION": f"Token {stranger_token}"},
        "anon": {"HTTP_X_ANONYMOUS_TOKEN": anon_session.token},
        "other_anon": {"HTTP_X_ANONYMOUS_TOKEN": other_anon_session.token},
        "expired": {"HTTP_X_ANONYMOUS_TOKEN": expired_session.token},
        "nobody": {},
    }
