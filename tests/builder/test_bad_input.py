"""The builder refuses oversized, explosive or unstorable input with a readable message, never a 500."""

from __future__ import annotations

import asyncio
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from rest_framework.test import APIClient

from builder.models import Agent, ToolDefinition
from builder.runtime_adapter import resolve
from builder.services.io import MAX_IMPORT_BYTES
from runtime.models import AgentRun
from tests.api.conftest import API, say
from tests.builder.conftest import make_agent

pytestmark = pytest.mark.django_db


def _alias_bomb(levels: int = 9, fanout: int = 9) -> str:
    """ "Billion laughs": 9 aliases per level, 9 levels, ~387 million strings once expanded."""
    lines = ["format: 1", "kind: agent", 'lol: &l0 ["lol"]']
    for level in range(1, levels + 1):
        lines.append(f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * fanout) + "]")
    lines += [
        "agents:",
        "  - slug: bomb",
        "    name: Bomb",
        "    config:",
        "      system_prompt: hi",
        f"      http_tools: *l{levels}",
    ]
    return "\n".join(lines) + "\n"


def test_yaml_alias_bomb_is_refused_quickly(owner_client):
    started = time.monotonic()
    response = owner_client.post("/import/", {"text": _alias_bomb()}, headers={"HX-Request": "true"})
    assert time.monotonic() - started < 5
    assert response.status_code == 422
    assert b"expands to more than 50,000 values" in response.content
    assert not Agent.objects.filter(slug="bomb").exists()


def test_self_referencing_alias_is_refused(owner_client):
    text = "format: 1\nkind: agent\nagents: &a\n  - *a\n"
    response = owner_client.post("/import/", {"text": text}, headers={"HX-Request": "true"})
    assert response.status_code == 422 and b"expands to more than" in response.content


def test_a_few_aliases_in_hand_written_yaml_still_import(owner_client):
    text = (
        "format: 1\nkind: agent\nprompt: &p You help.\nagents:\n"
        "  - {slug: one, name: One, config: {system_prompt: *p}}\n"
        "  - {slug: two, name: Two, config: {system_prompt: *p}}\n"
    )
    response = owner_client.post("/import/", {"text": text, "confirm": "1"})
    assert response.status_code == 302
    assert Agent.objects.get(slug="two").draft.config["system_prompt"] == "You help."


def test_yaml_nested_ten_thousand_deep_is_refused(owner_client):
    text = "format: 1\nkind: agent\nagents: " + "[" * 10_000 + "]" * 10_000 + "\n"
    response = owner_client.post("/import/", {"text": text}, headers={"HX-Request": "true"})
    assert response.status_code == 422 and b"nests deeper than 64 levels" in response.content


def test_yaml_lone_surrogate_is_refused_with_its_line(owner_client):
    text = 'format: 1\nkind: agent\nagents:\n  - slug: s\n    name: "bad \\ud800"\n    config: {system_prompt: hi}\n'
    response = owner_client.post("/import/", {"text": text, "confirm": "1"}, headers={"HX-Request": "true"})
    assert response.status_code == 422
    assert b"Line 5: This text holds a lone surrogate" in response.content
    assert not Agent.objects.filter(slug="s").exists()


def test_an_oversized_import_file_is_refused_unread(owner_client):
    upload = SimpleUploadedFile("big.yaml", b"#" * (MAX_IMPORT_BYTES + 1))
    response = owner_client.post("/import/", {"file": upload}, headers={"HX-Request": "true"})
    assert response.status_code == 422 and b"larger than 512 KB" in response.content


@override_settings(REQUEST_MAX_BYTES=64 * 1024, DATA_UPLOAD_MAX_MEMORY_SIZE=64 * 1024)
def test_body_over_the_limit_is_a_readable_413_page(owner_client):
    response = owner_client.post("/import/", {"text": "x" * 100_000})
    assert response.status_code == 413
    assert response["Content-Type"].startswith("text/html")
    assert b"at most 64 KB in one request" in response.content


@override_settings(REQUEST_MAX_BYTES=0, DATA_UPLOAD_MAX_MEMORY_SIZE=64 * 1024)
def test_body_django_stops_reading_is_a_413_page_too(owner_client):
    response = owner_client.post("/import/", {"text": "x" * 100_000})
    assert response.status_code == 413 and b"too much data" in response.content


@pytest.fixture
def agent_with_a_broken_tool(owner, http_tool):
    ToolDefinition.objects.create(
        owner=owner,
        name="stock",
        description="Stock levels",
        spec={"method": "GET", "url": "https://api.example.com/stock", "parameters": {"type": "object"}},
    )
    agent = make_agent(owner, slug="shop", http_tools=["weather", "stock"], python_tools=["current_time"])
    # A spec that no longer validates (saved before a rule tightened, or edited in the database).
    ToolDefinition.objects.filter(pk=http_tool.pk).update(spec={"method": "BREW", "url": "ftp://old.example"})
    return agent


def test_a_stored_tool_spec_that_no_longer_validates_fails_that_tool_only(owner, agent_with_a_broken_tool):
    client = APIClient()
    client.force_authenticate(owner)
    created = client.post(f"{API}/runs/", {"agent_key": "shop", "messages": say("hi")}, format="json")
    assert created.status_code == 201, created.content
    runtime = resolve("shop", AgentRun.objects.get(pk=created.json()["id"]))
    assert {"weather", "stock", "current_time"} <= set(runtime.tools.names)  # the others still work

    result = asyncio.run(runtime.tools.execute("weather", {}))
    assert "The tool weather cannot run: its saved settings are invalid" in result["error"]
    assert "url_template: Only http and https URLs are allowed" in result["error"]
    assert "error" not in asyncio.run(runtime.tools.execute("current_time", {}))


def test_the_playground_still_runs_an_agent_with_a_broken_tool(owner_client, agent_with_a_broken_tool):
    response = owner_client.post(
        f"/agents/{agent_with_a_broken_tool.public_id}/playground/send/",
        {"message": "hi"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 201
    assert AgentRun.objects.filter(agent_key="shop").count() == 1


DEEP = "[" * 10_000 + "]" * 10_000


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("parameters", DEEP, "nested more than 64 levels"),
        (
            "parameters",
            '{"type": "object", "description": "\\ud800"}',
            "description: This text holds a lone surrogate",
        ),
        ("headers", '{"X-Key": "\\udc00"}', "X-Key: This text holds a lone surrogate"),
    ],
)
def test_tool_form_json_that_would_fail_later_is_shown_next_to_the_field(owner_client, field, value, message):
    data = {
        "name": "get_weather",
        "description": "Weather",
        "method": "GET",
        "url": "https://api.example.com/weather",
        "headers": "",
        "parameters": "",
        "secrets": "",
        field: value,
    }
    response = owner_client.post("/tools/new/", data, headers={"HX-Request": "true"})
    assert response.status_code == 422
    body = response.content.decode()
    assert f'id="id_{field}-error"' in body and message in body
    assert not ToolDefinition.objects.exists()


def test_try_it_arguments_nested_too_deep(owner_client, http_tool):
    response = owner_client.post(
        f"/tools/{http_tool.public_id}/try/", {"arguments": DEEP}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 422 and b"nested more than 64 levels" in response.content


def test_memory_value_with_a_lone_surrogate(owner_client, owner, agent):
    from runtime.models import MemoryEntry

    entry = MemoryEntry.objects.create(scope="user", user=owner, key="k", value="v", agent_key="helper")
    url = f"/agents/{agent.public_id}/memory/{entry.pk}/"
    response = owner_client.post(url, {"value": '{"a": "\\ud800"}'}, headers={"HX-Request": "true"})
    assert response.status_code == 422 and b"lone surrogate" in response.content
    entry.refresh_from_db()
    assert entry.value == "v"
