"""HTTP tools defined as data: a URL template the model fills in, called through runtime.net.

The host of an HTTP tool is fixed when it is saved: placeholders (``{name}``)
may appear only in the URL path, header values, query values and the body,
and every placeholder must be a parameter of the tool's JSON Schema. So a
model can choose *what* to ask the API, never *which* server to ask. Secret
header and query values are never part of the spec: they are passed to
:func:`build_http_tool` (decrypted from an ``EncryptedJSONField``), sent only
to the tool's own host, disable redirects, and are redacted from the result.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any
from urllib.parse import quote, urlencode

import jsonschema

from runtime import net
from runtime.tools.base import Tool, ToolError, idempotency_key

logger = logging.getLogger(__name__)

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# ``{{secret:NAME}}`` (headers and query values only), ``{{``/``}}`` for literal braces, ``{arg}``.
_TOKEN = re.compile(r"\{\{secret:([A-Za-z_][A-Za-z0-9_.-]*)\}\}|\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ONLY_PLACEHOLDER = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
_TOOL_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_RESERVED_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "upgrade", "te"}
# Response headers a model may usefully read; cookies and the rest stay out of the transcript.
_RESULT_HEADERS = {
    "content-type",
    "content-length",
    "content-language",
    "date",
    "etag",
    "last-modified",
    "location",
    "retry-after",
    "link",
    "x-request-id",
}
MAX_TIMEOUT_S = 60.0
MAX_RESPONSE_BYTES = 5_000_000


@dataclass
class HttpToolSpec:
    name: str
    description: str
    url_template: str
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    query_template: dict[str, str] = field(default_factory=dict)
    body_template: Any = None
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    timeout_s: float = 10.0
    max_response_bytes: int = 100_000
    # Names only; the values live encrypted elsewhere and reach build_http_tool as ``secrets``.
    secret_headers: list[str] = field(default_factory=list)
    secret_query_params: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HttpToolSpec:
        known = {f.name for f in fields(cls)}
        data = _normalise(data)
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _normalise(data: Mapping[str, Any]) -> dict[str, Any]:
    """Accept ``url`` as another name for ``url_template`` (the builder's form calls it that)."""
    data = dict(data)
    if "url_template" not in data and "url" in data:
        data["url_template"] = data.pop("url")
    return data


class HttpToolSpecError(ValueError):
    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{f}: {m}" for f, m in errors))
        self.errors = errors


# --- templates ------------------------------------------------------------------------------------


def placeholders(template: str) -> list[str]:
    return [m.group(2) for m in _TOKEN.finditer(template) if m.group(2)]


def secret_references(template: str) -> list[str]:
    return [m.group(1) for m in _TOKEN.finditer(template) if m.group(1)]


def _stray_braces(template: str) -> bool:
    return "{" in _TOKEN.sub("", template) or "}" in _TOKEN.sub("", template)


def _render(
    template: str, arguments: Mapping[str, Any], encode: Any = str, secrets: Mapping[str, str] | None = None
) -> str:
    # One pass: text an argument brings in is never scanned again, so it cannot name a secret.
    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        if match.group(1):
            if secrets is None or match.group(1) not in secrets:
                raise ToolError(f"The secret {match.group(1)!r} is not available here.")
            return secrets[match.group(1)]
        name = match.group(2)
        if name not in arguments:
            raise ToolError(f"The argument {name!r} is required.")
        return encode(_as_text(name, arguments[name]))

    return _TOKEN.sub(replace, template)


def _as_text(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    if value is None:
        return ""
    raise ToolError(f"The argument {name!r} must be a string or a number here.")


def _path_segment(value: str) -> str:
    if value in {".", ".."}:
        raise ToolError("A path argument may not be '.' or '..'.")
    return quote(value, safe="")


def _render_body(template: Any, arguments: Mapping[str, Any]) -> Any:
    if isinstance(template, str):
        only = _ONLY_PLACEHOLDER.match(template)
        if only:
            return arguments.get(only.group(1))
        return _render(template, arguments)
    if isinstance(template, dict):
        rendered = {}
        for key, value in template.items():
            only = _ONLY_PLACEHOLDER.match(value) if isinstance(value, str) else None
            if only and only.group(1) not in arguments:
                continue  # an optional argument the model left out
            rendered[key] = _render_body(value, arguments)
        return rendered
    if isinstance(template, list):
        return [_render_body(item, arguments) for item in template]
    return template


def _omitted(template: str, arguments: Mapping[str, Any]) -> bool:
    """A header or query value that is just ``{arg}`` is left out when the model omits ``arg``."""
    only = _ONLY_PLACEHOLDER.match(template)
    return bool(only) and only.group(1) not in arguments


def _body_placeholders(template: Any) -> list[str]:
    if isinstance(template, str):
        return placeholders(template)
    if isinstance(template, dict):
        return [p for value in template.values() for p in _body_placeholders(value)]
    if isinstance(template, list):
        return [p for item in template for p in _body_placeholders(item)]
    return []


# --- validation -----------------------------------------------------------------------------------


def _split_url_template(template: str) -> tuple[str, str, str]:
    """(scheme://authority, path, rest-after-? or #) of a URL template, without parsing placeholders."""
    scheme, sep, rest = template.partition("://")
    if not sep:
        return template, "", ""
    cut = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    authority, tail = rest[:cut], rest[cut:]
    qcut = min((i for i in (tail.find("?"), tail.find("#")) if i >= 0), default=len(tail))
    return f"{scheme}://{authority}", tail[:qcut], tail[qcut:]


def validate_http_spec(data: Mapping[str, Any] | HttpToolSpec) -> list[tuple[str, str]]:
    """Every problem with an HTTP tool definition, as (field, message) pairs for a form."""
    data = data.to_dict() if isinstance(data, HttpToolSpec) else _normalise(data)
    errors: list[tuple[str, str]] = []
    name = data.get("name")
    if not isinstance(name, str) or not _TOOL_NAME.match(name):
        errors.append(("name", "Start with a letter; use letters, digits, _ or - (at most 64 characters)."))
    if not isinstance(data.get("description"), str) or not data["description"].strip():
        errors.append(("description", "Describe what the tool does, so the model knows when to use it."))
    method = data.get("method", "GET")
    if method not in METHODS:
        errors.append(("method", f"Choose one of {', '.join(METHODS)}."))

    parameters = data.get("parameters", {"type": "object", "properties": {}})
    properties: dict[str, Any] = {}
    if not isinstance(parameters, dict) or parameters.get("type") != "object":
        errors.append(("parameters", 'The parameters must be a JSON Schema object: {"type": "object", ...}.'))
    else:
        try:
            jsonschema.validators.validator_for(parameters).check_schema(parameters)
            properties = parameters.get("properties") or {}
        except jsonschema.SchemaError as exc:
            errors.append(("parameters", f"Not a valid JSON Schema: {exc.message}."))
    required = set(parameters.get("required") or []) if isinstance(parameters, dict) else set()

    def check_names(where: str, names: list[str]) -> None:
        for pname in names:
            if pname not in properties:
                errors.append(
                    (where, f"The placeholder {{{pname}}} is not a parameter; add it to the parameters.")
                )

    url = data.get("url_template")
    if not isinstance(url, str) or not url.strip():
        errors.append(("url_template", "Enter the URL, e.g. https://api.example.com/v1/items/{item_id}."))
    else:
        origin, path, rest = _split_url_template(url)
        if "{" in origin or "}" in origin:
            errors.append(
                ("url_template", "Placeholders are not allowed in the scheme or host; the host is fixed.")
            )
        elif "{" in rest or "}" in rest:
            errors.append(("url_template", "Put arguments for the query string in the query parameters."))
        elif _stray_braces(path):
            errors.append(("url_template", "Braces must form placeholders like {name}."))
        elif secret_references(path):
            errors.append(("url_template", "Secrets may only be used in headers or query parameters."))
        else:
            try:
                target = net.parse_url(_TOKEN.sub("x", url))
                known = net.known_address(target)
                if known is not None:
                    net.vet_address(target, known)
            except net.NetError as exc:
                errors.append(("url_template", str(exc)))
            for pname in placeholders(path):
                if pname not in properties:
                    errors.append(("url_template", f"The placeholder {{{pname}}} is not a parameter."))
                elif pname not in required:
                    errors.append(
                        ("url_template", f"The path placeholder {{{pname}}} must be a required parameter.")
                    )

    secret_headers = data.get("secret_headers") or []
    secret_query = data.get("secret_query_params") or []
    headers = data.get("headers") or {}
    if not isinstance(headers, dict):
        errors.append(("headers", "Headers must be a mapping of name to value."))
        headers = {}
    for hname, value in headers.items():
        where = f"headers.{hname}"
        if not _HEADER_NAME.match(str(hname)):
            errors.append((where, "Not a valid header name; use letters, digits and -."))
        elif str(hname).lower() in _RESERVED_HEADERS:
            errors.append(
                (where, f"{hname} cannot be set by a tool; the client sets it from the URL and body.")
            )
        elif not isinstance(value, str) or any(c in value for c in "\r\n\0"):
            errors.append((where, "The value must be one line of text."))
        elif _stray_braces(value):
            errors.append((where, "Braces must form placeholders like {name}; write {{ or }} for a brace."))
        else:
            check_names(where, placeholders(value))
    query = data.get("query_template") or {}
    if not isinstance(query, dict):
        errors.append(("query_template", "Query parameters must be a mapping of name to value."))
        query = {}
    for qname, value in query.items():
        where = f"query_template.{qname}"
        if not isinstance(value, str) or _stray_braces(value):
            errors.append((where, "The value must be text; braces must form placeholders like {name}."))
        else:
            check_names(where, placeholders(value))

    body = data.get("body_template")
    if body is not None:
        if method not in _BODY_METHODS:
            errors.append(("body_template", f"A {method} request has no body; use query parameters."))
        elif not isinstance(body, str | dict | list):
            errors.append(("body_template", "The body must be text or a JSON object/array."))
        else:
            try:
                json.dumps(body)
            except (TypeError, ValueError):
                errors.append(("body_template", "The body must be JSON-serialisable."))
            check_names("body_template", _body_placeholders(body))
            if "{{secret:" in json.dumps(body):
                errors.append(("body_template", "Secrets may only be used in headers or query parameters."))

    for where, names in (("secret_headers", secret_headers), ("secret_query_params", secret_query)):
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            errors.append((where, "List the names only; the values are saved separately and encrypted."))
    if isinstance(secret_headers, list):
        for hname in secret_headers:
            if not _HEADER_NAME.match(str(hname)) or str(hname).lower() in _RESERVED_HEADERS:
                errors.append(("secret_headers", f"{hname!r} is not a header name you can set."))
            elif str(hname).lower() in {h.lower() for h in headers}:
                errors.append(("secret_headers", f"{hname!r} is also a plain header; keep it in one place."))
    if isinstance(secret_query, list):
        for qname in secret_query:
            if qname in query:
                errors.append(("secret_query_params", f"{qname!r} is also a plain query parameter."))

    timeout = data.get("timeout_s", 10.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= MAX_TIMEOUT_S:
        errors.append(("timeout_s", f"Use a number of seconds above 0 and at most {MAX_TIMEOUT_S:g}."))
    cap = data.get("max_response_bytes", 100_000)
    if isinstance(cap, bool) or not isinstance(cap, int) or not 0 < cap <= MAX_RESPONSE_BYTES:
        errors.append(("max_response_bytes", f"Use a whole number of bytes from 1 to {MAX_RESPONSE_BYTES}."))
    return errors


# --- the tool ---------------------------------------------------------------------------------------


def _redact_value(value: Any, forms: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return net.redact(value, forms)
    if isinstance(value, dict):
        return {net.redact(str(k), forms): _redact_value(v, forms) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_value(v, forms) for v in value]
    return value


def build_http_tool(spec: HttpToolSpec, secrets: Mapping[str, str] | None = None) -> Tool:
    """A Tool whose handler renders ``spec`` from validated arguments and calls runtime.net.

    ``secrets`` maps each name in ``spec.secret_headers`` / ``spec.secret_query_params``
    to its decrypted value. Raises HttpToolSpecError for an invalid spec.
    """
    errors = validate_http_spec(spec)
    if errors:
        raise HttpToolSpecError(errors)
    secret_values = dict(secrets or {})
    origin, path_template, fixed_query = _split_url_template(spec.url_template)
    fixed_query = fixed_query.partition("#")[0].lstrip("?")
    pinned = net.parse_url(origin + "/")

    referenced = [
        *spec.secret_headers,
        *spec.secret_query_params,
        *(n for value in spec.headers.values() for n in secret_references(value)),
        *(n for value in spec.query_template.values() for n in secret_references(value)),
    ]

    async def handler(**arguments: Any) -> dict[str, Any]:
        missing = sorted({n for n in referenced if not secret_values.get(n)})
        if missing:
            raise ToolError(
                f"The tool {spec.name} is missing saved secrets ({', '.join(missing)}); ask its editor."
            )
        url = origin + _render(path_template or "/", arguments, encode=_path_segment)
        query: list[tuple[str, str]] = []
        for qname, template in spec.query_template.items():
            if _omitted(template, arguments):
                continue
            query.append((qname, _render(template, arguments, secrets=secret_values)))
        query.extend((qname, secret_values[qname]) for qname in spec.secret_query_params)
        query_string = "&".join(q for q in (fixed_query, urlencode(query)) if q)
        if query_string:
            url = f"{url}?{query_string}"
        rendered = net.parse_url(url)
        if (rendered.scheme, rendered.host, rendered.port) != (pinned.scheme, pinned.host, pinned.port):
            raise ToolError("The arguments changed the tool's host; refused.")  # belt and braces
        headers = {
            hname: _render(value, arguments, secrets=secret_values)
            for hname, value in spec.headers.items()
            if not _omitted(value, arguments)
        }
        if any(c in v for v in headers.values() for c in "\r\n\0"):
            raise ToolError("A header argument contains a line break.")
        content: bytes | None = None
        if spec.body_template is not None:
            body = _render_body(spec.body_template, arguments)
            if isinstance(spec.body_template, str):
                content = str(body).encode("utf-8")
                headers.setdefault("Content-Type", "text/plain; charset=utf-8")
            else:
                content = json.dumps(body).encode("utf-8")
                headers.setdefault("Content-Type", "application/json")
        headers.setdefault("Accept", "application/json, text/*;q=0.9")
        key = idempotency_key()
        if key and "idempotency-key" not in {h.lower() for h in headers}:
            headers["Idempotency-Key"] = key  # the same on every retry of this tool call
        headers.update({hname: secret_values[hname] for hname in spec.secret_headers})
        hidden = [secret_values[n] for n in referenced]
        forms = net.redaction_forms(hidden)
        logger.info("HTTP tool %s: %s %s%s", spec.name, spec.method, origin, path_template)
        try:
            response = await net.safe_request(
                spec.method,
                url,
                headers=headers,
                content=content,
                timeout=spec.timeout_s,
                max_response_bytes=spec.max_response_bytes,
                secrets=hidden,
            )
        except net.NetError as exc:
            raise ToolError(net.redact(str(exc), forms)) from None
        text = net.redact(response.text, forms)
        body_out: Any = text
        if "json" in response.headers.get("content-type", "") and not response.truncated:
            try:
                body_out = _redact_value(json.loads(text), forms)
            except ValueError:
                body_out = text
        return {
            "status": response.status,
            "headers": {
                k: net.redact(v, forms) for k, v in response.headers.items() if k.lower() in _RESULT_HEADERS
            },
            "body": body_out,
            "truncated": response.truncated,
        }

    return Tool(
        name=spec.name,
        description=spec.description,
        parameters=json.loads(json.dumps(spec.parameters)),
        handler=handler,
        metadata={"kind": "http", "method": spec.method, "url_template": spec.url_template},
    )
