"""Searchable agent pickers: a system form stays small with 1,000 agents; search finds them."""

from __future__ import annotations

import pytest

from builder.models import Agent, AgentDraft, AgentSystem
from tests.builder.conftest import make_agent

pytestmark = pytest.mark.django_db
HX = {"HX-Request": "true"}


@pytest.fixture
def thousand_agents(owner):
    agents = Agent.objects.bulk_create(
        Agent(slug=f"agent-{i:04d}", name=f"Agent number {i:04d}", owner=owner) for i in range(1000)
    )
    AgentDraft.objects.bulk_create(AgentDraft(agent=a, config={"system_prompt": "x"}) for a in agents)
    return agents


def test_the_system_form_renders_no_option_per_agent(owner_client, thousand_agents):
    body = owner_client.get("/systems/new/").content.decode()
    assert body.count("agent-0") == 0  # no agent is listed until searched for
    assert 'id="members-search"' in body and 'list="entry-agent-options"' in body


def test_search_returns_a_few_matches_with_an_add_button(owner_client, thousand_agents):
    body = owner_client.get("/agents/search/?for=members&q=number 012", headers=HX).content.decode()
    assert body.count("<li>") == 10  # agent-0120 .. agent-0129
    assert 'aria-label="Add Agent number 0120 (agent-0120)"' in body
    many = owner_client.get("/agents/search/?for=members&q=agent", headers=HX).content.decode()
    assert many.count("<li>") == 20 and "type more of the name" in many
    none = owner_client.get("/agents/search/?for=members&q=zebra", headers=HX).content.decode()
    assert "No agent matches" in none
    options = owner_client.get("/agents/search/?for=options&entry_agent=0999", headers=HX).content.decode()
    assert options.strip() == '<option value="agent-0999">Agent number 0999</option>'


def test_search_and_chips_only_show_the_users_own_agents(owner_client, staff_client, owner, thousand_agents):
    assert "No agent matches" in staff_client.get("/agents/search/?q=agent-0001").content.decode()
    assert staff_client.get("/agents/search/?add=agent-0001").status_code == 404
    chip = owner_client.get("/agents/search/?add=agent-0001").content.decode()
    assert 'name="members" value="agent-0001" checked' in chip


def test_a_system_saves_the_picked_members_and_shows_them_ticked(owner_client, owner, thousand_agents):
    data = {
        "slug": "desk",
        "name": "Desk",
        "entry_agent": "agent-0005",
        "members": ["agent-0007", "agent-0008"],
    }
    assert owner_client.post("/systems/new/", data).status_code == 302
    system = AgentSystem.objects.get()
    assert sorted(m.agent.slug for m in system.members.all()) == ["agent-0005", "agent-0007", "agent-0008"]
    page = owner_client.get(f"/systems/{system.public_id}/").content.decode()
    assert 'name="members" value="agent-0007" checked' in page and 'value="agent-0005"' in page


def test_an_unknown_entry_agent_is_a_422_next_to_the_field_keeping_the_members(owner_client, owner):
    make_agent(owner, slug="billing", name="Billing")
    data = {"slug": "desk", "name": "Desk", "entry_agent": "nobody", "members": ["billing"]}
    response = owner_client.post("/systems/new/", data, headers=HX)
    body = response.content.decode()
    assert response.status_code == 422 and 'id="id_entry_agent-error"' in body
    assert 'name="members" value="billing" checked' in body and 'value="nobody"' in body
    assert not AgentSystem.objects.exists()
