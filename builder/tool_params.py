"""An HTTP tool's parameters as a list people fill in, and the JSON Schema it stands for.

Each row is a parameter: its name, type, description, whether it is required and where the
call sends it (a ``{name}`` in the URL path, the query string, or a field of the JSON body).
The rows produce the tool's JSON Schema, ``query_template`` and ``body_template``; a schema
the list cannot show (nested objects, enums, formats) is edited as JSON instead.
"""

from __future__ import annotations

import re
from typing import Any

from builder.schema import ConfigError

TYPES = {
    "string": "Text",
    "number": "Number",
    "integer": "Whole number",
    "boolean": "Yes / no",
    "array": "List of text",
}
LOCATIONS = {"path": "URL path {name}", "query": "Query string", "body": "JSON body"}
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PLACEHOLDER_RE = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)\}(?!\})")
EMPTY_ROWS = 2
MAX_ROWS = 100


def empty_row(location: str = "query") -> dict[str, Any]:
    return {"name": "", "type": "string", "description": "", "required": False, "location": location}


def default_location(method: str) -> str:
    return "query" if method in ("GET", "DELETE") else "body"


def path_names(url: str) -> list[str]:
    path = url.split("?", 1)[0]
    return PLACEHOLDER_RE.findall(path)


def rows_from_post(data: Any) -> list[dict[str, Any]]:
    """The rows a submitted form holds: ``param-<i>-name`` and its siblings."""
    try:
        count = min(int(data.get("param_rows", 0)), MAX_ROWS)
    except (TypeError, ValueError):
        count = 0
    rows = []
    for index in range(count):
        prefix = f"param-{index}-"
        rows.append(
            {
                "name": (data.get(prefix + "name") or "").strip(),
                "type": data.get(prefix + "type") or "string",
                "description": (data.get(prefix + "description") or "").strip(),
                "required": bool(data.get(prefix + "required")),
                "location": data.get(prefix + "location") or "query",
            }
        )
    return rows


def spec_from_rows(rows: list[dict[str, Any]], *, method: str, url: str) -> dict[str, Any]:
    """``parameters``, ``query_template`` and ``body_template`` from the rows; ConfigError names the row."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    query: dict[str, str] = {}
    body: dict[str, str] = {}
    in_path = set(path_names(url))
    problems: list[str] = []
    for number, row in enumerate(rows, start=1):
        name = row["name"]
        if not name:
            if row["description"]:
                problems.append(f"Row {number} has a description but no name; name it or clear it.")
            continue
        if not NAME_RE.match(name):
            problems.append(f"Row {number}: {name!r} is not a valid name; use letters, digits and _.")
            continue
        if name in properties:
            problems.append(f"Row {number}: there are two parameters called {name}; rename one.")
            continue
        if row["type"] not in TYPES:
            problems.append(f"Row {number}: choose a type for {name}.")
            continue
        location = row["location"] if row["location"] in LOCATIONS else "query"
        if name in in_path:
            location = "path"
        elif location == "path":
            problems.append(f"Row {number}: {name} is sent in the URL path, so put {{{name}}} in the URL.")
            continue
        if location == "body" and method == "GET":
            problems.append(f"Row {number}: a GET request has no body; send {name} in the query string.")
            continue
        schema: dict[str, Any] = {"type": row["type"]}
        if row["type"] == "array":
            schema["items"] = {"type": "string"}
        if row["description"]:
            schema["description"] = row["description"]
        properties[name] = schema
        if row["required"] or location == "path":
            required.append(name)
        if location == "query":
            query[name] = "{" + name + "}"
        elif location == "body":
            body[name] = "{" + name + "}"
    missing = [name for name in path_names(url) if name not in properties]
    if missing and not problems:
        problems.append(
            f"The URL uses {{{missing[0]}}}; add a parameter called {missing[0]} (sent in the URL path)."
        )
    if problems:
        raise ConfigError({"parameters": " ".join(problems)})
    parameters: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        parameters["required"] = required
    return {"parameters": parameters, "query_template": query, "body_template": body or None}


def locations_for_schema(schema: dict[str, Any], *, method: str, url: str) -> dict[str, Any]:
    """For a schema edited as JSON: path placeholders stay in the path, the rest go to the
    query string (GET, DELETE) or the JSON body."""
    in_path = set(path_names(url))
    rest = [name for name in (schema.get("properties") or {}) if name not in in_path]
    if default_location(method) == "query":
        return {"query_template": {n: "{" + n + "}" for n in rest}, "body_template": None}
    return {"query_template": {}, "body_template": {n: "{" + n + "}" for n in rest} or None}


def rows_from_spec(spec: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The list view of a stored spec, or None when its schema needs the JSON view."""
    schema = spec.get("parameters") or {"type": "object", "properties": {}}
    properties = schema.get("properties") or {}
    if set(schema) - {"type", "properties", "required", "additionalProperties"}:
        return None
    required = set(schema.get("required") or [])
    in_path = set(path_names(spec.get("url", "")))
    query = spec.get("query_template") or {}
    body = spec.get("body_template") if isinstance(spec.get("body_template"), dict) else {}
    rows = []
    for name, prop in properties.items():
        if not isinstance(prop, dict) or set(prop) - {"type", "description", "items"}:
            return None
        kind = prop.get("type", "string")
        if kind not in TYPES or (kind == "array" and prop.get("items") not in (None, {"type": "string"})):
            return None
        if name in in_path:
            location = "path"
        elif name in body:
            location = "body"
        elif name in query:
            location = "query"
        else:
            location = default_location(spec.get("method", "GET"))
        rows.append(
            {
                "name": name,
                "type": kind,
                "description": prop.get("description", ""),
                "required": name in required,
                "location": location,
            }
        )
    return rows
