"""The Unfold admin: every model has pages; runs are read-only; actions call the services."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from builder.models import AgentVersion
from builder.services import agent_update_draft
from builder.services.playground import playground_send
from builder.services.systems import system_save
from runtime.models import AgentEvent, AgentRun, MemoryEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_(db):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-123")
    client = Client()
    client.force_login(user)
    return client, user


@pytest.fixture
def data(owner, agent, http_tool):
    run = playground_send(user=owner, agent=agent, text="Hi")
    AgentEvent.objects.create(run=run, seq=1, event_type="assistant.delta", payload={"delta": "Hel"})
    AgentRun.objects.filter(pk=run.pk).update(next_seq=2)  # as the worker's event writer would
    system = system_save(owner=owner, slug="team", name="Team", entry_agent=agent, members={}, knowledge=[])
    MemoryEntry.objects.create(
        scope="system", system_key="team", key="hours", value="9-5", agent_key="helper"
    )
    return {"run": run, "system": system}


MODELS = [
    "builder/agent",
    "builder/agentdraft",
    "builder/agentdraftrevision",
    "builder/agentversion",
    "builder/tooldefinition",
    "builder/agentsystem",
    "builder/systemmember",
    "runtime/agentrun",
    "runtime/agentevent",
    "runtime/agentconversation",
    "runtime/agentmessage",
    "runtime/agentcheckpoint",
    "runtime/memoryentry",
]


@pytest.mark.parametrize("model", MODELS)
def test_every_model_has_a_changelist(admin_client_, data, model):
    client, _ = admin_client_
    assert client.get(f"/admin/{model}/").status_code == 200


def test_run_page_is_read_only_with_events_inline_and_badge(admin_client_, data):
    client, _ = admin_client_
    body = client.get(f"/admin/runtime/agentrun/{data['run'].pk}/change/").content.decode()
    assert "assistant.delta" in body
    assert 'name="_save"' not in body
    changelist = client.get("/admin/runtime/agentrun/").content.decode()
    assert "queued" in changelist


def test_cancel_and_retry_actions_call_the_services(admin_client_, data):
    client, _ = admin_client_
    run = data["run"]
    client.post("/admin/runtime/agentrun/", {"action": "cancel_runs", "_selected_action": [str(run.pk)]})
    run.refresh_from_db()
    assert run.status == "cancelled"
    client.post("/admin/runtime/agentrun/", {"action": "retry_runs", "_selected_action": [str(run.pk)]})
    retry = AgentRun.objects.exclude(pk=run.pk).get()
    assert retry.metadata["retry_of"] == str(run.pk) and retry.agent_version == run.agent_version


def test_publish_action(admin_client_, owner, agent, data):
    client, _ = admin_client_
    client.post("/admin/builder/agent/", {"action": "publish_agents", "_selected_action": [str(agent.pk)]})
    assert AgentVersion.objects.filter(agent=agent, number=1).exists()
    agent_update_draft(agent=agent, user=owner, config={"system_prompt": "v2"})
    client.get(f"/admin/builder/agent/{agent.pk}/publish/")  # a GET only asks for confirmation
    assert not AgentVersion.objects.filter(agent=agent, number=2).exists()
    client.post(f"/admin/builder/agent/{agent.pk}/publish/")
    assert AgentVersion.objects.filter(agent=agent, number=2).exists()


def test_tool_admin_never_shows_secrets(admin_client_, http_tool):
    client, _ = admin_client_
    http_tool.secrets = {"TOKEN": "s3cr3t"}
    http_tool.save()
    assert b"s3cr3t" not in client.get(f"/admin/builder/tooldefinition/{http_tool.pk}/change/").content
