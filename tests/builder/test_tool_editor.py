"""HTTP tools without JSON: the parameter list, cURL and OpenAPI import, localhost judged once."""

from __future__ import annotations

import json

import pytest

from builder.models import ToolDefinition
from builder.services.tool_import import draft_from_curl
from builder.tool_params import rows_from_spec

pytestmark = pytest.mark.django_db
HX = {"HX-Request": "true"}


def _rows(*rows):
    data = {"param_rows": str(len(rows))}
    for i, (name, kind, description, required, location) in enumerate(rows):
        data.update(
            {
                f"param-{i}-name": name,
                f"param-{i}-type": kind,
                f"param-{i}-description": description,
                f"param-{i}-location": location,
            }
        )
        if required:
            data[f"param-{i}-required"] = "1"
    return data


def _tool(**overrides):
    data = {
        "name": "find_orders",
        "description": "Orders of a customer",
        "method": "GET",
        "url": "https://api.example.com/customers/{customer_id}/orders",
        "headers": "",
        "parameters": "",
        "secrets": "",
    }
    data.update(overrides)
    return data


def test_the_parameter_list_produces_the_json_schema_and_where_each_argument_goes(owner_client):
    rows = _rows(
        ("customer_id", "integer", "The customer's number", True, "path"),
        ("status", "string", "open or shipped", False, "query"),
        ("", "string", "", False, "query"),  # a blank row is dropped
    )
    response = owner_client.post("/tools/new/", {**_tool(), **rows})
    assert response.status_code == 302
    spec = ToolDefinition.objects.get().spec
    assert spec["parameters"] == {
        "type": "object",
        "properties": {
            "customer_id": {"type": "integer", "description": "The customer's number"},
            "status": {"type": "string", "description": "open or shipped"},
        },
        "required": ["customer_id"],
    }
    assert spec["query_template"] == {"status": "{status}"} and "body_template" not in spec
    page = owner_client.get(f"/tools/{ToolDefinition.objects.get().public_id}/").content.decode()
    assert 'value="customer_id"' in page and 'value="open or shipped"' in page


def test_body_parameters_become_the_json_body(owner_client):
    rows = _rows(("item", "string", "", True, "body"), ("quantity", "integer", "", True, "body"))
    owner_client.post("/tools/new/", {**_tool(method="POST", url="https://api.example.com/orders"), **rows})
    spec = ToolDefinition.objects.get().spec
    assert spec["body_template"] == {"item": "{item}", "quantity": "{quantity}"}


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([("city name", "string", "", False, "query")], "not a valid name"),
        (
            [("a", "string", "", False, "query"), ("a", "string", "", False, "query")],
            "two parameters called a",
        ),
        ([("q", "string", "", False, "body")], "GET request has no body"),
        ([("", "string", "orphan text", False, "query")], "no name"),
        ([], "add a parameter called customer_id"),
    ],
)
def test_bad_parameter_rows_are_a_422_next_to_the_list_and_keep_what_was_typed(owner_client, rows, message):
    response = owner_client.post("/tools/new/", {**_tool(), **_rows(*rows)}, headers=HX)
    body = response.content.decode()
    assert response.status_code == 422
    assert 'id="id_parameters-error"' in body and message in body
    assert not ToolDefinition.objects.exists()
    for name, *_ in rows:
        if name:
            assert f'value="{name}"' in body


def test_add_a_parameter_grows_the_list_without_saving_or_judging(owner_client):
    response = owner_client.post(
        "/tools/new/",
        {**_tool(name=""), **_rows(("q", "string", "", False, "query")), "add_param": "1"},
        headers=HX,
    )
    body = response.content.decode()
    assert response.status_code == 200 and not ToolDefinition.objects.exists()
    assert 'name="param-2-name"' in body and 'value="q"' in body and "b-error" not in body


def test_the_json_schema_stays_available_as_an_advanced_view(owner_client):
    schema = {"type": "object", "properties": {"unit": {"type": "string", "enum": ["c", "f"]}}}
    data = {
        **_tool(url="https://api.example.com/t"),
        "parameters": json.dumps(schema),
        "parameters_as_json": "on",
        **_rows(("ignored", "string", "", False, "query")),
    }
    assert owner_client.post("/tools/new/", data).status_code == 302
    tool = ToolDefinition.objects.get()
    assert tool.spec["parameters"] == schema and tool.spec["query_template"] == {"unit": "{unit}"}
    assert rows_from_spec(tool.spec) is None  # an enum needs the JSON view, which opens by itself
    page = owner_client.get(f"/tools/{tool.public_id}/").content.decode()
    assert (
        'name="parameters_as_json"' in page and "checked" in page.split('name="parameters_as_json"')[1][:200]
    )


def test_a_curl_command_fills_the_form_without_saving(owner_client):
    command = (
        "curl -X POST 'https://api.example.com/v1/orders?dry_run=1' -H 'Authorization: Bearer sk-live-123' "
        '-H \'Content-Type: application/json\' -d \'{"item": "shoe", "quantity": 2}\''
    )
    response = owner_client.post("/tools/new/curl/", {"curl": command})
    body = response.content.decode()
    assert response.status_code == 200 and not ToolDefinition.objects.exists()
    assert 'value="https://api.example.com/v1/orders"' in body and 'value="POST" selected' in body
    assert 'value="item"' in body and 'value="quantity"' in body and 'value="dry_run"' in body
    assert "{{secret:AUTHORIZATION}}" in body and "AUTHORIZATION=Bearer sk-live-123" in body


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("curl 'https://api.example.com/x", "every quote is closed"),
        ("wget https://api.example.com/x", "must start with curl"),
        ("curl -d 'a=1&b=2' https://api.example.com/x", "not JSON"),
        ("curl -s", "no URL"),
        ("curl example.com/x", "not a full URL"),
        ("curl -u me:pw https://api.example.com/x", "Basic authentication"),
    ],
)
def test_a_bad_curl_command_says_what_to_fix(owner_client, command, message):
    response = owner_client.post("/tools/new/curl/", {"curl": command})
    body = response.content.decode()
    assert response.status_code == 422 and 'id="id_curl-error"' in body and message in body
    assert command.split()[0] in body.split('id="id_curl"')[1]  # what was typed is kept


def test_curl_query_values_give_their_type_a_postcode_stays_text():
    draft = draft_from_curl(
        "curl 'https://api.example.com/search?q=shoes&limit=5&in_stock=true&zip=02134&page=-1'"
    )
    assert [(r["name"], r["type"]) for r in draft["rows"]] == [
        ("q", "string"),
        ("limit", "integer"),
        ("in_stock", "boolean"),
        ("zip", "string"),
        ("page", "integer"),
    ]


def test_curl_query_and_typed_body_fields():
    draft = draft_from_curl(
        'curl --json \'{"n": 1.5, "ok": true, "tags": ["a"]}\' https://api.example.com/score'
    )
    assert draft["method"] == "POST"
    assert [(r["name"], r["type"], r["location"]) for r in draft["rows"]] == [
        ("n", "number", "body"),
        ("ok", "boolean", "body"),
        ("tags", "array", "body"),
    ]


OPENAPI = """
openapi: 3.0.0
info: {title: Pets, version: "1"}
servers: [{url: "https://pets.example.com/v1"}]
paths:
  /pets/{petId}:
    get:
      operationId: getPet
      summary: One pet by its id
      parameters:
        - {name: petId, in: path, required: true, schema: {type: integer}}
        - {name: fields, in: query, schema: {type: string}, description: Which fields}
  /pets:
    post:
      operationId: createPet
      summary: Add a pet
      requestBody:
        content:
          application/json:
            schema: {$ref: "#/components/schemas/NewPet"}
components:
  schemas:
    NewPet:
      type: object
      required: [name]
      properties:
        name: {type: string}
        kind: {type: string, enum: [cat, dog]}
"""


def test_openapi_lists_operations_then_creates_the_chosen_ones(owner_client):
    listed = owner_client.post("/tools/import/openapi/", {"document": OPENAPI})
    body = listed.content.decode()
    assert listed.status_code == 200 and "GET /pets/{petId}" in body and "POST /pets" in body
    assert not ToolDefinition.objects.exists()
    created = owner_client.post(
        "/tools/import/openapi/",
        {"document": OPENAPI, "operations": ["GET /pets/{petId}", "POST /pets"], "server": "", "create": "1"},
    )
    assert created.status_code == 302
    tools = {t.name: t for t in ToolDefinition.objects.all()}
    get_pet, create_pet = tools["getPet"], tools["createPet"]
    assert get_pet.spec["url"] == "https://pets.example.com/v1/pets/{petId}"
    assert get_pet.spec["parameters"]["required"] == ["petId"]
    assert get_pet.spec["query_template"] == {"fields": "{fields}"}
    assert create_pet.spec["body_template"] == {"name": "{name}", "kind": "{kind}"}
    assert create_pet.spec["parameters"]["properties"]["kind"]["enum"] == ["cat", "dog"]


def test_openapi_upload_as_json_file(owner_client):
    import yaml
    from django.core.files.uploadedfile import SimpleUploadedFile

    doc = json.dumps(yaml.safe_load(OPENAPI)).encode()
    response = owner_client.post("/tools/import/openapi/", {"file": SimpleUploadedFile("pets.json", doc)})
    assert response.status_code == 200 and "GET /pets/{petId}" in response.content.decode()


@pytest.mark.parametrize(
    ("data", "where", "message"),
    [
        ({"document": "a: [unclosed"}, 'id="id_document-error"', "neither valid JSON nor YAML"),
        (
            {"document": "!!python/object/apply:os.system ['true']"},
            'id="id_document-error"',
            "neither valid JSON nor YAML",
        ),
        ({"document": '{"hello": 1}'}, 'id="id_document-error"', "not an OpenAPI document"),
        ({"document": OPENAPI, "create": "1"}, 'id="operations-error"', "Tick at least one operation"),
        (
            {
                "document": OPENAPI.replace("https://pets.example.com/v1", "/v1"),
                "operations": "POST /pets",
                "create": "1",
            },
            'id="id_server-error"',
            "base URL",
        ),
    ],
)
def test_bad_openapi_input_is_a_422_that_says_what_to_fix(owner_client, data, where, message):
    response = owner_client.post("/tools/import/openapi/", data)
    body = response.content.decode()
    assert response.status_code == 422 and where in body and message in body
    assert not ToolDefinition.objects.exists()


@pytest.mark.parametrize(
    "url", ["http://localhost:8000/api", "http://127.0.0.1:8000/api", "http://api.localhost/x"]
)
def test_localhost_and_127_0_0_1_are_refused_alike_at_save_naming_the_setting(owner_client, settings, url):
    settings.AGENT_HTTP_ALLOWED_HOSTS = []
    response = owner_client.post("/tools/new/", _tool(url=url, parameters='{"type": "object"}'), headers=HX)
    body = response.content.decode()
    assert response.status_code == 422 and "loopback" in body
    port = url.split("/")[2].rpartition(":")[2] if url.count(":") == 2 else "80"
    assert f":{port} to AGENT_HTTP_ALLOWED_HOSTS" in body
    assert not ToolDefinition.objects.exists()


@pytest.mark.parametrize("url", ["http://localhost:8000/api", "http://127.0.0.1:8000/api"])
def test_an_allowed_local_host_is_allowed_under_either_name_at_save(owner_client, settings, url):
    settings.AGENT_HTTP_ALLOWED_HOSTS = ["127.0.0.0/8"]
    response = owner_client.post("/tools/new/", _tool(url=url, parameters='{"type": "object"}'))
    assert response.status_code == 302


def test_python_tool_parameters_are_listed_in_words_not_code(owner_client):
    body = owner_client.get("/tools/").content.decode()
    assert "calculator" in body and "{&#x27;type&#x27;" not in body and "'properties'" not in body
