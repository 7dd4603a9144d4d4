"""The REST contract as each persona sees it: owner, another user, an anonymous session
(its own objects and another's), an expired token, and no credentials."""

from __future__ import annotations

import uuid

import pytest

from runtime.models import AgentConversation, AgentRun
from runtime.services import run_cancel, run_create
from tests.api.conftest import API, open_to_visitors, say

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def echo_has_a_widget(db):
    """Anonymous sessions run an agent only through its web widget channel (docs/publishing.md)."""
    open_to_visitors("echo")


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "fields"}, body
    assert "Traceback" not in response.content.decode()
    return body["error"]


# --- runs ----------------------------------------------------------------------------------


def test_create_run_returns_201_with_the_documented_fields(client_for, personas):
    response = client_for(personas["owner"]).post(
        f"{API}/runs/", {"agent_key": "echo", "messages": say("hello")}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert {"id", "conversation_id", "agent_key", "status", "created_at"} <= set(body)
    assert body["agent_key"] == "echo" and body["status"] == "queued"
    run = AgentRun.objects.get(pk=body["id"])
    assert str(run.conversation_id) == body["conversation_id"]
    assert [(m.role, m.content) for m in run.conversation.messages.order_by("seq")] == [("user", "hello")]


def test_anonymous_session_creates_runs_it_owns(client_for, personas, anon_session):
    response = client_for(personas["anon"]).post(
        f"{API}/runs/", {"agent_key": "echo", "messages": say("hi")}, format="json"
    )
    assert response.status_code == 201, response.content
    run = AgentRun.objects.get(pk=response.json()["id"])
    assert run.anonymous_session_id == anon_session.pk and run.user is None
    assert run.conversation.anonymous_session_id == anon_session.pk


def test_repeated_idempotency_key_returns_the_first_run_with_200(client_for, personas):
    client = client_for(personas["owner"])
    body = {"agent_key": "echo", "messages": say("once"), "idempotency_key": "k-1"}
    first = client.post(f"{API}/runs/", body, format="json")
    again = client.post(f"{API}/runs/", body, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert AgentRun.objects.filter(idempotency_key="k-1").count() == 1
    # the key is per caller: another user with the same key gets its own run
    other = client_for(personas["other_user"]).post(f"{API}/runs/", body, format="json")
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "agent_key"),
        ({"agent_key": "echo"}, "messages"),
        ({"agent_key": "echo", "messages": []}, "messages"),
        ({"agent_key": "echo", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"agent_key": "no-such-agent", "messages": [{"role": "user", "content": "x"}]}, "agent_key"),
        ({"agent_key": "echo", "messages": [{"role": "user", "content": ""}]}, "messages[0].content"),
        ({"agent_key": "echo", "messages": [{"role": "user", "content": "x"}], "params": [1]}, "params"),
        ({"agent_key": "echo", "messages": {"role": "user", "content": "x"}}, "messages"),
        ({"agent_key": "echo", "messages": ["hello"]}, "messages[0]"),
        (
            {"agent_key": "echo", "messages": [{"role": "assistant", "tool_calls": "x"}]},
            "messages[0].tool_calls",
        ),
        (
            {"agent_key": "echo", "messages": [{"role": "tool", "content": "x", "tool_call_id": 7}]},
            "messages[0].tool_call_id",
        ),
        (
            {"agent_key": "echo", "messages": [{"role": "user", "content": "x"}], "conversation_id": "nope"},
            "conversation_id",
        ),
    ],
)
def test_bad_run_input_names_the_field_and_writes_nothing(client_for, personas, body, field):
    response = client_for(personas["owner"]).post(f"{API}/runs/", body, format="json")
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert field in error["fields"], error
    assert error["message"]
    assert not AgentRun.objects.exists() and not AgentConversation.objects.exists()


def test_malformed_json_is_a_clear_400(client_for, personas):
    response = client_for(personas["owner"]).post(
        f"{API}/runs/", "{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert error_of(response)["code"] == "parse_error"


def test_run_list_shows_only_the_callers_runs(client_for, personas, owner, anon_session):
    mine, _ = run_create(agent_key="echo", messages=say("a"), user=owner)
    theirs, _ = run_create(agent_key="echo", messages=say("b"), anonymous_session_id=anon_session.pk)
    listed = client_for(personas["owner"]).get(f"{API}/runs/").json()
    assert [r["id"] for r in listed["results"]] == [str(mine.pk)]
    listed = client_for(personas["anon"]).get(f"{API}/runs/").json()
    assert [r["id"] for r in listed["results"]] == [str(theirs.pk)]
    assert client_for(personas["other_anon"]).get(f"{API}/runs/").json()["results"] == []
    bad = client_for(personas["owner"]).get(f"{API}/runs/?status=weird")
    assert bad.status_code == 400 and "status" in error_of(bad)["fields"]


def test_cancel_a_queued_run_then_409_once_finished(client_for, personas, owner):
    run, _ = run_create(agent_key="echo", messages=say("a"), user=owner)
    client = client_for(personas["owner"])
    response = client.post(f"{API}/runs/{run.pk}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    again = client.post(f"{API}/runs/{run.pk}/cancel/")
    assert again.status_code == 409
    error = error_of(again)
    assert error["code"] == "run_finished" and "cancelled" in error["message"]


# --- who may see what ------------------------------------------------------------------------

RUN_ROUTES = [
    ("get", "/runs/{run}/"),
    ("post", "/runs/{run}/cancel/"),
    ("get", "/runs/{run}/events/"),
    ("get", "/conversations/{conversation}/"),
    ("patch", "/conversations/{conversation}/"),
    ("delete", "/conversations/{conversation}/"),
]
EXPECTED = {
    # persona -> status for an object owned by the user "owner" / by the session "anon"
    "owner": (200, 404),
    "other_user": (404, 404),
    "anon": (404, 200),
    "other_anon": (404, 404),
    "expired": (401, 401),
    "nobody": (401, 401),
}


@pytest.mark.parametrize("persona", list(EXPECTED))
@pytest.mark.parametrize(("method", "route"), RUN_ROUTES)
def test_objects_are_visible_only_to_their_owner(
    client_for, personas, owner, anon_session, persona, method, route
):
    users_run, _ = run_create(agent_key="echo", messages=say("u"), user=owner)
    anons_run, _ = run_create(agent_key="echo", messages=say("a"), anonymous_session_id=anon_session.pk)
    if "events" in route:  # a finished run, so a visible stream ends by itself
        for run in (users_run, anons_run):
            AgentRun.objects.filter(pk=run.pk).update(status="succeeded")
    client = client_for(personas[persona])
    for run, expected in zip((users_run, anons_run), EXPECTED[persona], strict=True):
        path = API + route.format(run=run.pk, conversation=run.conversation_id)
        response = getattr(client, method)(
            path, {"title": "renamed"} if method == "patch" else None, format="json"
        )
        if expected == 200:
            assert response.status_code in {200, 204}, (persona, path, response.status_code)
        else:
            assert response.status_code == expected, (persona, path, response.status_code)
            error = error_of(response)
            assert error["code"] in {"not_found", "not_authenticated", "authentication_failed"}
            if persona == "expired":
                assert "expired" in error["message"]


def test_query_token_is_refused_outside_event_streams(client_for, anon_session, owner):
    run, _ = run_create(agent_key="echo", messages=say("a"), anonymous_session_id=anon_session.pk)
    client = client_for()
    response = client.get(f"{API}/runs/{run.pk}/?anonymous_token={anon_session.token}")
    assert response.status_code == 401
    run_cancel(run=run)  # finished, with a run.cancelled event, so the stream ends by itself
    stream = client.get(f"{API}/runs/{run.pk}/events/?anonymous_token={anon_session.token}")
    assert stream.status_code == 200
    assert b"event: run.cancelled" in b"".join(stream.streaming_content)


def test_session_login_works_like_a_token(client_for, owner):
    run, _ = run_create(agent_key="echo", messages=say("a"), user=owner)
    client = client_for()
    client.force_login(owner)
    assert client.get(f"{API}/runs/{run.pk}/").json()["id"] == str(run.pk)


def test_garbage_ids_are_404_not_500(client_for, personas):
    client = client_for(personas["owner"])
    for path in ("/runs/not-a-uuid/", "/conversations/123/", "/runs/x/events/"):
        response = client.get(API + path)
        assert response.status_code == 404, (path, response.content)
        assert error_of(response)["code"] == "not_found"


# --- conversations ---------------------------------------------------------------------------


def test_conversation_create_list_filter_rename_delete(client_for, personas):
    client = client_for(personas["owner"])
    created = client.post(f"{API}/conversations/", {"agent_key": "echo", "title": "First"}, format="json")
    assert created.status_code == 201, created.content
    conv_id = created.json()["id"]
    client.post(f"{API}/conversations/", {"agent_key": "noop"}, format="json")
    assert len(client.get(f"{API}/conversations/").json()["results"]) == 2
    only_echo = client.get(f"{API}/conversations/?agent_key=echo").json()["results"]
    assert [c["id"] for c in only_echo] == [conv_id]
    assert client_for(personas["other_user"]).get(f"{API}/conversations/").json()["results"] == []

    renamed = client.patch(f"{API}/conversations/{conv_id}/", {"title": "Renamed"}, format="json")
    assert renamed.status_code == 200 and renamed.json()["title"] == "Renamed"
    bad = client.patch(f"{API}/conversations/{conv_id}/", {"title": "x" * 301}, format="json")
    assert bad.status_code == 400 and "title" in error_of(bad)["fields"]

    assert client.delete(f"{API}/conversations/{conv_id}/").status_code == 204
    assert client.get(f"{API}/conversations/{conv_id}/").status_code == 404
    unknown = client.post(f"{API}/conversations/", {"agent_key": "nope"}, format="json")
    assert unknown.status_code == 400 and "agent_key" in error_of(unknown)["fields"]


def test_conversation_messages_are_paged(client_for, personas, owner):
    first, _ = run_create(agent_key="echo", messages=say("m0"), user=owner)
    for index in range(1, 5):
        run_create(agent_key="echo", messages=say(f"m{index}"), user=owner, conversation=first.conversation)
    client = client_for(personas["owner"])
    url = f"{API}/conversations/{first.conversation_id}/"
    page = client.get(url, {"limit": 2, "offset": 0}).json()
    assert [m["content"] for m in page["messages"]] == ["m0", "m1"]
    assert (page["total"], page["has_more"]) == (5, True)
    last = client.get(url, {"limit": 2, "offset": 4}).json()
    assert [m["content"] for m in last["messages"]] == ["m4"] and last["has_more"] is False
    bad = client.get(url, {"limit": 0})
    assert bad.status_code == 400 and "limit" in error_of(bad)["fields"]


def test_continuing_someone_elses_conversation_is_404(client_for, personas, owner):
    run, _ = run_create(agent_key="echo", messages=say("a"), user=owner)
    body = {"agent_key": "echo", "messages": say("b"), "conversation_id": str(run.conversation_id)}
    response = client_for(personas["other_user"]).post(f"{API}/runs/", body, format="json")
    assert response.status_code == 404
    assert AgentRun.objects.count() == 1


# --- models, schema, docs --------------------------------------------------------------------


def test_models_list(client_for, personas):
    response = client_for(personas["owner"]).get(f"{API}/models/")
    assert response.status_code == 200
    body = response.json()
    assert body["models"] and body["default"]
    for model in body["models"]:
        assert {"id", "name", "provider", "supports_tools", "supports_streaming"} <= set(model)
    assert client_for(personas["nobody"]).get(f"{API}/models/").status_code == 401


def test_schema_documents_every_endpoint_and_docs_page_is_self_hosted(client_for):
    client = client_for()
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in (
        "/api/agents/runs/",
        "/api/agents/runs/{id}/",
        "/api/agents/runs/{id}/cancel/",
        "/api/agents/runs/{run_id}/events/",
        "/api/agents/runs/{run_id}/events/stream/",
        "/api/agents/conversations/",
        "/api/agents/conversations/{id}/",
        "/api/agents/models/",
        "/api/accounts/anonymous-session/",
    ):
        assert path in paths, path
    assert "201" in paths["/api/agents/runs/"]["post"]["responses"]
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"cdn." not in docs.content and b"/static/drf_spectacular_sidecar/" in docs.content


def test_unknown_api_address_is_a_json_404(client_for):
    response = client_for().get("/api/agents/nothing-here/")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_an_unexpected_error_is_logged_and_answered_without_a_trace(caplog):
    from runtime.api.errors import exception_handler

    def broken() -> None:
        raise RuntimeError("secret internal detail")

    try:
        broken()
    except RuntimeError as exc:
        response = exception_handler(exc, {"view": None})
    assert response.status_code == 500
    assert response.data["error"]["code"] == "server_error"
    assert "secret internal detail" not in str(response.data)
    assert "secret internal detail" in caplog.text


def test_nul_characters_are_bad_input_not_server_errors(client_for, personas, anon_session):
    """PostgreSQL cannot store or compare text holding U+0000; each place says which value."""
    owner = client_for(personas["owner"])
    listed = owner.get(f"{API}/runs/", {"agent_key": "a\x00b"})
    assert listed.status_code == 400 and "agent_key" in error_of(listed)["fields"]
    in_text = owner.post(f"{API}/runs/", {"agent_key": "echo", "messages": say("a\x00b")}, format="json")
    assert in_text.status_code == 400 and "messages[0].content" in error_of(in_text)["fields"]
    in_json = owner.post(
        f"{API}/runs/",
        {"agent_key": "echo", "messages": say("hi"), "metadata": {"k": "a\x00b"}},
        format="json",
    )
    assert in_json.status_code == 400 and "NUL" in error_of(in_json)["message"]
    assert not AgentRun.objects.exists() and not AgentConversation.objects.exists()
    stream = client_for().get(f"{API}/runs/{uuid.uuid4()}/events/stream/", {"anonymous_token": "x\x00"})
    assert stream.status_code == 401
