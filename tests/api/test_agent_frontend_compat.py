"""What the agent-frontend widget (npm ``@makemore/agent-frontend``) sends and reads, with its defaults.

It mints ``POST /api/accounts/anonymous-session/`` (JSON content type, no body) and reads
``token``; sends it as ``X-Anonymous-Token``; starts runs at ``/api/agent-runtime/runs/`` with a
snake_case JSON body, or a multipart form when files are attached; opens
``runs/<id>/events/?token=...`` in an EventSource listening for named events and reading
``payload.delta`` / ``payload.content`` / ``payload.error``; lists ``conversations/?agent_key=``
(``results[].id``, ``title``); pages a conversation with ``?limit=10&offset=N`` (``messages``,
``has_more``; offset 0 is the newest page); and reads ``models/`` (``models[].id``, ``default``).
The browser test is ``e2e/test_agent_frontend.py``.
"""

from __future__ import annotations

import json

import pytest
from django.db import transaction
from django.test import override_settings
from rest_framework.test import APIClient

from builder.services import agent_create, agent_publish
from runtime.channels.models import WidgetChannel
from runtime.channels.services import widget_channel_create
from runtime.events import append_events
from runtime.models import AgentConversation, AgentMessage, AgentRun
from tests.api.live import parse_sse

pytestmark = pytest.mark.django_db
SITE = "http://shop.example.com"
AF = "/api/agent-runtime"


@pytest.fixture
def visitor() -> APIClient:
    """A browser on the customer's site holding a freshly minted anonymous session."""
    client = APIClient()
    with override_settings(CORS_ALLOWED_ORIGINS=[SITE]):
        minted = client.post(
            "/api/accounts/anonymous-session/", data="", content_type="application/json", HTTP_ORIGIN=SITE
        )
    assert minted.status_code == 201
    client.credentials(HTTP_X_ANONYMOUS_TOKEN=minted.json()["token"], HTTP_ORIGIN=SITE)
    client.token = minted.json()["token"]  # type: ignore[attr-defined]
    return client


@pytest.fixture
def published(owner):
    agent = agent_create(owner=owner, slug="shop-help", name="Shop help", config={"system_prompt": "Help."})
    agent_publish(agent=agent, user=owner)
    # anonymous sessions run an agent through its web widget, from the widget's allowed sites
    widget_channel_create(agent_key="shop-help", user=owner, allowed_origins=[SITE])
    return agent


def widget_body(text: str, conversation_id: str | None = None) -> dict:
    # exactly what AgentClient.buildJsonInit sends, after its camelCase -> snake_case transform
    return {
        "agent_key": "shop-help",
        "conversation_id": conversation_id,
        "messages": [{"role": "user", "content": text}],
        "metadata": {"journey_type": "general"},
    }


@override_settings(CORS_ALLOWED_ORIGINS=[SITE])
def test_the_widgets_default_paths_answer_its_site_with_its_token_header():
    preflight = APIClient().options(
        f"{AF}/runs/",
        HTTP_ORIGIN=SITE,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type, x-anonymous-token",
    )
    assert preflight.status_code == 200
    assert preflight["Access-Control-Allow-Origin"] == SITE
    assert "x-anonymous-token" in preflight["Access-Control-Allow-Headers"]


def test_a_snake_case_run_starts_and_names_its_new_conversation(visitor, published):
    created = visitor.post(f"{AF}/runs/", widget_body("Where is my order?"), format="json")
    assert created.status_code == 201, created.json()
    run = created.json()
    assert run["id"] and run["conversation_id"]  # the widget stores conversation_id for the next message
    again = visitor.post(
        f"{AF}/runs/", widget_body("And the invoice?", run["conversation_id"]), format="json"
    )
    assert again.status_code == 201 and again.json()["conversation_id"] == run["conversation_id"]
    assert AgentRun.objects.get(pk=run["id"]).metadata["journey_type"] == "general"


def test_an_unpublished_agent_is_refused_to_the_widgets_visitor_and_nothing_is_written(visitor, owner):
    agent_create(owner=owner, slug="draft-only", name="Draft", config={"system_prompt": "Help."})
    body = {**widget_body("hi"), "agent_key": "draft-only"}
    refused = visitor.post(f"{AF}/runs/", body, format="json")
    assert refused.status_code in (400, 404), refused.json()
    assert isinstance(refused.json()["error"], str) and "draft-only" in refused.json()["error"]
    assert not AgentRun.objects.exists() and not AgentConversation.objects.exists()


def multipart(text: str, *files) -> dict:
    # AgentClient.buildFormDataInit: plain fields, JSON text for messages and metadata, files parts
    return {
        "agent_key": "shop-help",
        "messages": json.dumps([{"role": "user", "content": text}]),
        "metadata": json.dumps({"journey_type": "general"}),
        "files": list(files),
    }


def upload(name: str, content: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, content, content_type="text/plain")


def test_a_multipart_run_with_a_text_file_gives_the_model_the_file(visitor, published):
    created = visitor.post(
        f"{AF}/runs/",
        multipart("Summarise this", upload("notes.txt", b"Order 42 ships Monday.")),
        format="multipart",
    )
    assert created.status_code == 201, created.json()
    stored = AgentMessage.objects.get(conversation_id=created.json()["conversation_id"], role="user")
    assert stored.content.startswith("Summarise this")
    assert '<attached_file name="notes.txt" type="txt" size="22">\nOrder 42 ships Monday.\n' in stored.content
    run = AgentRun.objects.get()
    # the widget's metadata, and the web widget channel the run counted against (set by the server)
    assert run.metadata == {"journey_type": "general", "widget_channel": str(WidgetChannel.objects.get().pk)}


@pytest.mark.parametrize(
    ("form", "field", "says"),
    [
        ({"files": [upload("photo.png", b"\x89PNG\r\n\x1a\n\xff\xfe")]}, "files", "photo.png: this is a PNG"),
        (
            {"files": [upload("big.txt", b"x" * (10 * 1024 * 1024 + 1))]},
            "files",
            "big.txt: the file is 10.0 MB; attach files of at most 10 MB.",
        ),
        ({"files": [upload(f"{n}.txt", b"x") for n in range(6)]}, "files", "at most 5 files"),
        ({"messages": "[not json"}, "messages", "as JSON text"),
        ({"metadata": "{oops"}, "metadata", "as JSON text"),
    ],
)
def test_a_bad_multipart_run_names_the_field_and_writes_nothing(visitor, published, form, field, says):
    refused = visitor.post(f"{AF}/runs/", {**multipart("hi"), **form}, format="multipart")
    assert refused.status_code == 400, refused.content
    error = refused.json()
    # the original package's shape: the widget shows `error` as the message
    assert error["error"].startswith(f"{field}: ") and says in error["error"]
    assert says in error["fields"][field][0] and error["code"] == "invalid"
    assert not AgentRun.objects.exists() and not AgentConversation.objects.exists()


def test_the_stream_opens_with_the_token_in_the_url_and_names_each_event(visitor, published):
    run_id = visitor.post(f"{AF}/runs/", widget_body("hi"), format="json").json()["id"]
    with transaction.atomic():
        append_events(
            run_id,
            [
                ("run.started", {}),
                ("assistant.delta", {"delta": "Mon"}),
                ("assistant.delta", {"delta": "day"}),
                ("assistant.message", {"content": "Monday"}),
                ("run.succeeded", {"output": {}}),
            ],
            attempt=1,
            lease_token=None,
        )
        AgentRun.objects.filter(pk=run_id).update(status="succeeded")
    # an EventSource sends no headers: the token travels as ?token= (the widget's choice)
    response = APIClient().get(f"{AF}/runs/{run_id}/events/?token={visitor.token}")
    assert response.status_code == 200
    frames = parse_sse(b"".join(response.streaming_content)).frames
    got = [(f.event, json.loads(f.data)["payload"]) for f in frames if f.id is not None]
    assert ("assistant.delta", {"delta": "Mon"}) in got
    assert ("assistant.message", {"content": "Monday"}) in got
    assert got[-1][0] == "run.succeeded"
    stranger = APIClient().get(f"{AF}/runs/{run_id}/events/?token=not-a-token")
    assert stranger.status_code == 401


def test_the_conversation_list_and_the_newest_message_page_come_first(visitor, published):
    WidgetChannel.objects.update(requests_per_minute_per_visitor=20)  # 12 messages in a moment
    conversation_id = None
    for n in range(12):
        created = visitor.post(f"{AF}/runs/", widget_body(f"message {n}", conversation_id), format="json")
        conversation_id = created.json()["conversation_id"]
    listed = visitor.get(f"{AF}/conversations/?agent_key=shop-help").json()
    assert [c["id"] for c in listed["results"]] == [conversation_id]
    assert {"id", "title", "created_at", "updated_at"} <= set(listed["results"][0])

    newest = visitor.get(f"{AF}/conversations/{conversation_id}/?limit=10&offset=0").json()
    assert [m["content"] for m in newest["messages"]] == [f"message {n}" for n in range(2, 12)]
    assert newest["has_more"] is True and {"role", "content", "tool_calls", "tool_call_id"} <= set(
        newest["messages"][0]
    )
    older = visitor.get(f"{AF}/conversations/{conversation_id}/?limit=10&offset=10").json()
    assert [m["content"] for m in older["messages"]] == ["message 0", "message 1"]
    assert older["has_more"] is False
    # /api/agents/ keeps its documented order: offset counts from the first message
    first = visitor.get(f"/api/agents/conversations/{conversation_id}/?limit=10&offset=0").json()
    assert first["messages"][0]["content"] == "message 0"


def test_another_visitor_cannot_open_the_conversation(visitor, published):
    conversation_id = visitor.post(f"{AF}/runs/", widget_body("mine"), format="json").json()[
        "conversation_id"
    ]
    other = APIClient()
    token = other.post("/api/accounts/anonymous-session/").json()["token"]
    other.credentials(HTTP_X_ANONYMOUS_TOKEN=token)
    assert other.get(f"{AF}/conversations/{conversation_id}/?limit=10&offset=0").status_code == 404
    assert other.get(f"{AF}/conversations/?agent_key=shop-help").json()["results"] == []


def test_the_models_list_has_the_shape_the_model_selector_reads(visitor):
    listed = visitor.get(f"{AF}/models/").json()
    assert isinstance(listed["models"], list) and "default" in listed
    assert all({"id", "name"} <= set(model) for model in listed["models"])
    assert listed["default"] is None or listed["default"] in {m["id"] for m in listed["models"]}


def test_the_alias_stays_out_of_the_api_schema(client):
    schema = client.get("/api/schema/?format=json").json()
    assert not [path for path in schema["paths"] if path.startswith(AF)]
    assert "/api/agents/runs/" in schema["paths"]


def test_a_visitor_cannot_choose_the_model_and_is_told_why(visitor, published):
    # the widget's model selector sends `model`; the published version's own model is the visitor's
    refused = visitor.post(f"{AF}/runs/", {**widget_body("hi"), "model": "demo"}, format="json")
    assert refused.status_code == 400
    assert refused.json()["error"].startswith(
        "model: Only people who may edit this agent may choose its model"
    )
    assert not AgentRun.objects.exists()


def test_a_failed_runs_error_reaches_the_widget_as_text(visitor, published):
    run_id = visitor.post(f"{AF}/runs/", widget_body("hi"), format="json").json()["id"]
    error = {"code": "llm_bad_request", "message": "The openai provider rejected the request (400)."}
    with transaction.atomic():
        append_events(
            run_id,
            [("run.started", {}), ("run.failed", {"error": error, "attempt": 1})],
            attempt=1,
            lease_token=None,
        )
        AgentRun.objects.filter(pk=run_id).update(status="failed")
    response = APIClient().get(f"{AF}/runs/{run_id}/events/?token={visitor.token}")
    frames = parse_sse(b"".join(response.streaming_content)).frames
    failed = next(json.loads(f.data) for f in frames if f.event == "run.failed")
    assert failed["payload"] == {"error": error["message"], "error_code": "llm_bad_request", "attempt": 1}
    # /api/agents/ keeps the engine's payload
    response = APIClient().get(f"/api/agents/runs/{run_id}/events/?token={visitor.token}")
    frames = parse_sse(b"".join(response.streaming_content)).frames
    assert next(json.loads(f.data) for f in frames if f.event == "run.failed")["payload"]["error"] == error
