"""Start an HTTP tool from a cURL command (OpenAPI documents: ``openapi_import.py``).

:func:`draft_from_curl` reads a command the way a shell would (``shlex``) and returns a draft
for the tool form, nothing saved: method, URL, headers, parameters from the query string and
the JSON body. Credentials in headers become secrets.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from builder.schema import ConfigError

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


def tool_name(method: str, path: str) -> str:
    words = [w for w in re.split(r"[^A-Za-z0-9]+", path) if w and not w.isdigit()]
    words = [w for w in words if w.lower() not in {"api", "v1", "v2", "v3"}][-2:]
    name = "_".join([method.lower(), *words]).lower()[:64]
    return name if re.match(r"^[a-z][a-z0-9_]*$", name) else "http_tool"


def _query_type(value: str) -> str:
    """A guess from the example value, for the person to check: ``5`` a whole number, ``true`` yes/no.
    A number with a leading zero (a postcode, an id) stays text, or the zero would be lost."""
    if value.lower() in ("true", "false"):
        return "boolean"
    if re.fullmatch(r"-?(0|[1-9][0-9]{0,15})", value):
        return "integer"
    return "string"


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
                "type": _query_type(value),
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
        "name": tool_name(method, parts.path),
        "description": "",
        "method": method,
        "url": url,
        "headers": json.dumps(header_map, indent=2) if header_map else "",
        "secrets": "\n".join(secrets),
        "rows": rows,
    }
