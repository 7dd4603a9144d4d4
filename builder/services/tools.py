"""HTTP tool definitions: validate, save (secrets encrypted, write-only), delete, try."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import jsonschema
from django.db import IntegrityError, transaction

from builder.models import AuditAction, ToolDefinition, ToolKind
from builder.schema import TOOL_NAME_RE, ConfigError
from builder.selectors import tool_dependants
from builder.services.sharing import audit_record
from builder.tool_params import locations_for_schema, spec_from_rows
from runtime import jsonsafe
from runtime.tools import ToolError
from runtime.tools.http import HttpToolSpec, HttpToolSpecError, build_http_tool, validate_http_spec

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
BODY_PREVIEW = 2000


def parse_secrets(text: str) -> dict[str, str]:
    secrets: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise ConfigError({"secrets": f"Line {number}: write NAME=value."})
        secrets[name.strip()] = value.strip()
    return secrets


def build_spec(
    *,
    name: str,
    description: str,
    method: str,
    url: str,
    headers: str,
    parameters: str = "",
    rows: list[dict[str, Any]] | None = None,
    locations: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The stored spec from the form's fields; each problem names its field.

    The parameters come from ``rows`` (the list editor, see builder/tool_params.py) or, when
    it is None, from ``parameters``, a JSON Schema. ``locations`` (query_template and
    body_template) says where each argument goes; by default path placeholders stay in the
    path and the rest go to the query string (GET, DELETE) or the JSON body.
    """
    errors: dict[str, str] = {}
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        errors["url"] = "The URL must start with http:// or https:// and name a host."
    if method not in METHODS:
        errors["method"] = f"Pick one of {', '.join(METHODS)}."
    header_map: Any = {}
    if headers.strip():
        try:
            header_map = jsonsafe.loads(headers)
        except json.JSONDecodeError as exc:
            errors["headers"] = (
                f"Headers are not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})."
            )
        except jsonsafe.UnsafeJSON as exc:
            errors["headers"] = str(exc)
        else:
            if not isinstance(header_map, dict) or not all(isinstance(v, str) for v in header_map.values()):
                errors["headers"] = (
                    'Headers must be a JSON object of strings, e.g. {"Accept": "application/json"}.'
                )
    schema: Any = {"type": "object", "properties": {}}
    if rows is not None:
        if "url" not in errors:
            try:
                from_rows = spec_from_rows(rows, method=method, url=url.strip())
            except ConfigError as exc:
                errors.update(exc.errors)
            else:
                schema = from_rows.pop("parameters")
                locations = locations or from_rows
    elif parameters.strip():
        try:
            schema = jsonsafe.loads(parameters)
        except json.JSONDecodeError as exc:
            errors["parameters"] = (
                f"This is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})."
            )
        except jsonsafe.UnsafeJSON as exc:
            errors["parameters"] = str(exc)
        else:
            try:
                jsonschema.Draft202012Validator.check_schema(schema)
            except jsonschema.SchemaError as exc:
                errors["parameters"] = f"This is not a valid JSON Schema: {exc.message}."
            else:
                if not isinstance(schema, dict) or schema.get("type") != "object":
                    errors["parameters"] = (
                        'The parameters schema must be an object schema: {"type": "object", ...}.'
                    )
    if errors:
        raise ConfigError(errors)
    spec = {"method": method, "url": url.strip(), "headers": header_map, "parameters": schema}
    spec.update(locations or locations_for_schema(schema, method=method, url=url.strip()))
    if not spec.get("body_template"):
        spec.pop("body_template", None)
    _runtime_check({**spec, "name": name, "description": description})
    return spec


# The runtime's HTTP tool kind names fields its own way; map them to the form's.
_RUNTIME_FIELD = {
    "url_template": "url",
    "query_template": "url",
    "body_template": "parameters",
    "timeout_s": "url",
}


def _runtime_check(data: dict[str, Any]) -> None:
    """The runtime's HTTP tool kind has the last word (placeholders, hosts, reserved headers)."""
    errors: dict[str, str] = {}
    for where, message in validate_http_spec(data):
        field = _RUNTIME_FIELD.get(where, where.split(".")[0])
        if field == "name" and not TOOL_NAME_RE.match(data["name"] or ""):
            continue  # tool_save says it in the builder's words
        if field == "description" and not data["description"].strip():
            continue
        errors.setdefault(
            field if field in ("url", "method", "headers", "parameters", "name") else "url", message
        )
    if errors:
        raise ConfigError(errors)


@transaction.atomic
def tool_save(
    *,
    owner: AbstractBaseUser,
    name: str,
    description: str,
    spec: dict[str, Any],
    secrets: dict[str, str] | None,
    tool: ToolDefinition | None = None,
) -> ToolDefinition:
    """Create or update; ``secrets=None`` keeps the stored secrets (they are never shown back)."""
    errors: dict[str, str] = {}
    if not TOOL_NAME_RE.match(name or ""):
        errors["name"] = "Use letters, digits and underscores, starting with a letter (e.g. get_weather)."
    if not description.strip():
        errors["description"] = "Describe what the tool does so the model knows when to call it."
    clash = ToolDefinition.objects.filter(owner=owner, name=name).exclude(pk=tool.pk if tool else None)
    if not errors and clash.exists():
        errors["name"] = f"You already have a tool called {name}; choose another name."
    if errors:
        raise ConfigError(errors)
    tool = tool or ToolDefinition(owner=owner, kind=ToolKind.HTTP)
    tool.name, tool.description, tool.spec = name, description.strip(), spec
    if secrets is not None:
        tool.secrets = secrets
    try:
        with transaction.atomic():
            tool.save()
    except IntegrityError:
        raise ConfigError({"name": f"You already have a tool called {name}; choose another name."}) from None
    return tool


@transaction.atomic
def tool_delete(*, tool: ToolDefinition, user: AbstractBaseUser | None = None) -> None:
    """Refused while an agent uses the tool (its runs would lose it without a word)."""
    dependants = tool_dependants(tool=tool)
    if dependants:
        raise ConfigError(
            {
                "tool": f"{tool.name} is used by {', '.join(dependants)}; remove it there first, then delete it."
            }
        )
    audit_record(actor=user, action=AuditAction.DELETED, obj=tool)
    tool.delete()


def runtime_tool(tool: ToolDefinition) -> Any:
    """The runtime ``Tool`` for a stored HTTP tool."""
    spec = HttpToolSpec.from_dict({**tool.spec, "name": tool.name, "description": tool.description})
    return build_http_tool(spec, tool.secrets or {})


def tool_try(*, tool: ToolDefinition, arguments_text: str) -> dict[str, Any]:
    """Call the tool once through the SSRF-safe client; returns what the page shows."""
    try:
        arguments = jsonsafe.loads(arguments_text) if arguments_text.strip() else {}
    except json.JSONDecodeError as exc:
        raise ConfigError({"arguments": f"Arguments are not valid JSON: {exc.msg}."}) from None
    except jsonsafe.UnsafeJSON as exc:
        raise ConfigError({"arguments": str(exc)}) from None
    if not isinstance(arguments, dict):
        raise ConfigError({"arguments": 'Arguments must be a JSON object, e.g. {"city": "Oslo"}.'})
    try:
        jsonschema.validate(arguments, tool.spec.get("parameters") or {})
    except jsonschema.ValidationError as exc:
        raise ConfigError(
            {"arguments": f"Arguments do not match the parameters schema: {exc.message}."}
        ) from None

    try:
        result = asyncio.run(runtime_tool(tool).call(arguments))
    except (ToolError, HttpToolSpecError) as exc:
        return {"ok": False, "error": str(exc)}
    return summarise_result(result)


def summarise_result(result: Any) -> dict[str, Any]:
    if isinstance(result, dict) and "error" in result and "status" not in result:
        return {"ok": False, "error": str(result["error"])}
    if isinstance(result, dict):
        body = result.get("body", result.get("content", ""))
        body_text = body if isinstance(body, str) else json.dumps(body, indent=2, ensure_ascii=False)
        return {
            "ok": True,
            "status": result.get("status") or result.get("status_code"),
            "headers": dict(result.get("headers") or {}),
            "body": body_text[:BODY_PREVIEW],
            "truncated": len(body_text) > BODY_PREVIEW,
        }
    text = result if isinstance(result, str) else json.dumps(result, ensure_ascii=False)
    return {
        "ok": True,
        "status": None,
        "headers": {},
        "body": text[:BODY_PREVIEW],
        "truncated": len(text) > BODY_PREVIEW,
    }
