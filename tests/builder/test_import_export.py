"""Export to readable YAML and import back with a preview; bad files save nothing."""

from __future__ import annotations

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile

from builder.models import Agent, AgentSystem
from builder.services import agent_update_draft
from builder.services.systems import system_save
from tests.builder.conftest import make_agent

pytestmark = pytest.mark.django_db


def test_agent_export_is_readable_and_secret_free(owner_client, owner, agent, http_tool):
    http_tool.secrets = {"TOKEN": "s3cr3t"}
    http_tool.save()
    agent_update_draft(
        agent=agent, user=owner, config={"system_prompt": "Line one.\nLine two.", "http_tools": ["weather"]}
    )
    text = owner_client.get(f"/agents/{agent.public_id}/export/").content.decode()
    data = yaml.safe_load(text)
    assert data["format"] == 1 and data["kind"] == "agent"
    assert data["agents"][0]["config"]["http_tools"] == ["weather"]
    assert "s3cr3t" not in text


def test_import_previews_then_creates(owner_client, owner, agent, other_staff):
    text = (
        owner_client.get(f"/agents/{agent.public_id}/export/")
        .content.decode()
        .replace("helper", "helper-two")
    )
    preview = owner_client.post("/import/", {"text": text}, headers={"HX-Request": "true"})
    assert preview.status_code == 200
    assert b"create</span> agent <code>helper-two</code>" in preview.content
    assert not Agent.objects.filter(slug="helper-two").exists()  # nothing saved by the preview
    done = owner_client.post("/import/", {"text": text, "confirm": "1"})
    assert done.status_code == 302
    assert Agent.objects.get(slug="helper-two").draft.config["system_prompt"] == "You help."


def test_import_of_existing_agent_shows_changes_and_updates_draft(owner_client, agent):
    text = (
        owner_client.get(f"/agents/{agent.public_id}/export/")
        .content.decode()
        .replace("You help.", "New words.")
    )
    preview = owner_client.post("/import/", {"file": SimpleUploadedFile("a.yaml", text.encode())})
    assert b"update</span> agent" in preview.content and b"system_prompt" in preview.content
    owner_client.post("/import/", {"text": text, "confirm": "1"})
    agent.refresh_from_db()
    assert agent.draft.config["system_prompt"] == "New words." and agent.draft.revision == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{ not yaml", "not valid YAML"),
        ("just a string", "must contain a mapping"),
        ("kind: agent\nagents: []\n", "no &#x27;format&#x27; field"),
        ("format: 0\nkind: agent\nagents: []\n", "format 0"),
        ("format: 1\nkind: agent\nagents:\n- slug: x-agent\n  name: X\n", "missing config"),
        (
            "format: 1\nkind: agent\nagents:\n- slug: x-agent\n  name: X\n  config: {system_prompt: ''}\n",
            "system_prompt",
        ),
        (
            "format: 1\nkind: agent\nagents:\n- slug: x-agent\n  name: X\n  config: {system_prompt: hi, model: gpt-99}\n",
            "Unknown model",
        ),
        (
            "format: 1\nkind: agent\nagents:\n- slug: Bad Slug\n  name: X\n  config: {system_prompt: hi}\n",
            "lowercase",
        ),
        (
            "format: 1\nkind: system\nagents:\n- slug: a-one\n  name: A\n  config: {system_prompt: hi}\nsystem: {slug: s-one, name: S, entry_agent: nope}\n",
            "entry_agent",
        ),
    ],
)
def test_bad_files_get_a_clear_message_and_save_nothing(owner_client, agent, text, message):
    response = owner_client.post("/import/", {"text": text, "confirm": "1"}, headers={"HX-Request": "true"})
    assert response.status_code == 422
    assert message in response.content.decode()
    assert Agent.objects.count() == 1 and not AgentSystem.objects.exists()


def test_import_refuses_someone_elses_key(staff_client, owner_client, agent):
    text = owner_client.get(f"/agents/{agent.public_id}/export/").content.decode()
    response = staff_client.post("/import/", {"text": text, "confirm": "1"})
    assert response.status_code == 422 and b"belongs to someone else" in response.content


def test_system_round_trip(owner_client, owner):
    entry = make_agent(owner, slug="router", name="Router")
    billing = make_agent(owner, slug="billing", name="Billing")
    agent_update_draft(
        agent=entry,
        user=owner,
        config={"system_prompt": "Route.", "sub_agents": [{"agent_key": "billing", "mode": "delegate"}]},
    )
    system = system_save(
        owner=owner,
        slug="desk",
        name="Desk",
        entry_agent=entry,
        members={"billing": "money"},
    )
    text = owner_client.get(f"/systems/{system.public_id}/export/").content.decode()
    renamed = text.replace("router", "router2").replace("billing", "billing2").replace("desk", "desk2")
    owner_client.post("/import/", {"text": renamed, "confirm": "1"})
    copy = AgentSystem.objects.get(slug="desk2")
    assert copy.entry_agent.slug == "router2"
    assert {m.agent.slug: m.role for m in copy.members.all()} == {"router2": "entry", "billing2": "money"}
    assert copy.entry_agent.draft.config["sub_agents"][0]["agent_key"] == "billing2"
    assert billing.slug == "billing"


def test_old_system_file_with_knowledge_text_imports_it_as_a_knowledge_base(owner_client, owner):
    """Files exported before knowledge bases replaced the system's text box still import: the text
    becomes a knowledge base attached to the system, queued for indexing like a pasted text."""
    from rag.models import Document
    from tests.rag.conftest import ingest

    entry = make_agent(owner, slug="router", name="Router")
    system = system_save(owner=owner, slug="desk", name="Desk", entry_agent=entry, members={})
    data = yaml.safe_load(owner_client.get(f"/systems/{system.public_id}/export/").content.decode())
    assert "knowledge" not in data["system"]
    data["system"]["knowledge"] = ["We open at 9.", "No refunds after 30 days."]
    text = yaml.safe_dump(data).replace("router", "router2").replace("desk", "desk2")
    preview = owner_client.post("/import/", {"text": text}, headers={"HX-Request": "true"})
    assert b"becomes a new knowledge base named Desk" in preview.content
    owner_client.post("/import/", {"text": text, "confirm": "1"})
    copy = AgentSystem.objects.get(slug="desk2")
    (link,) = copy.knowledge_links.select_related("knowledge_base")
    assert (link.knowledge_base.name, link.knowledge_base.owner, link.mode) == ("Desk", owner, "auto")
    document = ingest(Document.objects.get(knowledge_base=link.knowledge_base))
    assert document.status == "ready"
    assert document.file.read().decode() == "We open at 9.\n---\nNo refunds after 30 days."
