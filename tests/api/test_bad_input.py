"""Malformed or oversized requests are a 4xx naming the problem, never a 500."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from runtime.models import AgentMessage, AgentRun
from tests.api.conftest import API, say

pytestmark = pytest.mark.django_db


def _post(client, body: str, path: str = "/runs/"):
    return client.generic("POST", API + path, body, content_type="application/json")


@pytest.mark.parametrize("path", ["/runs.json", "/conversations.json", "/runs.api"])
def test_format_suffix_routes_answer_like_their_plain_route(client_for, personas, path):
    """DefaultRouter adds `runs.json` & co (the seed's README mounts one too): they must not 500."""
    response = client_for(personas["owner"]).get(API + path)
    assert response.status_code == 200
    if path.endswith(".json"):
        assert response.json()["results"] == []


def test_format_suffix_on_a_detail_and_an_unknown_format(client_for, personas):
    client = client_for(personas["owner"])
    run_id = client.post(f"{API}/runs/", {"agent_key": "echo", "messages": say("hi")}, format="json").json()[
        "id"
    ]
    assert client.get(f"{API}/runs/{run_id}.json").json()["id"] == run_id
    unknown = client.get(f"{API}/runs.xml")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"


def test_json_nested_ten_thousand_deep_is_a_400(client_for, personas):
    deep = "[" * 10_000 + "]" * 10_000
    response = _post(client_for(personas["owner"]), f'{{"agent_key": "echo", "messages": {deep}}}')
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"
    assert "nested more than" in response.json()["error"]["message"]
    assert not AgentRun.objects.exists()


def test_json_nested_deeper_than_the_limit_names_the_field(client_for, personas):
    deep = "[" * 200 + "]" * 200
    body = f'{{"agent_key": "echo", "messages": [{{"role": "user", "content": "hi"}}], "metadata": {{"x": {deep}}}}}'
    response = _post(client_for(personas["owner"]), body)
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("metadata.x")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            '{"agent_key": "echo", "messages": [{"role": "user", "content": "a\\ud800b"}]}',
            "messages[0].content",
        ),
        (
            '{"agent_key": "echo", "messages": [{"role": "user", "content": "ok"}], "metadata": {"k": "\\udfff"}}',
            "metadata.k",
        ),
    ],
)
def test_lone_surrogate_is_a_400_naming_the_field(client_for, personas, body, field):
    response = _post(client_for(personas["owner"]), body)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid" and field in error["fields"]
    assert "surrogate" in error["fields"][field][0]
    assert not AgentMessage.objects.exists()


def test_a_valid_surrogate_pair_is_a_character(client_for, personas):
    response = _post(
        client_for(personas["owner"]),
        '{"agent_key": "echo", "messages": [{"role": "user", "content": "smile \\ud83d\\ude00"}]}',
    )
    assert response.status_code == 201
    assert AgentMessage.objects.get().content == "smile \U0001f600"


@override_settings(REQUEST_MAX_BYTES=64 * 1024, DATA_UPLOAD_MAX_MEMORY_SIZE=64 * 1024)
def test_body_over_the_limit_is_a_413_with_a_json_error(client_for, personas):
    body = json.dumps({"agent_key": "echo", "messages": say("x" * 100_000)})
    response = _post(client_for(personas["owner"]), body)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert "64 KB" in response.json()["error"]["message"]
    assert not AgentRun.objects.exists()


@override_settings(REQUEST_MAX_BYTES=0, DATA_UPLOAD_MAX_MEMORY_SIZE=64 * 1024)
def test_body_django_stops_reading_is_a_413_too(client_for, personas):
    """With only Django's own cap (a host project without REQUEST_MAX_BYTES), still 413, not 500."""
    body = json.dumps({"agent_key": "echo", "messages": say("x" * 100_000)})
    response = _post(client_for(personas["owner"]), body)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
