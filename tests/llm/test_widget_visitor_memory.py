"""A web widget's identified visitor has user-scope memory on every device (issue 14, item 3).

The host site signs its user's id (a JWT with the widget's identity secret); that visitor's
user-scope memory follows them to another device, within the agent owner's namespace and this
widget only. Anonymous visitors and other identified ids get none of it, and another owner's
agent never sees it. The runs go through the real worker loop and the real OpenAI SDK against a
fake server; what the agent was told is read from the prompt the model received.
"""

from __future__ import annotations

import asyncio
import time

import jwt
import pytest
from rest_framework.test import APIClient

from accounts.models import AnonymousSession
from builder.services import agent_publish
from runtime.channels.identity import identified_visitor_key
from runtime.channels.models import WidgetChannel
from runtime.channels.services import widget_channel_create
from runtime.engine.worker import Worker
from runtime.models import AgentRun, MemoryEntry
from tests.builder.conftest import make_agent
from tests.fakes.llm_servers import Text, ToolCalls

pytestmark = pytest.mark.django_db(transaction=True)
SITE = "https://shop.example.com"


def work() -> None:
    asyncio.run(Worker(once=True, poll_interval=0.05).run())


def published_with_widget(owner, slug: str) -> WidgetChannel:
    agent = make_agent(
        owner, slug=slug, model="openai:gpt-4o-mini", memory={"enabled": True, "scope": "user"}
    )
    agent_publish(agent=agent, user=owner)
    return widget_channel_create(agent_key=slug, user=owner, allowed_origins=[SITE])


def identity(channel: WidgetChannel, sub: str) -> str:
    return jwt.encode({"sub": sub, "exp": int(time.time()) + 600}, channel.identity_secret, algorithm="HS256")


def ask(channel: WidgetChannel, text: str, *, user: str | None = None) -> AgentRun:
    """A fresh browser (a device) on the host site: mint, send one message, let the worker answer."""
    body = {"key": channel.publishable_key}
    if user is not None:
        body["user_token"] = identity(channel, user)
    device = APIClient()
    minted = device.post("/api/widget/session/", body, format="json", HTTP_ORIGIN=SITE)
    assert minted.status_code == 201, minted.json()
    device.credentials(HTTP_X_ANONYMOUS_TOKEN=minted.json()["token"], HTTP_ORIGIN=SITE)
    sent = device.post("/api/widget/messages/", {"message": text}, format="json")
    assert sent.status_code == 201, sent.json()
    work()
    run = AgentRun.objects.get(pk=sent.json()["run_id"])
    assert run.status == "succeeded", run.error
    return run


def prompt_of_last_request(openai_server) -> str:
    system = openai_server.requests[-1].json["messages"][0]
    assert system["role"] == "system"
    return system["content"]


@pytest.fixture
def shop(owner):
    return published_with_widget(owner, "shop")


@pytest.fixture
def told_on_a_laptop(shop, owner, openai_server):
    """User 42 of the shop's site tells the agent their shoe size; it remembers it for the user."""
    openai_server.push(
        ToolCalls([("remember", {"key": "shoe size", "value": "EU 44", "scope": "user"})]), Text(["Noted."])
    )
    ask(shop, "Remember my shoe size: EU 44", user="42")
    entry = MemoryEntry.objects.get(key="shoe size")
    # keyed by this widget and the site's user id, in the agent owner's namespace
    assert (entry.scope, entry.user_id) == ("user", None)
    assert (entry.visitor, entry.namespace) == (f"{shop.pk}:42", f"owner:{owner.pk}")
    return entry


def test_an_identified_visitor_finds_their_user_memory_on_another_device(
    shop, told_on_a_laptop, openai_server
):
    openai_server.push(Text(["You wear EU 44."]))
    ask(shop, "Which shoe size do I wear?", user="42")  # a phone: another browser, another mint
    assert "EU 44" in prompt_of_last_request(openai_server)


def test_two_sessions_of_the_same_identified_id_share_one_memory_key(shop, told_on_a_laptop):
    # however many sessions the same site user ends up with, they are one visitor for memory
    metadata = {"widget_channel": str(shop.pk), "visitor": "42", "origin": SITE}
    first, second = (AnonymousSession.objects.create(metadata=metadata) for _ in range(2))
    assert identified_visitor_key(first.pk) == identified_visitor_key(second.pk) == told_on_a_laptop.visitor


def test_another_identified_id_and_an_anonymous_visitor_get_none_of_it(shop, told_on_a_laptop, openai_server):
    openai_server.push(Text(["I do not know."]))
    ask(shop, "Which shoe size do I wear?", user="43")
    assert "EU 44" not in prompt_of_last_request(openai_server)

    # an anonymous visitor has no user memory at all: remembering for "the user" is refused
    openai_server.push(
        ToolCalls([("remember", {"key": "shoe size", "value": "EU 38", "scope": "user"})]), Text(["Hm."])
    )
    ask(shop, "Which shoe size do I wear? Remember EU 38.")
    assert "EU 44" not in openai_server.requests[-2].json["messages"][0]["content"]
    tool_result = openai_server.requests[-1].json["messages"][-1]
    assert tool_result["role"] == "tool" and "signed-in user" in tool_result["content"]
    assert list(MemoryEntry.objects.values_list("value", flat=True)) == ["EU 44"]


def test_another_owners_agent_never_sees_it_even_for_the_same_site_user_id(
    told_on_a_laptop, other_staff, openai_server
):
    rival = published_with_widget(other_staff, "rival")
    openai_server.push(Text(["No idea."]))
    ask(rival, "Which shoe size do I wear?", user="42")
    assert "EU 44" not in prompt_of_last_request(openai_server)
