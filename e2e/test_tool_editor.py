"""Tools without JSON, in Chromium: a tool from a cURL line (and a bad one), the parameter list,
localhost refused with the operator's fix, and tools imported from an OpenAPI document."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from builder.models import ToolDefinition
from e2e.conftest import shot

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# Until base.html makes htmx swap 422 answers for every form (another change in flight), these
# pages do it for themselves; harmless once that lands.
SWAP_422 = """document.addEventListener('htmx:beforeSwap', (e) => {
  if (e.detail.xhr.status === 422) { e.detail.shouldSwap = true; e.detail.isError = false; }
});"""


@pytest.fixture(autouse=True)
def _swap_422(page):
    page.add_init_script(SWAP_422)


OPENAPI = """openapi: 3.0.0
info: {title: Weather, version: "1"}
servers: [{url: "https://weather.example.com/v2"}]
paths:
  /forecast/{city}:
    get:
      operationId: get_forecast
      summary: The forecast for a city
      parameters:
        - {name: city, in: path, required: true, schema: {type: string}}
        - {name: days, in: query, schema: {type: integer}}
  /alerts:
    get:
      operationId: list_alerts
      summary: Weather alerts
"""


def test_tool_from_a_curl_line_then_tried(page, live, weather_api):
    page.goto("/tools/new/")
    page.get_by_text("Start from a cURL command").click()
    page.get_by_label("cURL command").fill("curl -X POST 'https://api.example.com/x -d '{\"a\": 1}'")
    page.get_by_role("button", name="Read the command").click()
    error = page.locator("#id_curl-error")
    expect(error).to_contain_text("every quote is closed")
    shot(page, "tools-01-curl-error")
    assert not ToolDefinition.objects.exists()

    page.get_by_label("cURL command").fill(
        f"curl -H 'X-Api-Key: k-123' '{weather_api}/weather/today?city=Oslo'"
    )
    page.get_by_role("button", name="Read the command").click()
    expect(page.get_by_text("Read from your cURL command")).to_be_visible()
    expect(page.get_by_label("Parameter 1 name")).to_have_value("city")
    expect(page.get_by_label("Parameter 1 sent in")).to_have_value("query")
    shot(page, "tools-02-curl-filled")
    page.get_by_label("Description", exact=True).fill("Today's weather for a city")
    page.get_by_role("button", name="Save tool").click()
    page.get_by_label("Arguments").fill('{"city": "Oslo"}')
    page.get_by_role("button", name="Send request").click()
    expect(page.locator(".b-result")).to_contain_text("Status: 200")
    tool = ToolDefinition.objects.get()
    assert tool.spec["query_template"] == {"city": "{city}"} and tool.secrets == {"X_API_KEY": "k-123"}
    shot(page, "tools-03-curl-tool-tried")


def test_parameter_list_errors_and_localhost_are_shown_next_to_their_fields(page, live):
    page.goto("/tools/new/")
    page.get_by_label("Name", exact=True).fill("local_thing")
    page.get_by_label("Description", exact=True).fill("Something on this machine")
    page.get_by_label("URL", exact=True).fill("http://localhost:8000/api/{item}")
    page.get_by_label("Parameter 1 name").fill("item")
    page.get_by_label("Parameter 2 name").fill("bad name")
    page.get_by_role("button", name="Save tool").click()
    expect(page.locator("#id_parameters-error")).to_contain_text("'bad name' is not a valid name")
    page.get_by_label("Parameter 2 name").fill("")
    page.get_by_role("button", name="Add a parameter").click()
    expect(page.get_by_label("Parameter 3 name")).to_be_visible()
    expect(page.get_by_label("Parameter 1 name")).to_have_value("item")
    page.get_by_role("button", name="Save tool").click()
    expect(page.locator("#id_url-error")).to_contain_text("loopback")
    expect(page.locator("#id_url-error")).to_contain_text("localhost:8000 to AGENT_HTTP_ALLOWED_HOSTS")
    shot(page, "tools-04-localhost-refused")
    assert not ToolDefinition.objects.exists()


def test_tools_imported_from_an_openapi_document(page, live):
    page.goto("/tools/")
    page.get_by_role("link", name="Import from OpenAPI").click()
    page.get_by_label("OpenAPI document").fill("openapi: [unclosed")
    page.get_by_role("button", name="Read the document").click()
    expect(page.locator("#id_document-error")).to_contain_text("neither valid JSON nor YAML")
    shot(page, "tools-05-openapi-error")
    page.get_by_label("OpenAPI document").fill(OPENAPI)
    page.get_by_role("button", name="Read the document").click()
    page.get_by_role("button", name="Create the tools").click()
    expect(page.locator("#operations-error")).to_contain_text("Tick at least one operation")
    page.get_by_label("GET /forecast/{city}").check()
    shot(page, "tools-06-openapi-operations")
    page.get_by_role("button", name="Create the tools").click()
    expect(page.get_by_text("Imported 1 tool(s): get_forecast")).to_be_visible()
    tool = ToolDefinition.objects.get()
    assert tool.spec["url"] == "https://weather.example.com/v2/forecast/{city}"
    assert tool.spec["query_template"] == {"days": "{days}"}
    shot(page, "tools-07-openapi-imported")
