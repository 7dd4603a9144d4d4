"""Starter templates and keys derived from names: one step from a name (or a template) to an agent."""

from __future__ import annotations

import pytest

from builder.models import Agent, ToolDefinition
from builder.schema import ConfigError, validate_slug
from builder.selectors import known_for
from builder.services.templates import TEMPLATES, agent_from_template, free_key, key_from_name
from tests.builder.conftest import make_agent

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Support Bot (EU)", "support-bot-eu"),
        ("  Crème brûlée helper ", "creme-brulee-helper"),
        ("Straße", "strae"),
        ("AI", "agent-ai"),
        ("!!!", "agent"),
        ("x" * 80, "x" * 64),
    ],
)
def test_key_from_name_is_always_a_valid_key(name, key):
    assert key_from_name(name) == key
    assert validate_slug(key) is None


def test_free_key_skips_agents_systems_and_code_agents(owner):
    from runtime.agents import ToolCallingAgent
    from runtime.registry import register_runtime, unregister_runtime

    make_agent(owner, slug="helper")
    make_agent(owner, slug="helper-2")
    assert free_key("helper") == "helper-3"
    register_runtime(ToolCallingAgent.from_config(key="coded", system_prompt="x"))
    try:
        assert free_key("coded") == "coded-2"
        with pytest.raises(ConfigError) as exc:
            make_agent(owner, slug="coded")
        assert (
            "registered in code" in exc.value.errors["slug"]
            and "'coded-2' is free" in exc.value.errors["slug"]
        )
    finally:
        unregister_runtime("coded")


def test_taken_key_message_suggests_a_free_one(owner):
    make_agent(owner, slug="helper")
    with pytest.raises(ConfigError) as exc:
        make_agent(owner, slug="helper")
    assert "'helper-2' is free" in exc.value.errors["slug"]


@pytest.mark.parametrize("template", [t.id for t in TEMPLATES])
def test_every_template_creates_a_valid_agent_twice(owner, template):
    first = agent_from_template(owner=owner, template_id=template, known=known_for(owner))
    second = agent_from_template(owner=owner, template_id=template, known=known_for(owner))
    assert first.slug != second.slug and second.slug.startswith(first.slug)
    assert first.draft.config["system_prompt"]
    assert first.draft.config["model"] == ""  # the site's default model (the demo model on a fresh install)


def test_router_template_delegates_to_two_specialists(owner):
    router = agent_from_template(owner=owner, template_id="router", known=known_for(owner))
    keys = [link["agent_key"] for link in router.draft.config["sub_agents"]]
    # the examples register a code agent called billing-specialist: the template steps around it
    assert sorted(keys) == ["billing-specialist-2", "technical-specialist"]
    assert Agent.objects.filter(slug__in=keys).count() == 2


def test_researcher_template_brings_its_http_tool_once(owner):
    agent = agent_from_template(owner=owner, template_id="researcher", known=known_for(owner))
    agent_from_template(owner=owner, template_id="researcher", known=known_for(owner))
    assert agent.draft.config["http_tools"] == ["wikipedia_search"]
    assert ToolDefinition.objects.filter(owner=owner, name="wikipedia_search").count() == 1


def test_unknown_template_is_refused(owner):
    with pytest.raises(ConfigError):
        agent_from_template(owner=owner, template_id="nope")
    assert not Agent.objects.exists()


def test_create_view_derives_the_key_when_left_blank(owner_client):
    response = owner_client.post("/agents/new/", {"name": "Support Bot", "slug": ""})
    assert response.status_code == 302
    assert Agent.objects.get().slug == "support-bot"
    again = owner_client.post("/agents/new/", {"name": "Support Bot", "slug": ""})
    assert again.status_code == 302
    assert set(Agent.objects.values_list("slug", flat=True)) == {"support-bot", "support-bot-2"}


def test_create_view_from_template(owner_client):
    response = owner_client.post("/agents/new/", {"template": "faq"}, headers={"HX-Request": "true"})
    assert response.status_code == 200 and response["HX-Redirect"]
    assert Agent.objects.get().name == "FAQ assistant"


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({"opening_message": "x" * 1001}, "opening_message", "shorten it"),
        ({"opening_message": 5}, "opening_message", "must be text"),
        ({"suggested_questions": [f"q{n}" for n in range(7)]}, "suggested_questions", "keep the 6"),
        ({"suggested_questions": ["x" * 201]}, "suggested_questions", "200 characters"),
        ({"suggested_questions": "one"}, "suggested_questions", "list of texts"),
    ],
)
def test_experience_settings_are_validated(data, field, words):
    from builder.schema import parse_config

    with pytest.raises(ConfigError) as exc:
        parse_config({"system_prompt": "Hi.", **data})
    assert words in exc.value.errors[field]


def test_experience_settings_saved_from_the_editor(owner_client, agent):
    response = owner_client.post(
        f"/agents/{agent.public_id}/",
        {
            "name": "Helper",
            "system_prompt": "You help.",
            "opening_message": "Hello there!",
            "suggested_questions": "First?\n\n  Second?  \n",
            "memory_scope": "conversation",
        },
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    agent.draft.refresh_from_db()
    assert agent.draft.config["opening_message"] == "Hello there!"
    assert agent.draft.config["suggested_questions"] == ["First?", "Second?"]
    body = owner_client.get(f"/agents/{agent.public_id}/").content.decode()
    assert "Hello there!" in body and 'data-suggestion="Second?"' in body
