"""Start an HTTP tool from what people already have: a cURL command or an OpenAPI document.

:func:`draft_from_curl` reads a command the way a shell would (``shlex``) and returns a draft
for the tool form, nothing saved: method, URL, headers, parameters from the query string and
the JSON body. Credentials in headers become secrets. :func:`openapi_operations` lists a
document's operations; :func:`tool_import_openapi` saves one tool per chosen operation, all or
nothing. YAML is read with ``safe_load`` only.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import yaml
from django.db import transaction

from builder.schema import ConfigError
from builder.services.tools import build_spec, tool_save

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from builder.models import ToolDefinition

MAX_DOCUMENT = 2_000_000
SECRET_HEADERS = {
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "apikey",
    "cookie",
    "x-auth-token",
}
DROPPED_HEADERS = {"content-type", "content-length", "host", "accept-encoding", "user-agent", "connection"}
HTTP_METHODS = ("get", "post", "put", "patch", "delete")
_VALUE_OPTIONS = {
    "-X": "method", "--request": "method",
    "-H": "header", "--header": "header",
    "-d": "data", "--data": "data", "--data-raw": "data", "--data-binary": "data",
    "--data-ascii": "data", "--json": "json",
    "--url": "url",
    "-u": "user", "--user": "user",
    "-A": "agent", "--user-agent": "agent",
    "-b": "cookie", "--cookie": "cookie",
    "-e": "ignored", "--referer": "ignored", "-o": "ignored", "--output": "ignored",
    "-m": "ignored", "--max-time": "ignored", "--connect-timeout": "ignored", "-w": "ignored",
    "--write-out": "ignored", "--retry": "ignored", "-x": "ignored", "--proxy": "ignored",
}  # fmt: skip
_FLAG_OPTIONS = {"-G": "get", "--get": "get", "-I": "head", "--head": "head"}


def _tool_name(method: str, path: str) -> str:
    words = [w for w in re.split(r"[^A-Za-z0-9]+", path) if w and not w.isdigit()]
    words = [w for w in words if w.lower() not in {"api", "v1", "v2", "v3"}][-2:]
    name = "_".join([method.lower(), *words]).lower()[:64]
    return name if re.match(r"^[a-z][a-z0-9_]*$", name) else "http_tool"


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, list):
        return "array"
    return "string"


def _secret_name(header: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", header.upper()).strip("_") or "SECRET"


def draft_from_curl(command: str) -> dict[str, Any]:
    """A tool-form draft from a cURL command; ConfigError on ``curl`` says what to fix."""
    text = re.sub(r"\\\r?\n", " ", command.strip())
    if not text:
        raise ConfigError(
            {"curl": "Paste a cURL command, e.g. curl https://api.example.com/v1/items?q=shoes"}
        )
    try:
        tokens = shlex.split(text)
    except ValueError as exc:
        raise ConfigError(
            {"curl": f"The command cannot be read ({exc}); check that every quote is closed."}
        ) from None
    if not tokens or tokens[0] != "curl":
        raise ConfigError(
            {"curl": "The command must start with curl, e.g. curl https://api.example.com/v1/items"}
        )
    method, urls, headers, data, force_get = "", [], [], [], False
    index = 1
    while index < len(tokens):
        token = tokens[index]
        option, attached = token, None
        if token.startswith("--") and "=" in token:
            option, attached = token.split("=", 1)
        elif (
            token.startswith("-")
            and not token.startswith("--")
            and len(token) > 2
            and token[:2] in _VALUE_OPTIONS
        ):
            option, attached = token[:2], token[2:]
        if option in _VALUE_OPTIONS:
            if attached is None:
                index += 1
                if index >= len(tokens):
                    raise ConfigError({"curl": f"The option {option} needs a value after it."})
                attached = tokens[index]
            kind = _VALUE_OPTIONS[option]
            if kind == "method":
                method = attached.upper()
            elif kind == "header":
                headers.append(attached)
            elif kind in ("data", "json"):
                data.append(attached)
                if kind == "json":
                    headers.append("Content-Type: application/json")
            elif kind == "url":
                urls.append(attached)
            elif kind == "user":
                raise ConfigError(
                    {
                        "curl": "Basic authentication (-u) is not supported; use an Authorization header or an API key."
                    }
                )
            elif kind == "cookie":
                headers.append(f"Cookie: {attached}")
        elif option in _FLAG_OPTIONS:
            if _FLAG_OPTIONS[option] == "head":
                raise ConfigError(
                    {"curl": "A HEAD request (-I) returns no body for the model to read; use GET."}
                )
            force_get = True
        elif token.startswith("-"):
            pass  # flags that change nothing for a tool: -s, -L, -i, -v, --compressed, -k ...
        else:
            urls.append(token)
        index += 1
    if len(urls) != 1:
        raise ConfigError(
            {
                "curl": "Give exactly one URL."
                if urls
                else "The command has no URL; add one, e.g. https://api.example.com/items"
            }
        )
    parts = urlsplit(urls[0])
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            {"curl": f"{urls[0]!r} is not a full URL; it must start with https:// (or http://)."}
        )
    method = method or ("GET" if force_get or not data else "POST")
    if method not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        raise ConfigError(
            {"curl": f"The method {method} is not supported; use GET, POST, PUT, PATCH or DELETE."}
        )

    rows: list[dict[str, Any]] = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
            raise ConfigError(
                {"curl": f"The query parameter {name!r} cannot be a tool parameter; rename it."}
            )
        rows.append(
            {
                "name": name,
                "type": "string",
                "description": f"e.g. {value}" if value else "",
                "required": False,
                "location": "query",
            }
        )
    if data:
        body_text = "&".join(data)
        try:
            body = json.loads(body_text)
        except ValueError:
            raise ConfigError(
                {
                    "curl": "The request body (-d) is not JSON. Only JSON bodies can become parameters; "
                    "send form data as query parameters instead."
                }
            ) from None
        if not isinstance(body, dict):
            raise ConfigError({"curl": 'The JSON body must be an object like {"city": "Oslo"}.'})
        location = "body" if method != "GET" else "query"
        for name, value in body.items():
            rows.append(
                {
                    "name": name,
                    "type": _json_type(value),
                    "description": f"e.g. {json.dumps(value)}" if not isinstance(value, list) else "",
                    "required": True,
                    "location": location,
                }
            )
    header_map: dict[str, str] = {}
    secrets: list[str] = []
    for line in headers:
        name, sep, value = line.partition(":")
        name, value = name.strip(), value.strip()
        if not sep or not name:
            raise ConfigError({"curl": f"The header {line!r} must be written Name: value."})
        if name.lower() in DROPPED_HEADERS:
            continue
        if name.lower() in SECRET_HEADERS:
            secret = _secret_name(name)
            header_map[name] = "{{secret:" + secret + "}}"
            secrets.append(f"{secret}={value}")
        else:
            header_map[name] = value
    url = urlunsplit((parts.scheme, parts.netloc, parts.path or "/", "", ""))
    return {
        "name": _tool_name(method, parts.path),
        "description": "",
        "method": method,
        "url": url,
        "headers": json.dumps(header_map, indent=2) if header_map else "",
        "secrets": "\n".join(secrets),
        "rows": rows,
    }


# --- OpenAPI ------------------------------------------------------------------------------------


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
    name = re.sub(r"[^A-Za-z0-9_]", "_", op.get("operationId") or "") or _tool_name(method, path)
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
