"""Systems pages (create, bad input, publish pins) and memory pages (search, edit, delete by scope)."""

from __future__ import annotations

import pytest

from builder.models import AgentSystem
from builder.services.systems import system_save
from runtime.models import MemoryEntry
from tests.builder.conftest import make_agent

pytestmark = pytest.mark.django_db


def _system_data(**overrides):
    data = {
        "slug": "desk",
        "name": "Desk",
        "entry_agent": "helper",
        "members": ["billing"],
        "roles": "billing: money",
    }
    data.update(overrides)
    return data


def test_create_system_with_members_and_roles(owner_client, owner, agent):
    make_agent(owner, slug="billing", name="Billing")
    response = owner_client.post("/systems/new/", _system_data())
    assert response.status_code == 302
    system = AgentSystem.objects.get()
    assert {m.agent.slug: m.role for m in system.members.all()} == {"helper": "entry", "billing": "money"}


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"slug": "helper"}, "slug", "already taken"),
        ({"slug": "X Y"}, "slug", "lowercase"),
        ({"entry_agent": "nobody"}, "entry_agent", "No agent of yours has the key nobody"),
    ],
)
def test_system_bad_input(owner_client, owner, agent, overrides, field, message):
    make_agent(owner, slug="billing", name="Billing")
    response = owner_client.post("/systems/new/", _system_data(**overrides), headers={"HX-Request": "true"})
    assert response.status_code == 422
    assert f'id="id_{field}-error"' in response.content.decode() and message in response.content.decode()
    assert not AgentSystem.objects.exists()


def test_publish_pins_tested_member_versions(owner_client, owner, agent):
    system = system_save(owner=owner, slug="desk", name="Desk", entry_agent=agent, members={})
    owner_client.post(f"/systems/{system.public_id}/publish/")
    system.refresh_from_db()
    agent.refresh_from_db()
    assert system.published_pins == {"helper": agent.published_version.pin}


def test_other_staff_cannot_see_systems(staff_client, owner, agent):
    system = system_save(owner=owner, slug="desk", name="Desk", entry_agent=agent, members={})
    assert staff_client.post(f"/systems/{system.public_id}/publish/").status_code == 404
    assert (
        staff_client.post(f"/systems/{system.public_id}/playground/send/", {"message": "x"}).status_code
        == 404
    )


@pytest.fixture
def memories(owner, agent):
    return [
        MemoryEntry.objects.create(
            scope="user", user=owner, key="favourite_colour", value="blue", agent_key="helper"
        ),
        MemoryEntry.objects.create(
            scope="system", system_key="desk", key="hours", value={"open": 9}, agent_key="helper"
        ),
        MemoryEntry.objects.create(
            scope="user", user=owner, key="unrelated", value="x", agent_key="someone-else"
        ),
    ]


def test_agent_memory_lists_searches_and_filters_by_scope(owner_client, agent, memories):
    body = owner_client.get(f"/agents/{agent.public_id}/memory/").content.decode()
    assert "favourite_colour" in body and "hours" in body and "unrelated" not in body
    body = owner_client.get(
        f"/agents/{agent.public_id}/memory/?q=blue", headers={"HX-Request": "true"}
    ).content.decode()
    assert "favourite_colour" in body and "hours" not in body
    body = owner_client.get(
        f"/agents/{agent.public_id}/memory/?scope=system", headers={"HX-Request": "true"}
    ).content.decode()
    assert "hours" in body and "favourite_colour" not in body


def test_edit_and_delete_memory(owner_client, agent, memories):
    entry = memories[0]
    url = f"/agents/{agent.public_id}/memory/{entry.pk}/"
    response = owner_client.post(url, {"value": "green"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    entry.refresh_from_db()
    assert entry.value == "green"
    owner_client.post(url, {"value": '{"hex": "#0f0"}'})
    entry.refresh_from_db()
    assert entry.value == {"hex": "#0f0"}
    bad = owner_client.post(url, {"value": "  "}, headers={"HX-Request": "true"})
    assert bad.status_code == 422
    owner_client.post(url, {"delete": "1"})
    assert not MemoryEntry.objects.filter(pk=entry.pk).exists()


def test_memory_of_another_agent_is_not_reachable(owner_client, staff_client, agent, memories):
    foreign = memories[2]
    assert (
        owner_client.post(f"/agents/{agent.public_id}/memory/{foreign.pk}/", {"delete": "1"}).status_code
        == 404
    )
    assert (
        staff_client.post(f"/agents/{agent.public_id}/memory/{memories[0].pk}/", {"delete": "1"}).status_code
        == 404
    )
    assert MemoryEntry.objects.count() == 3


def test_system_memory(owner_client, owner, agent, memories):
    system = system_save(owner=owner, slug="desk", name="Desk", entry_agent=agent, members={})
    body = owner_client.get(f"/systems/{system.public_id}/memory/").content.decode()
    assert "hours" in body
