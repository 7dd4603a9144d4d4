"""The resolver runs exactly what a run pins, read fresh from the database each time."""

from __future__ import annotations

import pytest
from django.utils import timezone

from builder.runtime_adapter import resolve
from builder.services import agent_publish, agent_update_draft
from builder.services.playground import playground_send
from builder.services.systems import system_publish, system_save
from runtime import registry
from runtime.models import AgentRun
from runtime.registry import get_runtime
from tests.builder.conftest import make_agent

pytestmark = pytest.mark.django_db


def _child(parent: AgentRun, agent_key: str) -> AgentRun:
    return AgentRun.objects.create(agent_key=agent_key, parent_run=parent, available_at=timezone.now())


def test_registry_finds_builder_agents(owner, agent):
    runtime = get_runtime("helper")
    assert runtime.key == "helper" and runtime.system_prompt == "You help."


def test_draft_pin_runs_that_revision_even_after_an_edit(owner, agent):
    run = playground_send(user=owner, agent=agent, text="hi")
    assert run.agent_version == f"draft:{agent.public_id}@1"
    agent_update_draft(agent=agent, user=owner, config={"system_prompt": "Edited."})
    assert resolve("helper", run).system_prompt == "You help."
    later = playground_send(user=owner, agent=agent, text="again")
    assert resolve("helper", later).system_prompt == "Edited."  # no stale cache


def test_unpinned_run_uses_published_version_and_records_it(owner, agent):
    agent_update_draft(
        agent=agent, user=owner, config={"system_prompt": "Published words.", "temperature": 0.2}
    )
    version = agent_publish(agent=agent, user=owner)
    agent_update_draft(agent=agent, user=owner, config={"system_prompt": "Unpublished words."})
    run = AgentRun.objects.create(agent_key="helper", available_at=timezone.now())
    # the worker asks the registry, which records the pin the builder's resolver reports
    runtime = registry.get_runtime("helper", run)
    assert runtime.system_prompt == "Published words."
    assert runtime.model_settings == {"temperature": 0.2}
    run.refresh_from_db()
    assert run.agent_version == version.pin == runtime.pin


def test_version_pin_and_unknown_pin(owner, agent):
    v1 = agent_publish(agent=agent, user=owner)
    agent_update_draft(agent=agent, user=owner, config={"system_prompt": "Two."})
    agent_publish(agent=agent, user=owner)
    run = AgentRun.objects.create(agent_key="helper", agent_version=v1.pin, available_at=timezone.now())
    assert resolve("helper", run).system_prompt == "You help."
    bogus = AgentRun.objects.create(
        agent_key="helper",
        agent_version="version:00000000-0000-0000-0000-000000000000",
        available_at=timezone.now(),
    )
    assert resolve("helper", bogus) is None


def _router_with_everything(owner, agent) -> None:
    """``agent`` with an HTTP tool, a hand-off sub-agent (billing) and memory."""
    make_agent(owner, slug="billing", name="Billing")
    agent_update_draft(
        agent=agent,
        user=owner,
        config={
            "system_prompt": "Route.",
            "http_tools": ["weather"],
            "sub_agents": [{"agent_key": "billing", "mode": "handoff", "context": "summary"}],
            "memory": {"enabled": True, "scope": "user"},
        },
    )


def test_tools_subagents_and_memory_become_runtime_tools(owner, agent, http_tool):
    _router_with_everything(owner, agent)
    runtime = get_runtime("helper")
    assert {"weather", "billing", "remember", "recall"} <= set(runtime.tools.names)
    assert runtime.memory_scopes == ("user",)  # remembered entries also reach the prompt
    # billing is a hand-off target, so it can hand the conversation back
    assert "hand_back" in get_runtime("billing").tools.names


def test_system_runs_use_pins(owner):
    router = make_agent(owner, slug="router", prompt="Route v1.")
    billing = make_agent(owner, slug="billing", prompt="Billing v1.")
    agent_update_draft(
        agent=router, user=owner, config={"system_prompt": "Route v1.", "sub_agents": ["billing"]}
    )
    system = system_save(
        owner=owner,
        slug="desk",
        name="Desk",
        entry_agent=router,
        members={"billing": "money"},
    )
    pins = system_publish(system=system, user=owner)
    assert set(pins) == {"router", "billing"}
    # later draft edits do not change what the published system runs
    agent_update_draft(agent=billing, user=owner, config={"system_prompt": "Billing v2."})
    root = AgentRun.objects.create(agent_key="desk", available_at=timezone.now())
    entry = resolve("desk", root)
    assert entry.system_prompt.startswith("Route v1.")
    child = _child(root, "billing")
    assert resolve("billing", child).system_prompt.startswith("Billing v1.")
    # ...while the system playground tests the members' drafts
    test_root = playground_send(user=owner, system=system, text="refund?")
    assert test_root.agent_version == f"system-draft:{system.public_id}"
    assert resolve("billing", _child(test_root, "billing")).system_prompt.startswith("Billing v2.")


def test_child_of_a_draft_test_uses_sub_agent_draft(owner):
    router = make_agent(owner, slug="router")
    billing = make_agent(owner, slug="billing", prompt="B1.")
    agent_publish(agent=billing, user=owner)
    agent_update_draft(agent=billing, user=owner, config={"system_prompt": "B2 draft."})
    root = playground_send(user=owner, agent=router, text="hi")
    assert resolve("billing", _child(root, "billing")).system_prompt == "B2 draft."


def test_asking_whether_a_key_exists_builds_no_agent(owner, agent, http_tool, django_assert_num_queries):
    """Run creation asks this on every run: one query, no tools built, no secrets decrypted."""
    from runtime.registry import agent_exists

    _router_with_everything(owner, agent)
    system_save(owner=owner, slug="desk", name="Desk", entry_agent=agent, members={})
    for key, expected in [("helper", True), ("desk", True), ("nobody-has-this-key", False)]:
        with django_assert_num_queries(1):
            assert agent_exists(key) is expected
