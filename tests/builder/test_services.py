from __future__ import annotations

import pytest

from builder.models import Agent, AgentDraftRevision, AgentVersion
from builder.schema import ConfigError, Known
from builder.services import (
    agent_create,
    agent_delete,
    agent_duplicate,
    agent_publish,
    agent_restore_version,
    agent_update_draft,
    version_diff,
)
from builder.services.systems import system_publish, system_save
from tests.builder.conftest import make_agent

pytestmark = pytest.mark.django_db


def test_create_makes_draft_revision_one(owner):
    agent = make_agent(owner)
    assert agent.draft.revision == 1
    assert agent.draft.config["system_prompt"] == "You help."
    assert AgentDraftRevision.objects.filter(agent=agent, revision=1).exists()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"slug": "Bad Slug!"}, "slug"),
        ({"name": ""}, "name"),
        ({"config": {"system_prompt": "   "}}, "system_prompt"),
        ({"config": {"system_prompt": "x" * 20_001}}, "system_prompt"),
        ({"config": {"system_prompt": "ok", "temperature": 7}}, "temperature"),
        ({"config": {"system_prompt": "ok", "max_tokens": "lots"}}, "max_tokens"),
        (
            {"config": {"system_prompt": "ok", "sub_agents": [{"agent_key": "x", "mode": "shout"}]}},
            "sub_agents",
        ),
        ({"config": {"system_prompt": "ok", "bogus": 1}}, "config"),
    ],
)
def test_create_rejects_bad_input_naming_the_field_and_saves_nothing(owner, kwargs, field):
    base = {"owner": owner, "slug": "good-slug", "name": "Good", "config": {"system_prompt": "ok"}}
    with pytest.raises(ConfigError) as exc:
        agent_create(**{**base, **kwargs})
    assert field in exc.value.errors
    assert not Agent.objects.exists()


def test_duplicate_slug_is_a_field_error(owner, other_staff):
    make_agent(owner, slug="taken")
    with pytest.raises(ConfigError) as exc:
        make_agent(other_staff, slug="taken")
    assert "already taken" in exc.value.errors["slug"]


def test_unknown_model_is_refused(owner):
    with pytest.raises(ConfigError) as exc:
        agent_create(
            owner=owner,
            slug="m-agent",
            name="M",
            config={"system_prompt": "ok", "model": "gpt-9"},
            known=Known(models=frozenset({"demo"})),
        )
    assert "gpt-9" in exc.value.errors["model"]


def test_edit_bumps_revision_and_publish_freezes(owner):
    agent = make_agent(owner)
    agent_update_draft(agent=agent, user=owner, config={"system_prompt": "Version one."})
    v1 = agent_publish(agent=agent, user=owner, note="first")
    assert (v1.number, v1.config["system_prompt"], v1.draft_revision) == (1, "Version one.", 2)
    agent_update_draft(agent=agent, user=owner, config={"system_prompt": "Version two."})
    agent.refresh_from_db()
    assert agent.draft.has_unpublished_changes
    v2 = agent_publish(agent=agent, user=owner)
    assert v2.number == 2
    v1.refresh_from_db()
    assert v1.config["system_prompt"] == "Version one."  # immutable
    agent.refresh_from_db()
    assert agent.published_version == v2


def test_publish_without_changes_is_refused(owner):
    agent = make_agent(owner)
    agent_publish(agent=agent, user=owner)
    with pytest.raises(ConfigError) as exc:
        agent_publish(agent=agent, user=owner)
    assert "note" in exc.value.errors
    assert AgentVersion.objects.count() == 1


def test_restore_makes_old_version_the_draft(owner):
    agent = make_agent(owner, prompt="Old prompt.")
    v1 = agent_publish(agent=agent, user=owner)
    agent_update_draft(agent=agent, user=owner, config={"system_prompt": "New prompt."}, name="Renamed")
    agent_publish(agent=agent, user=owner)
    draft = agent_restore_version(agent=agent, version=v1, user=owner)
    agent.refresh_from_db()
    assert draft.config["system_prompt"] == "Old prompt."
    assert agent.name == "Helper"
    assert agent.draft.has_unpublished_changes


def test_diff_is_readable(owner):
    agent = make_agent(owner, prompt="Line one.\nLine two.")
    v1 = agent_publish(agent=agent, user=owner)
    agent_update_draft(
        agent=agent, user=owner, config={"system_prompt": "Line one.\nLine 2.", "temperature": 0.5}
    )
    v2 = agent_publish(agent=agent, user=owner)
    diff = version_diff(old=v1, new=v2)
    assert ("del", "  Line two.") in diff
    assert ("add", "  Line 2.") in diff
    assert ("add", "temperature: 0.5") in diff


def test_duplicate_and_delete(owner):
    agent = make_agent(owner)
    copy = agent_duplicate(agent=agent, user=owner, slug="helper-copy", name="Helper copy")
    assert copy.draft.config == agent.draft.config
    agent_delete(agent=copy)
    assert not Agent.objects.filter(slug="helper-copy").exists()


def test_key_of_a_code_agent_is_refused(owner):
    from runtime.agents import ToolCallingAgent
    from runtime.registry import register_runtime, unregister_runtime

    register_runtime(ToolCallingAgent.from_config(key="code-bot", system_prompt="x"))
    try:
        with pytest.raises(ConfigError) as exc:
            make_agent(owner, slug="code-bot")
        assert "already taken" in exc.value.errors["slug"]
    finally:
        unregister_runtime("code-bot")


def test_publish_waits_for_sub_agents_that_were_never_published(owner):
    billing = make_agent(owner, slug="billing", name="Billing")
    faq = make_agent(owner, slug="faq", name="FAQ")
    router = make_agent(owner, slug="router", sub_agents=["billing", "faq"])
    with pytest.raises(ConfigError) as exc:
        agent_publish(agent=router, user=owner)
    assert exc.value.errors["sub_agents"].startswith("Publish its sub-agents Billing, FAQ first")
    assert router.versions.count() == 0
    agent_publish(agent=billing, user=owner)
    agent_publish(agent=faq, user=owner)
    assert agent_publish(agent=router, user=owner).number == 1


def test_system_publish_puts_delegated_members_live_first(owner):
    # the entry delegates to a member that delegates to another: published deepest first
    # members are listed by name: here callers come before the agents they call
    specialist = make_agent(owner, slug="specialist", name="C specialist")
    triage = make_agent(owner, slug="triage", name="B triage", sub_agents=["specialist"])
    entry = make_agent(owner, slug="entry", name="A entry", sub_agents=["triage"])
    system = system_save(
        owner=owner, slug="desk", name="Desk", entry_agent=entry, members={"triage": "t", "specialist": "s"}
    )
    pins = system_publish(system=system, user=owner)
    assert set(pins) == {"entry", "triage", "specialist"}
    for agent in (specialist, triage, entry):
        agent.refresh_from_db()
        assert pins[agent.slug] == agent.published_version.pin
