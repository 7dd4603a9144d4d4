"""HTTP tools in the UI: validation next to the field, write-only secrets, and "try it" through the safe client."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from builder.models import ToolDefinition

pytestmark = pytest.mark.django_db


def _data(**overrides):
    data = {
        "name": "get_weather",
        "description": "Weather for a city",
        "method": "GET",
        "url": "https://api.example.com/weather/{city}",
        "headers": '{"Authorization": "Bearer {{secret:TOKEN}}"}',
        "parameters": json.dumps(
            {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
        ),
        "secrets": "TOKEN=s3cr3t-value",
    }
    data.update(overrides)
    return data


def test_create_tool_encrypts_secrets_and_never_shows_them(owner_client, owner):
    response = owner_client.post("/tools/new/", _data())
    assert response.status_code == 302
    tool = ToolDefinition.objects.get()
    assert tool.secrets == {"TOKEN": "s3cr3t-value"}
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT secrets FROM builder_tooldefinition")
        stored = cursor.fetchone()[0]
    assert "s3cr3t" not in stored
    page = owner_client.get(f"/tools/{tool.public_id}/").content.decode()
    assert "s3cr3t" not in page and "TOKEN" in page


def test_blank_secrets_keep_the_stored_ones(owner_client, owner):
    owner_client.post("/tools/new/", _data())
    tool = ToolDefinition.objects.get()
    owner_client.post(f"/tools/{tool.public_id}/", _data(description="New words", secrets=""))
    tool.refresh_from_db()
    assert tool.description == "New words" and tool.secrets == {"TOKEN": "s3cr3t-value"}


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"url": "ftp://files.example.com/x"}, "url", "http:// or https://"),
        ({"url": "javascript:alert(1)"}, "url", "http:// or https://"),
        ({"parameters": "{not json"}, "parameters", "not valid JSON"),
        (
            {"parameters": '{"type": "object", "properties": {"a": {"type": "nonsense"}}}'},
            "parameters",
            "not a valid JSON Schema",
        ),
        ({"parameters": '{"type": "string"}'}, "parameters", "object schema"),
        ({"headers": "[1, 2]"}, "headers", "JSON object"),
        ({"name": "get weather!"}, "name", "letters, digits and underscores"),
        ({"secrets": "no equals sign"}, "secrets", "NAME=value"),
        ({"url": "https://api.example.com/{town}"}, "url", "placeholder"),
    ],
)
def test_bad_tool_input_is_shown_next_to_the_field(owner_client, overrides, field, message):
    response = owner_client.post("/tools/new/", _data(**overrides), headers={"HX-Request": "true"})
    assert response.status_code == 422
    body = response.content.decode()
    assert f'id="id_{field}-error"' in body, body[:3000]
    assert message in body
    assert not ToolDefinition.objects.exists()


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        body = json.dumps(
            {
                "city": self.path.rsplit("/", 1)[-1],
                "auth": self.headers.get("Authorization"),
                "pad": "x" * 5000,
            }
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Request-Id", "abc")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def local_api(settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    settings.AGENT_HTTP_ALLOWED_HOSTS = [f"127.0.0.1:{port}"]
    yield f"http://127.0.0.1:{port}"
    server.shutdown()


def test_try_it_shows_status_headers_and_truncated_body(owner_client, owner, local_api):
    owner_client.post("/tools/new/", _data(url=f"{local_api}/weather/{{city}}"))
    tool = ToolDefinition.objects.get()
    response = owner_client.post(
        f"/tools/{tool.public_id}/try/", {"arguments": '{"city": "Oslo"}'}, headers={"HX-Request": "true"}
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "<strong>Status:</strong> 200" in body
    assert "x-request-id" in body.lower()
    assert "Oslo" in body and "Body truncated" in body
    assert "s3cr3t-value" not in body  # the secret is redacted from what the API echoed


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest", "http://localhost:9/admin"])
def test_try_it_refuses_private_addresses(owner_client, owner, settings, url):
    settings.AGENT_HTTP_ALLOWED_HOSTS = []
    tool = ToolDefinition.objects.create(
        owner=owner, name="meta", description="d", spec={"method": "GET", "url": url}
    )
    response = owner_client.post(
        f"/tools/{tool.public_id}/try/", {"arguments": "{}"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert 'class="b-error"' in response.content.decode()


@pytest.mark.parametrize(
    ("arguments", "message"), [("{bad", "not valid JSON"), ("[1]", "JSON object"), ("{}", "do not match")]
)
def test_try_it_bad_arguments(owner_client, owner, arguments, message):
    owner_client.post("/tools/new/", _data())
    tool = ToolDefinition.objects.get()
    response = owner_client.post(
        f"/tools/{tool.public_id}/try/", {"arguments": arguments}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 422 and message in response.content.decode()


def test_tool_pages_hidden_from_other_staff(staff_client, http_tool):
    assert staff_client.post(f"/tools/{http_tool.public_id}/try/", {"arguments": "{}"}).status_code == 404
    assert staff_client.post(f"/tools/{http_tool.public_id}/delete/").status_code == 404
    assert ToolDefinition.objects.count() == 1
