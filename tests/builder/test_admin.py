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
    system = system_save(owner=owner, slug="team", name="Team", entry_agent=agent, members={})
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
    run = data["run"]
    AgentEvent.objects.create(run=run, seq=2, event_type="assistant.delta", payload={"delta": "lo there"})
    AgentEvent.objects.create(run=run, seq=3, event_type="tool.call", payload={"name": "get_weather"})
    body = client.get(f"/admin/runtime/agentrun/{run.pk}/change/").content.decode()
    assert "Hello there" in body  # the streamed text joined, not one row per token
    assert "tool.call" in body and "assistant.delta" not in body
    assert 'name="_save"' not in body
    # a queued run offers Cancel, not Retry
    assert f"/admin/runtime/agentrun/{run.pk}/cancel/" in body and f"{run.pk}/retry/" not in body
    changelist = client.get("/admin/runtime/agentrun/").content.decode()
    assert "queued" in changelist


def test_a_finished_run_offers_retry_not_cancel(admin_client_, data):
    client, _ = admin_client_
    run = data["run"]
    AgentRun.objects.filter(pk=run.pk).update(status="succeeded")
    body = client.get(f"/admin/runtime/agentrun/{run.pk}/change/").content.decode()
    assert f"{run.pk}/retry/" in body and f"{run.pk}/cancel/" not in body


def test_runs_filter_by_agent_status_and_time(admin_client_, data):
    client, _ = admin_client_
    run = data["run"]
    other = AgentRun.objects.create(agent_key="someone-else", status="succeeded")
    by_agent = client.get(
        "/admin/runtime/agentrun/", {"agent_key__icontains": run.agent_key[:4]}
    ).content.decode()
    assert str(run.pk)[:8] in by_agent and str(other.pk)[:8] not in by_agent
    by_status = client.get("/admin/runtime/agentrun/", {"status__exact": "succeeded"}).content.decode()
    assert str(other.pk)[:8] in by_status and str(run.pk)[:8] not in by_status
    # Unfold's range filter takes a date and a time (a bare "created_at_from" is an unknown
    # parameter: the admin redirects with ?e=1, an empty page that proves nothing)
    future = client.get(
        "/admin/runtime/agentrun/", {"created_at_from_0": "2999-01-01", "created_at_from_1": "00:00"}
    )
    assert future.status_code == 200
    assert str(run.pk)[:8] not in future.content.decode() and str(other.pk)[:8] not in future.content.decode()
    past = client.get(
        "/admin/runtime/agentrun/", {"created_at_from_0": "2000-01-01", "created_at_from_1": "00:00"}
    )
    assert str(run.pk)[:8] in past.content.decode() and str(other.pk)[:8] in past.content.decode()


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


def test_first_visit_copy_and_the_products_icon(client, admin_client_):
    login = client.get("/admin/login/").content.decode()
    assert "Sign in to" in login and "Welcome back" not in login
    assert 'rel="icon"' in login and "builder/logo.svg" in login
    staff_client, _ = admin_client_
    for path in ("/", "/admin/runtime/agentrun/"):
        assert "builder/logo.svg" in staff_client.get(path).content.decode()


def test_events_list_by_agent_and_time_and_filter_by_agent_type_and_time(admin_client_, data):
    client, _ = admin_client_
    run = data["run"]
    other = AgentRun.objects.create(agent_key="someone-else", status="succeeded")
    AgentEvent.objects.create(run=other, seq=1, event_type="run.succeeded", payload={})
    page = client.get("/admin/runtime/agentevent/").content.decode()
    # the agent's key heads each row, not the run's UUID
    assert run.agent_key in page and "someone-else" in page
    by_agent = client.get(
        "/admin/runtime/agentevent/", {"run__agent_key__icontains": "someone"}
    ).content.decode()
    assert "someone-else" in by_agent and str(run.pk)[:8] not in by_agent
    # the type is typed (part of it is enough): a list of every type would scan every event
    by_type = client.get("/admin/runtime/agentevent/", {"event_type__icontains": "delta"}).content.decode()
    assert str(run.pk)[:8] in by_type and str(other.pk)[:8] not in by_type
    future = client.get(
        "/admin/runtime/agentevent/", {"created_at_from_0": "2999-01-01", "created_at_from_1": "00:00"}
    )
    assert future.status_code == 200
    assert str(run.pk)[:8] not in future.content.decode() and str(other.pk)[:8] not in future.content.decode()


def test_memory_list_names_whose_user_memory_it_is(admin_client_, owner):
    MemoryEntry.objects.create(scope="user", user=owner, key="tone", value="brief", agent_key="helper")
    MemoryEntry.objects.create(scope="user", visitor="w7:alice", key="plan", value="pro", agent_key="helper")
    client, _ = admin_client_
    body = client.get("/admin/runtime/memoryentry/").content.decode()
    assert "User or visitor" in body
    assert owner.username in body
    assert "visitor w7:alice" in body  # a widget's identified visitor, not a blank cell
    found = client.get("/admin/runtime/memoryentry/", {"q": "w7:alice"}).content.decode()
    assert "plan" in found and "tone" not in found
