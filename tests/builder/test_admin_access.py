"""The admin as each persona (issue 10, item 1): a staff user who does not own the objects, the
owner and a superuser. Actions are POSTs with CSRF checked on each object; changelists and change
forms show each staff user only what they may see; a missing pk is a clean message, never a 500."""

from __future__ import annotations

import re
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from builder.models import AgentVersion
from builder.services.playground import playground_send
from builder.services.systems import system_save
from runtime.models import AgentConversation, AgentEvent, AgentRun, MemoryEntry, RunStatus
from runtime.services import run_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-123")


def csrf_client(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


@pytest.fixture
def clients(owner, other_staff, superuser):
    # Even with every model permission Django has, a staff user sees only what builder/access.py allows.
    other_staff.user_permissions.set(
        Permission.objects.filter(content_type__app_label__in=["builder", "runtime"])
    )
    return {
        "owner": csrf_client(owner),
        "other_staff": csrf_client(other_staff),
        "superuser": csrf_client(superuser),
    }


@pytest.fixture
def data(owner, agent, http_tool):
    run = playground_send(user=owner, agent=agent, text="my secret question")
    AgentEvent.objects.create(
        run=run, seq=1, event_type="assistant.delta", payload={"delta": "owner-only answer"}
    )
    AgentRun.objects.filter(pk=run.pk).update(next_seq=2)  # as the worker's event writer would
    system = system_save(owner=owner, slug="team", name="Team", entry_agent=agent, members={})
    memory = MemoryEntry.objects.create(
        scope="system", system_key="team", key="vip-list", value="x", agent_key="helper"
    )
    return {"run": run, "system": system, "agent": agent, "tool": http_tool, "memory": memory}


def post_with_csrf(client: Client, url: str, data: dict | None = None):
    """Read the CSRF token from a page the user may see, then POST as a browser would."""
    page = client.get("/admin/")
    assert page.status_code == 200
    token = client.cookies["csrftoken"].value
    return client.post(url, {"csrfmiddlewaretoken": token, **(data or {})})


def messages_of(response) -> str:
    return " ".join(str(m) for m in response.wsgi_request._messages)


DETAIL_ACTIONS = {
    "publish agent": ("builder/agent", "agent", "publish"),
    "publish system": ("builder/agentsystem", "system", "publish"),
    "cancel run": ("runtime/agentrun", "run", "cancel"),
    "retry run": ("runtime/agentrun", "run", "retry"),
}


def state(data) -> tuple:
    """Everything the four actions could change."""
    data["system"].refresh_from_db()
    return (
        AgentVersion.objects.count(),
        data["system"].published_at,
        AgentRun.objects.count(),
        list(AgentRun.objects.values_list("status", flat=True)),
    )


def finish(run) -> None:
    AgentRun.objects.filter(pk=run.pk).update(status=RunStatus.FAILED)  # retry needs a finished run


def ready_for(path: str, run) -> None:
    """Put the run where the action applies: retry needs a finished run, cancel an active one."""
    if path == "retry":
        finish(run)


@pytest.mark.parametrize("name", DETAIL_ACTIONS)
def test_a_get_only_asks_for_confirmation(clients, data, name):
    model, key, path = DETAIL_ACTIONS[name]
    ready_for(path, data["run"])
    before = state(data)
    response = clients["owner"].get(f"/admin/{model}/{data[key].pk}/{path}/")
    assert response.status_code == 200
    assert b'method="post"' in response.content and b"csrfmiddlewaretoken" in response.content
    assert state(data) == before


@pytest.mark.parametrize("name", DETAIL_ACTIONS)
def test_a_post_without_the_csrf_token_is_refused(clients, data, name):
    model, key, path = DETAIL_ACTIONS[name]
    ready_for(path, data["run"])
    before = state(data)
    assert clients["owner"].post(f"/admin/{model}/{data[key].pk}/{path}/").status_code == 403
    assert state(data) == before


@pytest.mark.parametrize("name", DETAIL_ACTIONS)
def test_another_staff_user_cannot_act_on_the_owners_objects(clients, data, name):
    model, key, path = DETAIL_ACTIONS[name]
    finish(data["run"])
    before = state(data)
    client = clients["other_staff"]
    response = client.get(f"/admin/{model}/{data[key].pk}/{path}/")
    assert response.status_code == 302 and "doesn’t exist" in messages_of(response)
    response = post_with_csrf(client, f"/admin/{model}/{data[key].pk}/{path}/")
    assert response.status_code == 302 and "doesn’t exist" in messages_of(response)
    assert state(data) == before


@pytest.mark.parametrize("who", ["owner", "superuser"])
def test_owner_and_superuser_publish_cancel_and_retry(clients, data, who):
    client = clients[who]
    agent, system, run = data["agent"], data["system"], data["run"]
    post_with_csrf(client, f"/admin/builder/agent/{agent.pk}/publish/")
    assert AgentVersion.objects.filter(agent=agent, number=1).exists()
    post_with_csrf(client, f"/admin/builder/agentsystem/{system.pk}/publish/")
    system.refresh_from_db()
    assert system.published_at is not None
    post_with_csrf(client, f"/admin/runtime/agentrun/{run.pk}/cancel/")
    run.refresh_from_db()
    assert run.status == "cancelled"
    response = post_with_csrf(client, f"/admin/runtime/agentrun/{run.pk}/retry/")
    retry = AgentRun.objects.exclude(pk=run.pk).get()
    assert response["Location"].endswith(f"/admin/runtime/agentrun/{retry.pk}/change/")
    # the new run is the original caller's, in the original conversation, whoever pressed retry
    assert (retry.user_id, retry.conversation_id) == (run.user_id, run.conversation_id)


@pytest.mark.parametrize("name", DETAIL_ACTIONS)
@pytest.mark.parametrize("method", ["get", "post"])
def test_a_missing_pk_is_a_clean_message(clients, data, name, method):
    model, _, path = DETAIL_ACTIONS[name]
    missing = 987654 if model.startswith("builder") else uuid.uuid4()
    for pk in (missing, "not-a-pk"):
        url = f"/admin/{model}/{pk}/{path}/"
        client = clients["superuser"]
        response = client.get(url) if method == "get" else post_with_csrf(client, url)
        assert response.status_code == 302, response.content[:300]
        assert "doesn’t exist" in messages_of(response)


def test_bulk_actions_skip_what_the_user_may_not_touch(clients, data, other_staff):
    """Changelist actions act only on rows the user sees; selecting others' ids does nothing."""
    run, agent = data["run"], data["agent"]
    client = clients["other_staff"]
    post_with_csrf(
        client, "/admin/runtime/agentrun/", {"action": "cancel_runs", "_selected_action": [str(run.pk)]}
    )
    post_with_csrf(
        client, "/admin/builder/agent/", {"action": "publish_agents", "_selected_action": [str(agent.pk)]}
    )
    run.refresh_from_db()
    assert run.status == "queued" and not AgentVersion.objects.exists()
    # a run the other staff member started themselves (of a published code agent) they may cancel
    own, _ = run_create(agent_key="echo", messages=[{"role": "user", "content": "hi"}], user=other_staff)
    post_with_csrf(
        client, "/admin/runtime/agentrun/", {"action": "cancel_runs", "_selected_action": [str(own.pk)]}
    )
    own.refresh_from_db()
    assert own.status == "cancelled"


CHANGELISTS = {
    "builder/agent": "Helper",
    "builder/agentdraft": "draft of",
    "builder/agentdraftrevision": "@1",
    "builder/tooldefinition": "weather",
    "builder/agentsystem": "Team",
    "builder/systemmember": None,
    "runtime/agentrun": "run_id",
    "runtime/agentevent": "assistant.delta",
    "runtime/agentconversation": "my secret question",
    "runtime/agentmessage": "conversation",
    "runtime/agentcheckpoint": None,
    "runtime/memoryentry": "vip-list",
}


def _rows(body: str) -> int:
    match = re.search(r"(\d+) (?:result|total|agent|run|memory|tool|conversation|event|message)", body)
    return int(match.group(1)) if match else -1


@pytest.mark.parametrize("model", CHANGELISTS)
def test_changelists_show_only_what_each_staff_user_may_see(clients, data, model):
    qs = {
        "builder/agent": data["agent"],
        "builder/tooldefinition": data["tool"],
        "builder/agentsystem": data["system"],
        "runtime/agentrun": data["run"],
        "runtime/agentconversation": data["run"].conversation,
        "runtime/memoryentry": data["memory"],
    }
    stranger_page = clients["other_staff"].get(f"/admin/{model}/")
    assert stranger_page.status_code == 200
    cl = stranger_page.context["cl"]
    assert cl.result_count == 0, f"{model}: another staff user sees {cl.result_count} of the owner's rows"
    for who in ("owner", "superuser"):
        page = clients[who].get(f"/admin/{model}/")
        assert page.status_code == 200
        expected = page.context["cl"].queryset.model.objects.count()
        assert page.context["cl"].result_count == expected, (who, model)
    if model in qs:
        obj = qs[model]
        change = f"/admin/{model}/{obj.pk}/change/"
        response = clients["other_staff"].get(change)
        assert response.status_code == 302 and "doesn’t exist" in messages_of(response)
        assert clients["owner"].get(change).status_code == 200


def test_the_owners_secrets_do_not_reach_another_staff_user(clients, data):
    client = clients["other_staff"]
    assert "owner" not in client.get("/admin/builder/agent/").content.decode()  # no owner filter of all users
    for url in (
        "/admin/runtime/agentevent/",
        "/admin/runtime/agentconversation/",
        "/admin/runtime/agentrun/",
    ):
        body = client.get(url).content.decode()
        assert "owner-only answer" not in body and "my secret question" not in body
    conversation = AgentConversation.objects.get()
    change = f"/admin/runtime/agentconversation/{conversation.pk}/change/"
    assert client.get(change).status_code == 302
    assert client.get(change, {"messages-page": 1}).status_code == 302  # paging does not open it
    # the owner, a staff user without model permissions, reads the conversation's messages
    owner_page = clients["owner"].get(change).content.decode()
    assert "Messages 1–1 of 1" in owner_page and "my secret question" in owner_page


def test_anonymous_sessions_are_for_superusers_only(clients):
    from accounts.models import AnonymousSession

    session = AnonymousSession.objects.create()
    other = clients["other_staff"]
    other_perms = Permission.objects.filter(content_type__app_label="accounts")
    get_user_model().objects.get(username="editor").user_permissions.add(*other_perms)
    assert other.get("/admin/accounts/anonymoussession/").status_code == 403
    post_with_csrf(
        other,
        "/admin/accounts/anonymoussession/",
        {"action": "expire_now", "_selected_action": [str(session.pk)]},
    )
    session.refresh_from_db()
    assert not session.is_expired
    post_with_csrf(
        clients["superuser"],
        "/admin/accounts/anonymoussession/",
        {"action": "expire_now", "_selected_action": [str(session.pk)]},
    )
    session.refresh_from_db()
    assert session.is_expired


@pytest.mark.parametrize(
    ("url", "action", "key"),
    [
        ("/admin/runtime/agentrun/", "cancel_runs", "run"),
        ("/admin/runtime/agentrun/", "retry_runs", "run"),
        ("/admin/builder/agent/", "publish_agents", "agent"),
    ],
)
def test_bulk_actions_need_the_csrf_token(clients, data, url, action, key):
    finish(data["run"])
    before = state(data)
    response = clients["owner"].post(url, {"action": action, "_selected_action": [str(data[key].pk)]})
    assert response.status_code == 403
    assert state(data) == before
