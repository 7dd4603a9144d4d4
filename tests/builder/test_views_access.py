"""Every builder page as the owner, another staff user, a non-staff user and nobody; full and partial."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from builder.models import AgentSystem
from builder.services import agent_publish, agent_update_draft
from builder.services.systems import system_save
from tests.builder.conftest import make_agent

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(owner, agent, http_tool):
    agent_publish(agent=agent, user=owner)
    agent_update_draft(agent=agent, user=owner, config={"system_prompt": "Second."})
    agent_publish(agent=agent, user=owner)
    system = system_save(
        owner=owner,
        slug="team",
        name="Team",
        entry_agent=agent,
        members={agent.slug: "lead"},
    )
    return {"agent": agent, "tool": http_tool, "system": system}


# (url builder, partial marker that only the HTMX render has at its top, or None for no partial)
OBJECT_PAGES = [
    (lambda w: f"/agents/{w['agent'].public_id}/", 'id="agent-editor"'),
    (lambda w: f"/agents/{w['agent'].public_id}/versions/", 'id="versions"'),
    (lambda w: f"/agents/{w['agent'].public_id}/versions/diff/?a=1&b=2", 'id="diff"'),
    (lambda w: f"/agents/{w['agent'].public_id}/duplicate/", 'id="agent-duplicate-form"'),
    (lambda w: f"/agents/{w['agent'].public_id}/delete/", "<dialog"),
    (lambda w: f"/agents/{w['agent'].public_id}/memory/", 'id="entries"'),
    (lambda w: f"/agents/{w['agent'].public_id}/publish/api-keys/", 'id="api-keys"'),
    (lambda w: f"/tools/{w['tool'].public_id}/", 'id="tool-form"'),
    (lambda w: f"/tools/{w['tool'].public_id}/delete/", "<dialog"),
    (lambda w: f"/systems/{w['system'].public_id}/", 'id="system-form"'),
    (lambda w: f"/systems/{w['system'].public_id}/memory/", 'id="entries"'),
    (lambda w: f"/systems/{w['system'].public_id}/publish/api-keys/", 'id="api-keys"'),
    (lambda w: f"/systems/{w['system'].public_id}/delete/", "<dialog"),
]
LIST_PAGES = [
    ("/", 'id="agent-rows"'),
    ("/agents/new/", 'id="agent-create-form"'),
    ("/tools/", 'id="tools"'),
    ("/tools/new/", 'id="tool-form"'),
    ("/systems/", 'id="systems"'),
    ("/systems/new/", 'id="system-form"'),
    ("/import/", 'id="import"'),
]
DOWNLOADS = [
    lambda w: f"/agents/{w['agent'].public_id}/export/",
    lambda w: f"/systems/{w['system'].public_id}/export/",
]


@pytest.mark.parametrize(("url", "marker"), OBJECT_PAGES)
def test_object_pages_as_owner_full_and_partial(owner_client, world, url, marker):
    full = owner_client.get(url(world))
    assert full.status_code == 200
    assert b"<html" in full.content and marker.encode() in full.content
    assert "HX-Request" in full["Vary"]
    partial = owner_client.get(url(world), headers={"HX-Request": "true"})
    assert partial.status_code == 200
    assert b"<html" not in partial.content
    assert partial.content.decode().lstrip().startswith(("<form", "<div", "<dialog")), partial.content[:200]
    assert marker.encode() in partial.content


@pytest.mark.parametrize(("url", "marker"), OBJECT_PAGES)
def test_object_pages_are_404_for_other_staff(staff_client, world, url, marker):
    assert staff_client.get(url(world)).status_code == 404
    assert staff_client.get(url(world), headers={"HX-Request": "true"}).status_code == 404


@pytest.mark.parametrize("url", [u for u, _ in OBJECT_PAGES])
def test_object_pages_send_non_staff_to_login(stranger_client, client, world, url):
    for c in (stranger_client, client):
        response = c.get(url(world))
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")


@pytest.mark.parametrize(("url", "marker"), LIST_PAGES)
def test_list_pages_as_each_persona(owner_client, staff_client, stranger_client, world, url, marker):
    full = owner_client.get(url)
    assert full.status_code == 200 and marker.encode() in full.content
    partial = owner_client.get(url, headers={"HX-Request": "true"})
    assert (
        partial.status_code == 200 and b"<html" not in partial.content and marker.encode() in partial.content
    )
    other = staff_client.get(url)
    assert other.status_code == 200
    # another staff user sees the pages but none of the owner's objects
    assert b"helper" not in other.content.replace(b"helper-text", b"")
    assert stranger_client.get(url).status_code == 302


@pytest.mark.parametrize("url", DOWNLOADS)
def test_exports_by_persona(owner_client, staff_client, stranger_client, world, url):
    response = owner_client.get(url(world))
    assert response.status_code == 200 and response["Content-Type"].startswith("application/yaml")
    assert staff_client.get(url(world)).status_code == 404
    assert stranger_client.get(url(world)).status_code == 302


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("url", ["/", "/?q=agent&status=published", "/tools/", "/systems/"])
def test_list_query_count_does_not_grow_with_rows(owner_client, owner, url):
    from builder.models import ToolDefinition

    def add(n: int, start: int) -> None:
        for i in range(start, start + n):
            agent = make_agent(owner, slug=f"agent-{i}", name=f"Agent {i}")
            agent_publish(agent=agent, user=owner)
            ToolDefinition.objects.create(
                owner=owner, name=f"tool_{i}", description="d", spec={"method": "GET"}
            )
            system_save(owner=owner, slug=f"sys-{i}", name=f"S{i}", entry_agent=agent, members={})

    add(2, 0)
    few = _queries(owner_client, url)
    add(10, 2)
    many = _queries(owner_client, url)
    assert many == few, f"{url}: {few} queries with 2 rows, {many} with 12"
    assert AgentSystem.objects.count() == 12


def test_agent_list_query_count_is_fixed(owner_client, owner, django_assert_num_queries):
    for i in range(5):
        make_agent(owner, slug=f"agent-{i}")
    # session, user, agents (one query with draft/version joined)
    with django_assert_num_queries(3):
        owner_client.get("/", headers={"HX-Request": "true"})
