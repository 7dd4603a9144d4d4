"""HTTP tools as data: validation for the builder's form, rendering, secrets, a hostile model."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from runtime.tools import ToolRegistry
from runtime.tools.http import HttpToolSpec, HttpToolSpecError, build_http_tool, validate_http_spec

SECRET = "Bearer sk-live-0123456789abcdef"
QUERY_SECRET = "qk-9876543210fedcba"


def _spec(base: str, **overrides) -> HttpToolSpec:
    data = {
        "name": "lookup_order",
        "description": "Look up an order by its id.",
        "url_template": f"{base}/orders/{{order_id}}",
        "parameters": {
            "type": "object",
            "properties": {
                "order_id": {"type": "string"},
                "verbose": {"type": "boolean"},
                "note": {"type": "string"},
            },
            "required": ["order_id"],
        },
        "query_template": {"verbose": "{verbose}"},
        "headers": {"X-Note": "{note}", "Authorization": "{{secret:api_key}}"},
    }
    data.update(overrides)
    return HttpToolSpec.from_dict(data)


def _fields(errors):
    return {field for field, _ in errors}


def test_a_complete_spec_is_valid():
    assert validate_http_spec(_spec("https://api.example.com")) == []


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"url_template": "https://{host}/x"}, "url_template", "host is fixed"),
        ({"url_template": "https://api.{tenant}.example.com/x"}, "url_template", "host is fixed"),
        ({"url_template": "https://example.com:{port}/x"}, "url_template", "host is fixed"),
        ({"url_template": "{base}/x"}, "url_template", "host is fixed"),
        ({"url_template": "https://example.com/x?q={order_id}"}, "url_template", "query parameters"),
        ({"url_template": "https://example.com/{missing}"}, "url_template", "not a parameter"),
        ({"url_template": "https://example.com/{note}"}, "url_template", "must be a required"),
        ({"url_template": "file:///etc/passwd"}, "url_template", "Only http and https"),
        ({"url_template": "gopher://example.com/"}, "url_template", "Only http and https"),
        ({"url_template": "http://169.254.169.254/latest"}, "url_template", "link-local"),
        ({"url_template": "http://2130706433/"}, "url_template", "loopback"),
        ({"url_template": "https://u:p@example.com/"}, "url_template", "Credentials"),
        (
            {"url_template": "https://example.com/{{secret:api_key}}"},
            "url_template",
            "only be used in headers",
        ),
        ({"method": "TRACE"}, "method", "Choose one of"),
        ({"name": "has space"}, "name", "letters"),
        ({"description": " "}, "description", "Describe"),
        ({"parameters": {"type": "array"}}, "parameters", "JSON Schema object"),
        (
            {"parameters": {"type": "object", "properties": {"a": {"type": 5}}}},
            "parameters",
            "valid JSON Schema",
        ),
        ({"headers": {"Host": "evil.example"}}, "headers.Host", "cannot"),
        ({"headers": {"X-A": "a\r\nX-B: b"}}, "headers.X-A", "one line"),
        ({"headers": {"X-A": "{nope}"}}, "headers.X-A", "not a parameter"),
        ({"query_template": {"q": "{nope"}}, "query_template.q", "braces"),
        ({"body_template": {"a": 1}}, "body_template", "has no body"),
        ({"method": "POST", "body_template": {"a": "{{secret:api_key}}"}}, "body_template", "only be used"),
        ({"timeout_s": 0}, "timeout_s", "above 0"),
        ({"timeout_s": 600}, "timeout_s", "at most 60"),
        ({"max_response_bytes": 10**9}, "max_response_bytes", "from 1 to"),
        ({"secret_headers": ["X-Note"]}, "secret_headers", "also a plain header"),
    ],
)
def test_each_mistake_names_its_field_and_the_fix(change, field, words):
    data = _spec("https://api.example.com").to_dict() | change
    errors = validate_http_spec(data)
    assert field in _fields(errors), errors
    assert any(words.lower() in message.lower() for f, message in errors if f == field), errors


def test_builder_style_url_key_is_accepted():
    data = _spec("https://api.example.com").to_dict()
    data["url"] = data.pop("url_template")
    assert validate_http_spec(data) == []
    assert HttpToolSpec.from_dict(data).url_template.endswith("/orders/{order_id}")


def test_an_invalid_spec_cannot_become_a_tool():
    with pytest.raises(HttpToolSpecError) as excinfo:
        build_http_tool(_spec("https://api.example.com", url_template="https://{h}/"), {})
    assert excinfo.value.errors[0][0] == "url_template"


def test_secrets_never_reach_the_description_schema_or_provider_formats():
    tool = build_http_tool(_spec("https://api.example.com"), {"api_key": SECRET})
    exposed = json.dumps(
        [tool.to_openai_format(), tool.to_anthropic_format(), tool.metadata, tool.description]
    )
    assert "sk-live" not in exposed


def _run(tool, arguments):
    return asyncio.run(ToolRegistry([tool]).execute(tool.name, arguments))


@pytest.mark.slow
def test_arguments_fill_placeholders_and_are_encoded(local_server):
    tool = build_http_tool(_spec(local_server.base), {"api_key": SECRET})
    result = _run(tool, {"order_id": "a/../../admin?x=1#f", "verbose": True, "note": "hi"})

    assert result["status"] == 200
    seen = local_server.recorder.requests[-1]
    assert seen["raw_path"].startswith("/orders/a%2F..%2F..%2Fadmin%3Fx%3D1%23f?")
    assert seen["query"] == {"verbose": "true"}
    assert seen["headers"]["X-Note"] == "hi"
    assert seen["headers"]["Authorization"] == SECRET  # the secret did reach its own host
    # Filtered headers: no cookies in what the model reads.
    assert "set-cookie" not in {k.lower() for k in result["headers"]}


@pytest.mark.slow
def test_optional_query_arguments_are_left_out_and_dot_segments_refused(local_server):
    tool = build_http_tool(_spec(local_server.base), {"api_key": SECRET})
    _run(tool, {"order_id": "42"})
    assert local_server.recorder.requests[-1]["query"] == {}

    result = _run(tool, {"order_id": ".."})
    assert "'.' or '..'" in result["error"]


@pytest.mark.slow
def test_json_body_template_keeps_argument_types(local_server):
    spec = _spec(
        local_server.base,
        method="POST",
        url_template=f"{local_server.base}/orders",
        parameters={
            "type": "object",
            "properties": {"qty": {"type": "integer"}, "sku": {"type": "string"}},
            "required": ["qty", "sku"],
        },
        query_template={},
        headers={},
        body_template={"item": {"sku": "{sku}", "quantity": "{qty}"}, "label": "sku {sku}"},
    )
    result = _run(build_http_tool(spec, {}), {"qty": 3, "sku": "AB-1"})
    assert json.loads(result["body"]["body"]) == {"item": {"sku": "AB-1", "quantity": 3}, "label": "sku AB-1"}
    assert result["body"]["headers"]["Content-Type"] == "application/json"


@pytest.mark.slow
def test_a_secret_echoed_by_the_server_is_redacted_everywhere(local_server, caplog):
    caplog.set_level(logging.DEBUG)
    # other libraries (litellm) quieten httpx when imported; this check needs its records
    caplog.set_level(logging.DEBUG, logger="httpx")
    spec = _spec(local_server.base, query_template={"key": "{{secret:query_key}}"})
    tool = build_http_tool(spec, {"api_key": SECRET, "query_key": QUERY_SECRET})
    result = _run(tool, {"order_id": "7"})

    assert local_server.recorder.requests[-1]["query"] == {"key": QUERY_SECRET}
    out = json.dumps(result)
    assert "sk-live-0123456789abcdef" not in out and QUERY_SECRET not in out
    assert result["body"]["headers"]["Authorization"] == "[redacted]"
    assert "sk-live" not in caplog.text and QUERY_SECRET not in caplog.text
    assert "HTTP Request" in caplog.text  # httpx logged the call, masked


@pytest.mark.slow
def test_an_http_tool_with_a_secret_follows_no_redirect(local_server):
    spec = _spec(local_server.base, url_template=f"{local_server.base}/redirect/{{order_id}}")
    tool = build_http_tool(spec, {"api_key": SECRET})
    result = _run(tool, {"order_id": "1"})
    assert "redirects are not followed" in result["error"]
    assert len(local_server.recorder.requests) == 1


@pytest.mark.slow
def test_a_tool_without_its_saved_secret_says_so(local_server):
    result = _run(build_http_tool(_spec(local_server.base), {}), {"order_id": "1"})
    assert "missing saved secrets (api_key)" in result["error"]
    assert local_server.recorder.requests == []


@pytest.mark.slow
def test_truncated_bodies_come_back_as_text(local_server):
    spec = _spec(
        local_server.base, url_template=f"{local_server.base}/big", max_response_bytes=100, headers={}
    )
    result = _run(build_http_tool(spec, {}), {"order_id": "1"})
    assert result["truncated"] is True and result["body"] == "x" * 100
