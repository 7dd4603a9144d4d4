"""Builder fixtures: agents, tools and systems owned by the ``owner`` persona."""

from __future__ import annotations

import pytest
from django.test import Client

from builder.models import ToolDefinition
from builder.services import agent_create
from builder.services.systems import system_save
from rag.services import knowledge_base_create


def make_agent(owner, slug: str = "helper", name: str = "Helper", prompt: str = "You help.", **config):
    return agent_create(owner=owner, slug=slug, name=name, config={"system_prompt": prompt, **config})


@pytest.fixture
def agent(owner):
    return make_agent(owner)


@pytest.fixture
def http_tool(owner):
    return ToolDefinition.objects.create(
        owner=owner,
        name="weather",
        description="Current weather",
        spec={"method": "GET", "url": "https://api.example.com/weather", "parameters": {"type": "object"}},
    )


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def owner_client(owner):
    return _client(owner)


@pytest.fixture
def staff_client(other_staff):
    return _client(other_staff)


@pytest.fixture
def stranger_client(stranger):
    return _client(stranger)


@pytest.fixture
def base(owner):
    return knowledge_base_create(owner=owner, name="Handbook")


@pytest.fixture(params=["agent", "system"])
def target(request, owner):
    """An agent, then a system, of the owner (for what both kinds of object do alike)."""
    agent = make_agent(owner)
    if request.param == "agent":
        return agent
    return system_save(owner=owner, slug="desk", name="Desk", entry_agent=agent, members={})


def kind_of(target) -> str:
    return "agent" if type(target).__name__ == "Agent" else "system"
