"""Tools from an OpenAPI (or Swagger 2) document: list its operations, save the chosen ones.

YAML is read with ``safe_load`` only; local ``$ref``s are inlined; each chosen operation becomes
one HTTP tool (path and query parameters and JSON body fields as its parameters), all or none.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import yaml
from django.db import transaction

from builder.schema import ConfigError
from builder.services.tool_import import HTTP_METHODS, tool_name
from builder.services.tools import build_spec, tool_save

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from builder.models import ToolDefinition

MAX_DOCUMENT = 2_000_000


def load_openapi(text: str) -> dict[str, Any]:
    if len(text) > MAX_DOCUMENT:
        raise ConfigError({"document": "The document is larger than 2 MB; paste only the paths you need."})
    if not text.strip():
        raise ConfigError({"document": "Paste an OpenAPI document (JSON or YAML) or choose its file."})
    try:
        doc = yaml.safe_load(text)  # JSON is YAML too
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError({"document": f"This is neither valid JSON nor YAML{where}."}) from None
    if not isinstance(doc, dict) or not ("openapi" in doc or "swagger" in doc):
        raise ConfigError(
            {"document": 'This is not an OpenAPI document: it needs an "openapi" (or "swagger") field.'}
        )
    if not isinstance(doc.get("paths"), dict) or not doc["paths"]:
        raise ConfigError({"document": "The document has no paths, so there is nothing to import."})
    return doc


def _resolve(doc: dict[str, Any], node: Any, depth: int = 0) -> Any:
    """Inline local ``$ref``s (``#/components/...``), at most 8 in a chain, so a cycle ends."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            if not ref.startswith("#/") or depth >= 8:
                return {}
            target: Any = doc
            for part in ref[2:].split("/"):
                target = (
                    target.get(part.replace("~1", "/").replace("~0", "~"), {})
                    if isinstance(target, dict)
                    else {}
                )
            return _resolve(doc, target, depth + 1)
        return {k: _resolve(doc, v, depth) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(doc, v, depth) for v in node]
    return node


def base_url(doc: dict[str, Any]) -> str:
    servers = doc.get("servers") or []
    if servers and isinstance(servers[0], dict):
        return str(servers[0].get("url", "")).rstrip("/")
    if doc.get("host"):  # Swagger 2
        scheme = (doc.get("schemes") or ["https"])[0]
        return f"{scheme}://{doc['host']}{doc.get('basePath', '')}".rstrip("/")
    return ""


def openapi_operations(doc: dict[str, Any]) -> list[dict[str, str]]:
    """Each operation: ``id`` (METHOD path), method, path, summary."""
    operations = []
    for path, item in doc["paths"].items():
        if not isinstance(item, dict):
            continue
        for method in HTTP_METHODS:
            op = item.get(method)
            if isinstance(op, dict):
                summary = op.get("summary") or op.get("description") or op.get("operationId") or ""
                operations.append(
                    {
                        "id": f"{method.upper()} {path}",
                        "method": method.upper(),
                        "path": path,
                        "summary": str(summary)[:200],
                    }
                )
    return operations


def _clean_schema(schema: Any) -> dict[str, Any]:
    if not isinstance(schema, dict):
        return {"type": "string"}
    keep = {
        "type",
        "description",
        "enum",
        "items",
        "properties",
        "required",
        "format",
        "minimum",
        "maximum",
        "default",
    }
    cleaned = {k: v for k, v in schema.items() if k in keep}
    if cleaned.get("type") == "array" and "items" in cleaned:
        cleaned["items"] = _clean_schema(cleaned["items"])
    if isinstance(cleaned.get("properties"), dict):
        cleaned["properties"] = {k: _clean_schema(v) for k, v in cleaned["properties"].items()}
    return cleaned or {"type": "string"}


def _operation_tool(doc: dict[str, Any], op_id: str, server: str) -> dict[str, Any]:
    method, path = op_id.split(" ", 1)
    item = _resolve(doc, doc["paths"][path])
    op = item[method.lower()]
    properties: dict[str, Any] = {}
    required: list[str] = []
    query: dict[str, str] = {}
    headers: dict[str, str] = {}
    for param in [*(item.get("parameters") or []), *(op.get("parameters") or [])]:
        if not isinstance(param, dict) or param.get("in") not in ("path", "query") or not param.get("name"):
            continue
        name = re.sub(r"[^A-Za-z0-9_]", "_", param["name"])
        schema = _clean_schema(param.get("schema") or {"type": param.get("type", "string")})
        if param.get("description"):
            schema["description"] = str(param["description"])
        properties[name] = schema
        if param.get("required") or param["in"] == "path":
            required.append(name)
        if param["in"] == "query":
            query[param["name"]] = "{" + name + "}"
    body = None
    content = (op.get("requestBody") or {}).get("content") or {}
    body_schema = (content.get("application/json") or {}).get("schema")
    if isinstance(body_schema, dict) and isinstance(body_schema.get("properties"), dict) and method != "GET":
        body = {}
        for name, schema in body_schema["properties"].items():
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name) or name in properties:
                continue
            properties[name] = _clean_schema(schema)
            body[name] = "{" + name + "}"
        required += [n for n in body_schema.get("required") or [] if n in body]
    name = re.sub(r"[^A-Za-z0-9_]", "_", op.get("operationId") or "") or tool_name(method, path)
    if not re.match(r"^[A-Za-z]", name):
        name = "op_" + name
    description = op.get("summary") or op.get("description") or f"{method} {path}"
    parameters = {"type": "object", "properties": properties}
    if required:
        parameters["required"] = sorted(set(required), key=required.index)
    return {
        "name": name[:64],
        "description": str(description).strip()[:1000],
        "method": method,
        "url": server + path,
        "headers": headers,
        "parameters": parameters,
        "query_template": query,
        "body_template": body,
    }


@transaction.atomic
def tool_import_openapi(
    *, owner: AbstractBaseUser, text: str, operation_ids: list[str], server: str = ""
) -> list[ToolDefinition]:
    """One tool per chosen operation, all or none; ConfigError says which operation failed and why."""
    doc = load_openapi(text)
    known = {op["id"] for op in openapi_operations(doc)}
    chosen = [op for op in operation_ids if op in known]
    if not chosen:
        raise ConfigError({"operations": "Tick at least one operation to import."})
    server = (server or base_url(doc)).strip().rstrip("/")
    if not re.match(r"^https?://[^/]", server):
        raise ConfigError(
            {
                "server": "The document names no full server URL; enter the API's base URL, e.g. https://api.example.com/v1."
            }
        )
    tools = []
    for op_id in chosen:
        draft = _operation_tool(doc, op_id, server)
        try:
            spec = build_spec(
                name=draft["name"],
                description=draft["description"],
                method=draft["method"],
                url=draft["url"],
                headers="",
                parameters=json.dumps(draft["parameters"]),
                locations={
                    "query_template": draft["query_template"],
                    "body_template": draft["body_template"],
                },
            )
            tools.append(
                tool_save(
                    owner=owner, name=draft["name"], description=draft["description"], spec=spec, secrets=None
                )
            )
        except ConfigError as exc:
            reasons = "; ".join(exc.errors.values())
            raise ConfigError({"operations": f"{op_id} cannot become a tool: {reasons}"}) from None
    return tools
