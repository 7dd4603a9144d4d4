"""Teams: managed in the builder by people with ``manage_teams`` (or superusers); a share with a team
reaches its members through the sharing panel like a share with a person."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission

from builder.access import perms_for
from builder.models import Agent
from tests.builder.test_sharing import client_for, staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager(db):
    user = staff("mia")
    user.user_permissions.add(Permission.objects.get(codename="manage_teams"))
    return user


def test_only_team_managers_and_superusers_manage_teams(owner, manager):
    refused = client_for(owner).get("/teams/")
    assert refused.status_code == 403 and "manage teams" in refused.content.decode()
    assert client_for(owner).post("/teams/", {"action": "create", "name": "X"}).status_code == 403
    assert not Group.objects.exists()
    page = client_for(manager).get("/teams/")
    assert page.status_code == 200 and b">Teams</a>" in page.content  # the tab shows for managers
    assert b">Teams</a>" not in client_for(owner).get("/").content


def test_create_add_remove_and_bad_input(manager, owner):
    client = client_for(manager)
    assert client.post("/teams/", {"action": "create", "name": "Support"}).status_code == 200
    team = Group.objects.get(name="Support")
    for data, message in (
        ({"action": "create", "name": ""}, "Give the team a name"),
        ({"action": "create", "name": "support"}, "already exists"),
        ({"action": "add", "team": team.pk, "person": "nobody"}, "No colleague is called"),
        ({"action": "add", "team": "999999", "person": "owner"}, "no longer exists"),
    ):
        response = client.post("/teams/", data, headers={"HX-Request": "true"})
        assert response.status_code == 422 and message in response.content.decode(), data
    assert (
        client.post("/teams/", {"action": "add", "team": team.pk, "person": "owner@example.com"}).status_code
        == 200
    )
    again = client.post("/teams/", {"action": "add", "team": team.pk, "person": "owner"})
    assert again.status_code == 422 and "already in Support" in again.content.decode()
    assert list(team.user_set.values_list("username", flat=True)) == ["owner"]
    client.post("/teams/", {"action": "remove", "team": team.pk, "user": owner.pk})
    assert not team.user_set.exists()


def test_sharing_with_a_team_through_the_panel(owner, agent):
    team = Group.objects.create(name="Support")
    ana = staff("ana")
    ana.groups.add(team)
    client = client_for(owner)
    url = f"/agents/{agent.public_id}/sharing/"
    both = client.post(url, {"person": "ana", "team": team.pk, "role": "viewer"})
    assert both.status_code == 422 and "one at a time" in both.content.decode()
    shared = client.post(url, {"team": team.pk, "role": "editor"})
    assert shared.status_code == 200 and "Shared with Team Support as editor." in shared.content.decode()
    assert perms_for(ana, Agent.objects.get(pk=agent.pk)).role == "editor"
    assert client_for(ana).get("/?shared=1").content.decode().count('data-role="editor"') == 1
    again = client.post(url, {"team": team.pk, "role": "viewer"})
    assert again.status_code == 422 and "already an editor" in again.content.decode()
    client.post(url + "change/", {"subject": f"team-{team.pk}", "remove": "1"})
    assert perms_for(ana, Agent.objects.get(pk=agent.pk)).view is False
