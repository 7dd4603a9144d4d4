"""Playground endpoints: send pins the draft, turns render as sanitised markdown, cancel, access."""

from __future__ import annotations

import pytest

from builder.services import agent_publish
from builder.services.playground import playground_send
from runtime.models import AgentConversation, AgentMessage, AgentRun, RunStatus

pytestmark = pytest.mark.django_db


def test_send_creates_a_pinned_run_in_a_playground_conversation(owner_client, agent):
    response = owner_client.post(
        f"/agents/{agent.public_id}/playground/send/", {"message": "Hello", "target": "draft"}
    )
    assert response.status_code == 201
    data = response.json()
    run = AgentRun.objects.get(pk=data["run_id"])
    assert run.agent_version == f"draft:{agent.public_id}@1" and run.status == RunStatus.QUEUED
    assert data["stream_url"] == f"/api/agents/runs/{run.pk}/events/stream/?include_debug=true"
    assert run.conversation.metadata["playground"] is True
    # the next turn goes to the same conversation
    again = owner_client.post(
        f"/agents/{agent.public_id}/playground/send/",
        {"message": "More", "conversation_id": data["conversation_id"]},
    )
    assert again.json()["conversation_id"] == data["conversation_id"]


def test_a_send_repeated_with_its_key_starts_one_run(owner_client, agent):
    """A double click (or a retried request) sends the same idempotency key twice."""
    url = f"/agents/{agent.public_id}/playground/send/"
    first = owner_client.post(url, {"message": "Once", "idempotency_key": "k-1"})
    second = owner_client.post(url, {"message": "Once", "idempotency_key": "k-1"})
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["run_id"] == second.json()["run_id"]
    assert AgentRun.objects.count() == 1 and AgentConversation.objects.count() == 1
    assert list(AgentMessage.objects.values_list("content", flat=True)) == ["Once"]
    # a new message gets a new key, and a new run
    third = owner_client.post(
        url,
        {"message": "Twice", "idempotency_key": "k-2", "conversation_id": first.json()["conversation_id"]},
    )
    assert third.json()["run_id"] != first.json()["run_id"]


def test_send_to_a_version(owner_client, owner, agent):
    version = agent_publish(agent=agent, user=owner)
    data = owner_client.post(
        f"/agents/{agent.public_id}/playground/send/", {"message": "Hi", "target": "1"}
    ).json()
    assert AgentRun.objects.get(pk=data["run_id"]).agent_version == version.pin
    bad = owner_client.post(f"/agents/{agent.public_id}/playground/send/", {"message": "Hi", "target": "7"})
    assert bad.status_code == 422 and "Version 7 does not exist" in bad.json()["message"]


def test_empty_message_is_refused(owner_client, agent):
    response = owner_client.post(f"/agents/{agent.public_id}/playground/send/", {"message": "  "})
    assert response.status_code == 422 and response.json() == {
        "field": "message",
        "message": "Type a message first.",
    }
    assert not AgentRun.objects.exists()


def test_retry_or_edit_replaces_the_last_user_message(owner_client, owner, agent):
    first = playground_send(user=owner, agent=agent, text="Typo mesage")
    owner_client.post(
        f"/agents/{agent.public_id}/playground/send/",
        {"message": "Fixed message", "conversation_id": str(first.conversation_id), "replace_last": "1"},
    )
    texts = list(
        AgentMessage.objects.filter(conversation=first.conversation, role="user").values_list(
            "content", flat=True
        )
    )
    assert texts == ["Fixed message"]


def test_finished_turn_renders_sanitised_markdown_with_usage(owner_client, owner, agent):
    run = playground_send(user=owner, agent=agent, text="Hi")
    AgentMessage.objects.create(
        conversation=run.conversation,
        run=run,
        seq=2,
        role="assistant",
        content='**Bold** <img src=x onerror="alert(1)"> [click](javascript:alert(2)) <script>alert(3)</script>',
    )
    AgentRun.objects.filter(pk=run.pk).update(
        status="succeeded", prompt_tokens=12, completion_tokens=5, cost_usd="0.0012"
    )
    response = owner_client.get(f"/playground/runs/{run.pk}/")
    body = response.content.decode()
    assert response["X-Run-Status"] == "succeeded"
    assert "<strong>Bold</strong>" in body
    assert "<img" not in body and "<script" not in body and "javascript:" not in body
    assert "12 prompt + 5 completion tokens" in body and "$0.0012" in body


def test_earlier_conversations_are_listed_and_reopen(owner_client, owner, agent):
    run = playground_send(user=owner, agent=agent, text="Remember the blue door")
    page = owner_client.get(agent.get_absolute_url()).content.decode()
    assert "Earlier conversations (1)" in page
    reopened = owner_client.get(
        f"{agent.get_absolute_url()}?conversation={run.conversation_id}"
    ).content.decode()
    assert 'class="b-msg b-msg--user">Remember the blue door' in reopened


def test_cancel_a_queued_run(owner_client, owner, agent):
    run = playground_send(user=owner, agent=agent, text="Hi")
    response = owner_client.post(f"/playground/runs/{run.pk}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert owner_client.post(f"/playground/runs/{run.pk}/cancel/").status_code == 409


def test_other_people_cannot_use_my_playground(owner, agent, staff_client, stranger_client):
    run = playground_send(user=owner, agent=agent, text="Hi")
    assert (
        staff_client.post(f"/agents/{agent.public_id}/playground/send/", {"message": "x"}).status_code == 404
    )
    assert staff_client.get(f"/playground/runs/{run.pk}/").status_code == 404
    assert staff_client.post(f"/playground/runs/{run.pk}/cancel/").status_code == 404
    assert stranger_client.post(f"/playground/runs/{run.pk}/cancel/").status_code == 302
    other_conversation = AgentConversation.objects.get()
    assert (
        staff_client.get(f"{agent.get_absolute_url()}?conversation={other_conversation.pk}").status_code
        == 404
    )
