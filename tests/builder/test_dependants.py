"""Nothing breaks silently: what other things use is not deleted from under them."""

from __future__ import annotations

import pytest
from django.db.models import ProtectedError

from builder.models import Agent, ToolDefinition
from builder.schema import ConfigError
from builder.services import agent_delete, agent_publish, agent_update_draft
from builder.services.systems import system_publish, system_save
from builder.services.tools import tool_delete
from tests.builder.conftest import make_agent

pytestmark = pytest.mark.django_db


def test_member_of_a_published_system_is_not_deleted(owner):
    entry = make_agent(owner, slug="front")
    member = make_agent(owner, slug="billing", name="Billing")
    system = system_save(owner=owner, slug="desk", name="Desk", entry_agent=entry, members={"billing": ""})
    system_publish(system=system, user=owner)
    with pytest.raises(ConfigError) as exc:
        agent_delete(agent=member)
    assert "system Desk" in exc.value.errors["agent"]
    assert Agent.objects.filter(slug="billing").exists()
    # and not by any other path either (admin, shell): the row is protected
    with pytest.raises(ProtectedError):
        member.delete()
    system.refresh_from_db()
    assert set(system.members.values_list("agent__slug", flat=True)) == {"front", "billing"}


def test_agent_called_by_another_agent_is_not_deleted(owner):
    callee = make_agent(owner, slug="callee", name="Callee")
    caller = make_agent(
        owner,
        slug="caller",
        name="Caller",
        sub_agents=[{"agent_key": "callee", "mode": "delegate", "context": "full"}],
    )
    with pytest.raises(ConfigError) as exc:
        agent_delete(agent=callee)
    assert "agent Caller" in exc.value.errors["agent"]
    # the published version still calls it even when the draft no longer does
    agent_publish(agent=callee, user=owner)
    agent_publish(agent=caller, user=owner)
    agent_update_draft(agent=caller, user=owner, config={"system_prompt": "alone"})
    with pytest.raises(ConfigError):
        agent_delete(agent=callee)
    agent_publish(agent=caller, user=owner)
    agent_delete(agent=callee)
    assert not Agent.objects.filter(slug="callee").exists()


def test_tool_used_by_an_agent_is_not_deleted(owner, http_tool):
    agent = make_agent(owner, name="Forecaster", http_tools=["weather"])
    with pytest.raises(ConfigError) as exc:
        tool_delete(tool=http_tool)
    assert "agent Forecaster" in exc.value.errors["tool"]
    agent_update_draft(agent=agent, user=owner, config={"system_prompt": "No tools.", "http_tools": []})
    tool_delete(tool=http_tool)
    assert not ToolDefinition.objects.exists()


def test_delete_dialog_lists_dependants_and_refuses(owner_client, owner):
    callee = make_agent(owner, slug="callee", name="Callee")
    make_agent(
        owner,
        slug="caller",
        name="Caller",
        sub_agents=[{"agent_key": "callee", "mode": "delegate", "context": "full"}],
    )
    body = owner_client.get(f"/agents/{callee.public_id}/delete/").content.decode()
    assert "agent Caller" in body and ">Delete</button>" not in body
    response = owner_client.post(f"/agents/{callee.public_id}/delete/", headers={"HX-Request": "true"})
    assert response.status_code == 409 and b"agent Caller" in response.content
    assert Agent.objects.filter(slug="callee").exists()
