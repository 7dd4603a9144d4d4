"""Roles per object: viewer, editor, owner, through a person, a team or a system; the sharing panel,
its bad input, the audit log, and what every screen and the runtime then allow."""

from __future__ import annotations

from urllib.parse import unquote

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from builder.access import perms_for, shared_with, visible_to
from builder.models import Agent, AgentUserObjectPermission, AuditEntry, ToolDefinition
from builder.schema import ConfigError
from builder.services import agent_publish
from builder.services.sharing import share_add, share_change, share_remove, shares_of
from builder.services.systems import system_save
from runtime.models import AgentRun
from tests.builder.conftest import make_agent

pytestmark = pytest.mark.django_db

User = get_user_model()


def staff(username: str, **extra) -> User:
    return User.objects.create_user(
        username, f"{username}@example.com", "pw-123456789", is_staff=True, **extra
    )


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def colleague(db):
    return staff("ana", first_name="Ana", last_name="Lopez")


@pytest.fixture
def ana(colleague):
    return client_for(colleague)


def edit_post(agent, prompt: str = "Changed.") -> dict:
    return {"name": agent.name, "icon": "🤖", "system_prompt": prompt, "model": "demo", "temperature": "0.7"}


# -- roles ---------------------------------------------------------------------------------------


def test_each_role_allows_exactly_its_actions(owner, colleague, agent):
    assert perms_for(colleague, agent).view is False
    for role, expected in {
        "viewer": (True, True, False, False, False),
        "editor": (True, True, True, False, False),
        "owner": (True, True, True, True, True),
    }.items():
        AgentUserObjectPermission.objects.filter(user=colleague).delete()
        share_add(obj=agent, actor=owner, role=role, user=colleague)
        agent = Agent.objects.get(pk=agent.pk)  # no cached rank
        p = perms_for(colleague, agent)
        assert (p.view, p.test, p.edit, p.publish, p.share) == expected, role
        assert p.role == role
    assert perms_for(owner, agent).role == "owner"  # the creator, with no rows


def test_roles_are_guardian_permissions_in_the_direct_tables(owner, colleague, agent):
    share_add(obj=agent, actor=owner, role="editor", user=colleague)
    codenames = set(
        AgentUserObjectPermission.objects.filter(user=colleague, content_object=agent).values_list(
            "permission__codename", flat=True
        )
    )
    assert codenames == {"view_agent", "change_agent"}
    # guardian's own backend answers the same (direct foreign-key tables)
    colleague = User.objects.get(pk=colleague.pk)
    assert colleague.has_perm("builder.change_agent", agent)
    assert not colleague.has_perm("builder.own_agent", agent)


def test_viewer_sees_tries_but_cannot_save_publish_share_or_delete(owner, colleague, ana, agent):
    share_add(obj=agent, actor=owner, role="viewer", user=colleague)
    page = ana.get(f"/agents/{agent.public_id}/")
    assert page.status_code == 200
    assert b'id="role-note"' in page.content and b"You are a viewer" in page.content
    assert b'id="publish-form"' not in page.content

    revision = agent.draft.revision
    refused = ana.post(f"/agents/{agent.public_id}/", edit_post(agent), headers={"HX-Request": "true"})
    assert refused.status_code == 403
    notice = unquote(refused["X-Notice"])
    assert "You are a viewer of this agent" in notice and "editor role" in notice
    agent.draft.refresh_from_db()
    assert agent.draft.revision == revision

    assert ana.post(f"/agents/{agent.public_id}/publish/", {"note": "x"}).status_code == 403
    assert ana.post(f"/agents/{agent.public_id}/delete/").status_code == 403
    assert (
        ana.post(
            f"/agents/{agent.public_id}/memory/", {"key": "k", "value": "v", "scope": "user"}
        ).status_code
        == 403
    )
    assert (
        ana.post(f"/agents/{agent.public_id}/sharing/", {"person": "owner", "role": "viewer"}).status_code
        == 403
    )
    assert Agent.objects.filter(pk=agent.pk).exists()
    assert agent.versions.count() == 0

    # the playground is theirs: a draft run, in their own conversation
    sent = ana.post(f"/agents/{agent.public_id}/playground/send/", {"message": "Hello"})
    assert sent.status_code == 201, sent.content
    run = AgentRun.objects.get(pk=sent.json()["run_id"])
    assert run.user == colleague and run.agent_version.startswith("draft:")


def test_editor_saves_but_cannot_publish_share_or_delete(owner, colleague, ana, agent):
    share_add(obj=agent, actor=owner, role="editor", user=colleague)
    saved = ana.post(
        f"/agents/{agent.public_id}/", edit_post(agent, "Edited by Ana."), headers={"HX-Request": "true"}
    )
    assert saved.status_code == 200 and b"Draft saved" in saved.content
    agent.draft.refresh_from_db()
    assert agent.draft.config["system_prompt"] == "Edited by Ana."
    refused = ana.post(f"/agents/{agent.public_id}/publish/", {"note": "x"})
    assert refused.status_code == 403 and "only owners may publish" in unquote(refused["X-Notice"])
    assert ana.get(f"/agents/{agent.public_id}/sharing/").status_code == 200  # sees who has access
    assert (
        ana.post(f"/agents/{agent.public_id}/sharing/", {"person": "owner", "role": "viewer"}).status_code
        == 403
    )


def test_second_owner_publishes_and_shares(owner, colleague, ana, agent):
    share_add(obj=agent, actor=owner, role="owner", user=colleague)
    assert ana.post(f"/agents/{agent.public_id}/publish/", {"note": "first"}).status_code == 302
    third = staff("bo")
    assert (
        ana.post(f"/agents/{agent.public_id}/sharing/", {"person": "bo", "role": "viewer"}).status_code == 200
    )
    assert perms_for(third, Agent.objects.get(pk=agent.pk)).role == "viewer"


# -- inheritance and teams --------------------------------------------------------------------------


def test_a_role_on_a_system_reaches_its_members_while_they_are_members(owner, colleague, ana, agent):
    other = make_agent(owner, slug="other", name="Other")
    system = system_save(owner=owner, slug="team", name="Team", entry_agent=agent, members={})
    share_add(obj=system, actor=owner, role="editor", user=colleague)
    assert perms_for(colleague, Agent.objects.get(pk=agent.pk)).role == "editor"
    assert perms_for(colleague, other).view is False
    assert list(visible_to(colleague, Agent.objects.all())) == [agent]
    assert list(shared_with(colleague, Agent.objects.all())) == [agent]
    # a direct viewer role and an inherited editor role: the higher one counts
    share_add(obj=agent, actor=owner, role="viewer", user=colleague)
    assert perms_for(colleague, Agent.objects.get(pk=agent.pk)).role == "editor"
    share_remove(obj=agent, actor=owner, user=colleague)
    # the agent leaves the system: the role goes with it
    system_save(owner=owner, system=system, slug="team", name="Team", entry_agent=other, members={})
    assert perms_for(colleague, Agent.objects.get(pk=agent.pk)).view is False
    assert ana.get(f"/agents/{agent.public_id}/").status_code == 404


def test_a_team_share_reaches_its_members_only(owner, colleague, agent):
    team = Group.objects.create(name="Support")
    colleague.groups.add(team)
    outsider = staff("zed")
    share_add(obj=agent, actor=owner, role="editor", group=team)
    assert perms_for(colleague, Agent.objects.get(pk=agent.pk)).role == "editor"
    assert perms_for(outsider, Agent.objects.get(pk=agent.pk)).view is False
    colleague.groups.remove(team)
    assert perms_for(colleague, Agent.objects.get(pk=agent.pk)).view is False


def test_tools_and_systems_are_shared_the_same_way(owner, colleague, ana, http_tool):
    assert ana.get(f"/tools/{http_tool.public_id}/").status_code == 404
    share_add(obj=http_tool, actor=owner, role="viewer", user=colleague)
    assert ana.get(f"/tools/{http_tool.public_id}/").status_code == 200
    assert ana.post(f"/tools/{http_tool.public_id}/", {"name": "x"}).status_code == 403
    assert ana.post(f"/tools/{http_tool.public_id}/delete/").status_code == 403
    assert ToolDefinition.objects.filter(pk=http_tool.pk, name="weather").exists()
    listed = ana.get("/tools/?shared=1")
    assert b"weather" in listed.content and b'data-role="viewer"' in listed.content


# -- the sharing panel: bad input changes nothing ----------------------------------------------


@pytest.fixture
def panel(owner, agent):
    return client_for(owner), f"/agents/{agent.public_id}/sharing/"


def rows() -> list:
    return list(AgentUserObjectPermission.objects.values_list("user_id", "permission_id"))


@pytest.mark.parametrize(
    ("person", "role", "field_message"),
    [
        ("owner", "viewer", "You already have access"),
        ("nobody-at-all", "viewer", "No colleague is called"),
        ("", "viewer", "name or email, then pick them"),
        ("ana", "superuser", "Choose a role"),
    ],
)
def test_bad_shares_say_why_next_to_the_field(panel, colleague, person, role, field_message):
    client, url = panel
    before = rows()
    response = client.post(url, {"person": person, "role": role}, headers={"HX-Request": "true"})
    assert response.status_code == 422
    assert field_message in response.content.decode()
    assert b'role="alert"' in response.content
    assert rows() == before


def test_inactive_and_non_staff_people_cannot_be_added(panel, stranger):
    client, url = panel
    staff("gone", is_active=False)
    for person, message in (("gone", "deactivated"), ("stranger", "not a staff account")):
        response = client.post(url, {"person": person, "role": "viewer"})
        assert response.status_code == 422 and message in response.content.decode()
    assert rows() == []


def test_a_duplicate_share_is_refused_and_the_role_kept(panel, owner, colleague, agent):
    client, url = panel
    assert client.post(url, {"person": "ana@example.com", "role": "editor"}).status_code == 200
    again = client.post(url, {"person": "ana", "role": "viewer"})
    assert again.status_code == 422 and "already an editor" in again.content.decode()
    assert perms_for(colleague, Agent.objects.get(pk=agent.pk)).role == "editor"


def test_the_creator_can_be_neither_removed_nor_demoted(panel, owner, agent):
    client, url = panel
    for data in (
        {"subject": f"user-{owner.pk}", "role": "viewer"},
        {"subject": f"user-{owner.pk}", "remove": "1"},
    ):
        response = client.post(url + "change/", data)
        assert response.status_code == 422
        assert "stays its owner" in response.content.decode()
    assert perms_for(owner, Agent.objects.get(pk=agent.pk)).role == "owner"
    with pytest.raises(ConfigError):
        share_change(obj=agent, actor=owner, role="viewer", user=owner)


def test_change_and_remove_through_the_panel(panel, colleague, agent):
    client, url = panel
    client.post(url, {"person": "ana", "role": "viewer"})
    changed = client.post(url + "change/", {"subject": f"user-{colleague.pk}", "role": "editor"})
    assert changed.status_code == 200 and b"Role changed to editor" in changed.content
    assert perms_for(colleague, Agent.objects.get(pk=agent.pk)).role == "editor"
    removed = client.post(url + "change/", {"subject": f"user-{colleague.pk}", "remove": "1"})
    assert removed.status_code == 200
    assert perms_for(colleague, Agent.objects.get(pk=agent.pk)).view is False
    assert [s.role for s in shares_of(agent)] == ["owner"]


def test_the_audit_log_records_and_shows_who_did_what(panel, owner, colleague, agent):
    client, url = panel
    client.post(url, {"person": "ana", "role": "viewer"})
    client.post(url + "change/", {"subject": f"user-{colleague.pk}", "role": "editor"})
    agent_publish(agent=agent, user=owner)
    client.post(url + "change/", {"subject": f"user-{colleague.pk}", "remove": "1"})
    actions = list(AuditEntry.objects.order_by("pk").values_list("action", "role", "previous_role"))
    assert actions == [
        ("shared", "viewer", ""),
        ("role_changed", "editor", "viewer"),
        ("published", "", ""),
        ("unshared", "", "editor"),
    ]
    page = client.get(url).content.decode()
    assert "changed role Ana Lopez" in page and "from viewer to editor" in page


def test_colleague_search_is_bounded(owner):
    client = client_for(owner)
    for i in range(15):
        staff(f"sam{i}", first_name="Sam")
    staff("samgone", first_name="Sam", is_active=False)
    User.objects.create_user("samvisitor", "samvisitor@example.com", "x", first_name="Sam")
    assert b"<label" not in client.get("/people/search/?q=s").content  # one character: nothing
    found = client.get("/people/search/?q=sam").content.decode()
    assert found.count('type="radio"') == 10
    assert "samgone" not in found and "samvisitor" not in found
    assert "owner" not in client.get("/people/search/?q=own").content.decode().split("legend>")[-1]


def test_strangers_get_404_not_the_panel(agent, other_staff):
    client = client_for(other_staff)
    assert client.get(f"/agents/{agent.public_id}/sharing/").status_code == 404
    assert (
        client.post(f"/agents/{agent.public_id}/sharing/", {"person": "editor", "role": "owner"}).status_code
        == 404
    )


# -- query counts ---------------------------------------------------------------------------------


def _agent_list_queries(client) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get("/").status_code == 200
    return len(ctx)


def test_agent_list_query_count_is_constant_however_things_are_shared(owner, colleague, ana):
    share_add(obj=make_agent(owner, slug="agent-0", name="A0"), actor=owner, role="viewer", user=colleague)
    first = _agent_list_queries(ana)
    teams = [Group.objects.create(name=f"t{i}") for i in range(5)]
    colleague.groups.add(*teams)
    for i in range(1, 25):
        agent = make_agent(owner, slug=f"agent-{i}", name=f"A{i}")
        if i % 3 == 0:
            share_add(obj=agent, actor=owner, role="editor", group=teams[i % 5])
        elif i % 3 == 1:
            share_add(obj=agent, actor=owner, role="viewer", user=colleague)
        else:
            system_save(owner=owner, slug=f"sys-{i}", name=f"S{i}", entry_agent=agent, members={})
            share_add(obj=agent.entry_of_systems.get(), actor=owner, role="viewer", user=colleague)
    assert _agent_list_queries(ana) == first
    page = ana.get("/?shared=1").content.decode()
    assert page.count('data-role="editor"') == 8 and page.count('data-role="viewer"') == 17


# -- the runtime asks the same roles --------------------------------------------------------------


def test_runtime_seam_gives_viewers_drafts_and_editors_the_rest(owner, colleague, agent):
    from runtime.access import may_edit_agent, may_test_agent, visible_runs_q

    assert not may_test_agent(agent_key=agent.slug, user=colleague)
    share_add(obj=agent, actor=owner, role="viewer", user=colleague)
    assert may_test_agent(agent_key=agent.slug, user=colleague)
    assert not may_edit_agent(agent_key=agent.slug, user=colleague)
    # a viewer sees their own runs, not the owner's
    from runtime.services import run_create

    own, _ = run_create(
        agent_key=agent.slug,
        messages=[{"role": "user", "content": "hi"}],
        user=owner,
        agent_version=f"draft:{agent.public_id}@1",
    )
    mine, _ = run_create(
        agent_key=agent.slug,
        messages=[{"role": "user", "content": "hi"}],
        user=colleague,
        agent_version=f"draft:{agent.public_id}@1",
    )
    assert set(AgentRun.objects.filter(visible_runs_q(colleague))) == {mine}
    share_change(obj=agent, actor=owner, role="editor", user=colleague)
    assert may_edit_agent(agent_key=agent.slug, user=colleague)
    assert set(AgentRun.objects.filter(visible_runs_q(colleague))) == {mine, own}


def test_list_pages_and_single_objects_compute_the_same_role(owner, agent):
    """Three ways to read a role: the SQL annotation (``with_role``, admin changelists), a page of
    rows (``attach_roles``, builder lists) and one object (``rank_of``): they must agree for every
    way a role can come about."""
    from builder.access import RANK_FIELD, attach_roles, rank_of, with_role

    team = Group.objects.create(name="T")
    people = {name: staff(name) for name in ("direct", "teamed", "via_system", "system_owner", "nobody")}
    people["teamed"].groups.add(team)
    other = make_agent(people["system_owner"], slug="their-agent", name="Theirs")
    share_add(obj=agent, actor=owner, role="viewer", user=people["direct"])
    share_add(obj=agent, actor=owner, role="editor", group=team)
    system = system_save(owner=people["system_owner"], slug="sys-a", name="A", entry_agent=other, members={})
    system_save(owner=owner, slug="sys-b", name="B", entry_agent=agent, members={})
    share_add(obj=agent.entry_of_systems.get(), actor=owner, role="owner", user=people["via_system"])
    share_add(obj=system, actor=people["system_owner"], role="viewer", user=people["direct"])
    for user in [owner, *people.values()]:
        for obj in (agent, other):
            annotated = (
                with_role(user, Agent.objects.filter(pk=obj.pk)).values_list(RANK_FIELD, flat=True).get()
            )
            assert rank_of(user, Agent.objects.get(pk=obj.pk)) == annotated, (user.username, obj.slug)
        page = attach_roles(user, list(Agent.objects.filter(pk__in=[agent.pk, other.pk]).order_by("pk")))
        expected = with_role(user, Agent.objects.filter(pk__in=[agent.pk, other.pk]).order_by("pk"))
        assert [getattr(a, RANK_FIELD) for a in page] == list(expected.values_list(RANK_FIELD, flat=True))
