"""User-scope memory stays within one owner's agents (issue 10, item 4).

A signed-in user talks to agents of two builder owners; what they told owner X's agent must not
reach the prompt (or the recall tool) of owner Y's agent, while X's other agents still share it.
"""

from __future__ import annotations

import importlib

import pytest
from asgiref.sync import async_to_sync
from django.apps import apps
from django.contrib.auth import get_user_model

from runtime.memory import memory_prompt_block
from runtime.models import MemoryEntry
from tests.builder.conftest import make_agent
from tests.memory.test_memory import call, ctx_for, tools_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def agents(owner, other_staff):
    memory = {"memory": {"enabled": True, "scope": "user"}}
    return {
        "x_shop": make_agent(owner, slug="x-shop", **memory),
        "x_support": make_agent(owner, slug="x-support", **memory),
        "y_bot": make_agent(other_staff, slug="y-bot", **memory),
    }


@pytest.fixture
def visitor(db):
    return get_user_model().objects.create_user("visitor", "visitor@example.com", "pw-visitor-123")


def prompt_of(agent_key: str, user) -> str:
    ctx = ctx_for(
        agent_key=agent_key, user=user, messages=[{"role": "user", "content": "what is my address?"}]
    )
    return async_to_sync(memory_prompt_block)(ctx, scopes=("user",))


def test_one_owners_agents_never_see_what_a_user_told_another_owners_agent(agents, visitor):
    told = tools_for(ctx_for(agent_key="x-shop", user=visitor), scopes=("user",))
    assert call(told, "remember", {"key": "address", "value": "12 Secret Lane", "scope": "user"})["ok"]

    assert "12 Secret Lane" not in prompt_of("y-bot", visitor)
    other_owner = tools_for(ctx_for(agent_key="y-bot", user=visitor), scopes=("user",))
    assert call(other_owner, "recall", {"key": "address", "scope": "user"})["found"] is False
    # the same owner's other agent shares the user's memory, as before
    assert "12 Secret Lane" in prompt_of("x-support", visitor)


def test_the_same_key_can_live_in_two_owners_namespaces(agents, visitor, owner, other_staff):
    for key, value in (("x-shop", "for X"), ("y-bot", "for Y")):
        tools = tools_for(ctx_for(agent_key=key, user=visitor), scopes=("user",))
        assert call(tools, "remember", {"key": "note", "value": value, "scope": "user"})["ok"]
    rows = dict(MemoryEntry.objects.filter(key="note").values_list("namespace", "value"))
    assert rows == {f"owner:{owner.pk}": "for X", f"owner:{other_staff.pk}": "for Y"}


def test_entries_written_before_namespaces_are_backfilled_to_their_writers_owner(agents, visitor, owner):
    legacy = MemoryEntry.objects.create(
        scope="user", user=visitor, key="address", value="old", agent_key="x-shop"
    )
    code = MemoryEntry.objects.create(scope="user", user=visitor, key="lang", value="fr", agent_key="echo")
    importlib.import_module("builder.migrations.0003_memory_namespace_backfill").backfill(apps, None)
    legacy.refresh_from_db()
    code.refresh_from_db()
    assert (legacy.namespace, code.namespace) == (f"owner:{owner.pk}", "")
    assert "old" in prompt_of("x-support", visitor) and "old" not in prompt_of("y-bot", visitor)
