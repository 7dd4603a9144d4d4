"""The agent screens do what a builder relies on, and bad input lands next to its field."""

from __future__ import annotations

import pytest

from builder.models import Agent, AgentVersion
from builder.services import agent_publish, agent_update_draft
from tests.builder.conftest import make_agent

pytestmark = pytest.mark.django_db


def _edit_data(**overrides):
    data = {
        "name": "Helper",
        "icon": "🤖",
        "description": "",
        "system_prompt": "You help people.",
        "model": "demo",
        "temperature": "",
        "max_tokens": "",
        "memory_scope": "conversation",
    }
    data.update(overrides)
    return data


def test_create_redirects_to_editor(owner_client):
    response = owner_client.post("/agents/new/", {"slug": "support-bot", "name": "Support"})
    agent = Agent.objects.get(slug="support-bot")
    assert response.status_code == 302 and response["Location"] == agent.get_absolute_url()


def test_create_via_htmx_uses_client_redirect(owner_client):
    response = owner_client.post(
        "/agents/new/", {"slug": "support-bot", "name": "S"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200 and response["HX-Redirect"].startswith("/agents/")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"slug": "Bad Key!", "name": "X"}, "lowercase letters"),
        ({"slug": "helper", "name": "X"}, "already taken"),
        ({"slug": "team-x", "name": ""}, "This field is required"),
    ],
)
def test_create_errors_render_next_to_field(owner_client, agent, data, message):
    response = owner_client.post("/agents/new/", data, headers={"HX-Request": "true"})
    assert response.status_code == 422
    body = response.content.decode()
    assert message in body and 'class="b-error"' in body
    assert Agent.objects.count() == 1


def test_edit_saves_a_new_revision_inline(owner_client, agent):
    response = owner_client.post(
        agent.get_absolute_url(), _edit_data(system_prompt="Be brief."), headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert b"Draft saved (revision 2)" in response.content
    agent.refresh_from_db()
    assert agent.draft.config["system_prompt"] == "Be brief." and agent.draft.config["model"] == "demo"


@pytest.mark.parametrize(
    ("overrides", "field_id", "message"),
    [
        ({"system_prompt": ""}, "id_system_prompt", "Write a system prompt"),
        ({"model": "gpt-imaginary"}, "id_model", "Unknown model"),
        ({"temperature": "hot"}, "id_temperature", "number between 0 and 2"),
        ({"max_tokens": "0"}, "id_max_tokens", "number between 1 and 200000"),
    ],
)
def test_edit_errors_are_inline_and_nothing_is_saved(owner_client, agent, overrides, field_id, message):
    response = owner_client.post(
        agent.get_absolute_url(), _edit_data(**overrides), headers={"HX-Request": "true"}
    )
    assert response.status_code == 422
    body = response.content.decode()
    assert f'id="{field_id}-error"' in body and message in body
    agent.refresh_from_db()
    assert agent.draft.revision == 1


def test_editor_marks_demo_model_and_hints_at_keys(owner_client, agent):
    body = owner_client.get(agent.get_absolute_url()).content.decode()
    assert "demo, offline" in body
    assert "Add an API key" in body


def test_sub_agents_and_tools_are_saved(owner_client, owner, agent, http_tool):
    make_agent(owner, slug="billing", name="Billing")
    data = _edit_data(
        http_tools=["weather"],
        sub_agents=["billing"],
        **{"sub_mode__billing": "handoff", "sub_context__billing": "summary"},
    )
    response = owner_client.post(agent.get_absolute_url(), data)
    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.draft.config["http_tools"] == ["weather"]
    assert agent.draft.config["sub_agents"] == [
        {"agent_key": "billing", "mode": "handoff", "context": "summary", "description": ""}
    ]


def test_sub_agents_are_picked_by_search_not_listed_one_row_per_agent(owner_client, owner, agent):
    """A site with hundreds of agents: the editor shows the chosen sub-agents only; more are found
    by name and added as a row with its mode and context."""
    for n in range(60):
        make_agent(owner, slug=f"clerk-{n}", name=f"Clerk {n}")
    make_agent(owner, slug="billing", name="Billing")
    agent_update_draft(agent=agent, user=owner, config={"system_prompt": "Route.", "sub_agents": ["billing"]})
    body = owner_client.get(agent.get_absolute_url()).content.decode()
    assert 'name="sub_agents" value="billing" checked' in body and "clerk-7" not in body
    assert "Find agents to add" in body

    found = owner_client.get("/agents/search/", {"for": "sub_agents", "q": "clerk 1", "exclude": agent.slug})
    assert "Clerk 1" in found.content.decode() and "for=sub_agents" in found.content.decode()
    itself = owner_client.get(
        "/agents/search/", {"for": "sub_agents", "q": agent.name, "exclude": agent.slug}
    )
    assert f"<code>{agent.slug}</code>" not in itself.content.decode()
    row = owner_client.get("/agents/search/", {"for": "sub_agents", "add": "clerk-3"}).content.decode()
    assert 'name="sub_agents" value="clerk-3" checked' in row and 'name="sub_mode__clerk-3"' in row


def test_publish_then_versions_list_diff_and_restore(owner_client, owner, agent):
    response = owner_client.post(f"/agents/{agent.public_id}/publish/", {"note": "first cut"})
    assert response.status_code == 302
    agent_update_draft(agent=agent, user=owner, config={"system_prompt": "Changed prompt."})
    owner_client.post(f"/agents/{agent.public_id}/publish/", {"note": "second"})
    assert list(AgentVersion.objects.values_list("number", "note")) == [(2, "second"), (1, "first cut")]

    versions = owner_client.get(f"/agents/{agent.public_id}/versions/").content.decode()
    assert "first cut" in versions and "owner" in versions

    diff = owner_client.get(f"/agents/{agent.public_id}/versions/diff/?a=1&b=2").content.decode()
    assert "Instructions (system prompt)" in diff
    assert '<del class="b-diff--del" aria-label="removed: You help.">You help.</del>' in diff
    assert '<ins class="b-diff--add" aria-label="added: Changed prompt.">Changed prompt.</ins>' in diff

    response = owner_client.post(f"/agents/{agent.public_id}/versions/1/restore/")
    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.draft.config["system_prompt"] == "You help."


def test_publish_with_nothing_changed_says_so(owner_client, owner, agent):
    agent_publish(agent=agent, user=owner)
    response = owner_client.post(f"/agents/{agent.public_id}/publish/", {"note": ""}, follow=True)
    assert b"Nothing changed since the last published version" in response.content
    assert AgentVersion.objects.count() == 1


def test_diff_of_unknown_version_is_404(owner_client, owner, agent):
    agent_publish(agent=agent, user=owner)
    assert owner_client.get(f"/agents/{agent.public_id}/versions/diff/?a=1&b=9").status_code == 404
    assert owner_client.get(f"/agents/{agent.public_id}/versions/diff/?a=x").status_code == 404


def test_duplicate(owner_client, agent):
    response = owner_client.post(
        f"/agents/{agent.public_id}/duplicate/", {"slug": "helper-2", "name": "Helper 2"}
    )
    assert response.status_code == 302
    assert Agent.objects.get(slug="helper-2").draft.config == agent.draft.config
    again = owner_client.post(f"/agents/{agent.public_id}/duplicate/", {"slug": "helper-2", "name": "Again"})
    assert again.status_code == 422 and b"already taken" in again.content


def test_delete_asks_in_a_dialog_then_deletes(owner_client, agent):
    dialog = owner_client.get(f"/agents/{agent.public_id}/delete/", headers={"HX-Request": "true"})
    assert b"<dialog" in dialog.content and b"data-open-on-load" in dialog.content
    response = owner_client.post(f"/agents/{agent.public_id}/delete/", headers={"HX-Request": "true"})
    assert response["HX-Redirect"] == "/"
    assert not Agent.objects.exists()


def test_other_staff_cannot_write(staff_client, agent):
    assert staff_client.post(agent.get_absolute_url(), _edit_data(system_prompt="pwned")).status_code == 404
    assert staff_client.post(f"/agents/{agent.public_id}/delete/").status_code == 404
    assert staff_client.post(f"/agents/{agent.public_id}/publish/").status_code == 404
    agent.refresh_from_db()
    assert agent.draft.config["system_prompt"] == "You help."


def test_search_and_status_filter(owner_client, owner, agent):
    other = make_agent(owner, slug="billing", name="Billing desk")
    agent_publish(agent=other, user=owner)
    body = owner_client.get("/?q=billing", headers={"HX-Request": "true"}).content.decode()
    assert "Billing desk" in body and "Helper" not in body
    body = owner_client.get("/?status=draft", headers={"HX-Request": "true"}).content.decode()
    assert "Helper" in body and "Billing desk" not in body
    agent_update_draft(agent=other, user=owner, config={"system_prompt": "new"})
    body = owner_client.get("/?status=pending", headers={"HX-Request": "true"}).content.decode()
    assert "Billing desk" in body and "changes pending" in body
