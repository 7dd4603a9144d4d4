"""OpenAPI additions: the event streams are plain Django views, so they are described here."""

from __future__ import annotations

from typing import Any

import drf_spectacular.openapi  # noqa: F401 - imports the contrib extensions
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import OpenApiGeneratorExtension

_STREAM_PARAMETERS: list[dict[str, Any]] = [
    {"name": "run_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}},
    {
        "name": "Last-Event-ID",
        "in": "header",
        "schema": {"type": "integer", "minimum": 0},
        "description": "The last seq received; the stream resumes after it (wins over from_seq).",
    },
    {
        "name": "from_seq",
        "in": "query",
        "schema": {"type": "integer", "minimum": 0},
        "description": "Start with the event of this seq (default: the first).",
    },
    {
        "name": "include_debug",
        "in": "query",
        "schema": {"type": "boolean"},
        "description": "Also debug events.",
    },
    {
        "name": "include_all",
        "in": "query",
        "schema": {"type": "boolean"},
        "description": "Also internal events.",
    },
    {
        "name": "anonymous_token",
        "in": "query",
        "schema": {"type": "string"},
        "description": "An anonymous session token, for EventSource which cannot send headers.",
    },
]

_FRAME_DESCRIPTION = (
    "Server-Sent Events. First `retry: 2000`, then one frame per event: `id: <seq>`, `event: <type>`, "
    '`data: {"run_id", "seq", "type", "payload", "ts", "attempt"}`; `: keep-alive` every 15 s when idle. '
    "Closes after `run.succeeded`, `run.failed`, `run.cancelled` or `run.timed_out` (always sent, whatever "
    "their visibility). A `run.retrying` event means the partial output of the previous attempt is void."
)


def _error_ref(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _stream_operation(operation_id: str, summary: str) -> dict[str, Any]:
    return {
        "operationId": operation_id,
        "summary": summary,
        "tags": ["runs"],
        "parameters": _STREAM_PARAMETERS,
        "responses": {
            "200": {
                "description": _FRAME_DESCRIPTION,
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
            "204": {"description": "The run has finished and there is nothing after Last-Event-ID."},
            "400": _error_ref("A bad Last-Event-ID, from_seq or flag; `fields` names it."),
            "401": _error_ref("No valid credentials."),
            "404": _error_ref("No such run, or not yours."),
        },
        "security": [{"tokenAuth": []}, {"cookieAuth": []}, {}],
    }


def add_event_streams(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: document the two event-stream routes."""
    paths = result.setdefault("paths", {})
    prefix = next((path.split("runs/")[0] for path in paths if "/runs/" in path), "/api/agents/")
    paths[f"{prefix}runs/{{run_id}}/events/"] = {
        "get": _stream_operation("runs_events", "Stream a run's events (works under WSGI and ASGI)")
    }
    paths[f"{prefix}runs/{{run_id}}/events/stream/"] = {
        "get": _stream_operation("runs_events_stream", "Stream a run's events (ASGI, no thread per client)")
    }
    paths[f"{prefix}streams/stats/"] = {
        "get": {
            "operationId": "streams_stats",
            "summary": "This process's event listener (staff only)",
            "tags": ["runs"],
            "responses": {
                "200": {
                    "description": "Bus backend, connection state, open streams, runs watched, deliveries.",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "401": _error_ref("No valid credentials."),
                "403": _error_ref("Not staff."),
            },
            "security": [{"tokenAuth": []}, {"cookieAuth": []}],
        }
    }
    return result


API_SCHEMA_SETTINGS: dict[str, Any] = {
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "runtime.api.schema.add_event_streams",
    ],
}


class AnonymousSessionScheme(OpenApiAuthenticationExtension):
    target_class = "runtime.api.permissions.AnonymousSessionAuthentication"
    name = "anonymousSession"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {"type": "apiKey", "in": "header", "name": "X-Anonymous-Token"}


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "runtime.channels.auth.ApiKeyAuthentication"
    name = "agentApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An agent's API key (sk_live_...), made on the agent's API keys page.",
        }


def load_extension_targets() -> None:
    """Resolve every drf-spectacular extension's target class once, at URL loading.

    drf-spectacular resolves them lazily on the first schema request, and two requests doing it
    at once race (one sees ``None`` where it expects the dotted path and answers 500: seen when
    a fresh server's first requests arrive together).
    """
    pending = list(OpenApiGeneratorExtension.__subclasses__())
    while pending:
        extension = pending.pop()
        pending.extend(extension.__subclasses__())
        if isinstance(extension.target_class, str):
            extension._load_class()
