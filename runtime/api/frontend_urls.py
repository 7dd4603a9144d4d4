"""The same API where the agent-frontend chat widget looks for it by default (``/api/agent-runtime/``).

The widget (npm ``@makemore/agent-frontend``) calls ``conversations/``, ``runs/``,
``runs/<id>/events/`` and ``models/`` under this prefix. These are the views of
``runtime/api/urls.py`` with two differences the widget relies on:

- a conversation's message page counts its offset back from the newest message (the widget
  shows the latest page and loads older ones above it);
- an error is the original package's ``{"error": "<message>"}`` (plus ``code`` and ``fields``),
  and so is ``run.failed``'s ``payload.error`` in the event stream (its code moves to
  ``payload.error_code``): the widget shows ``error`` as text, and shows nothing for an object.

Left out of the OpenAPI schema: ``/api/agents/`` documents the same endpoints.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import include, path
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter

from runtime.api import urls as api_urls
from runtime.api.errors import exception_handler


def flat_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """Our error body with ``error`` as its message: ``{"error": "...", "code": "...", "fields": {...}}``."""
    response = exception_handler(exc, context)
    error = response.data.get("error") if isinstance(response.data, dict) else None
    if isinstance(error, dict):
        response.data = {"error": error["message"], "code": error["code"], "fields": error["fields"]}
    return response


class FlatErrors:
    def get_exception_handler(self):  # noqa: D102 - DRF hook
        return flat_exception_handler


FAILED = b"\nevent: run.failed\ndata: "


def failure_as_text(chunk: bytes) -> bytes:
    """A chunk of frames with ``run.failed``'s ``payload.error`` as its message."""
    if FAILED not in chunk:
        return chunk
    head, _, rest = chunk.partition(FAILED)
    body, end, tail = rest.partition(b"\n\n")
    data = json.loads(body)
    payload = data.get("payload") or {}
    error = payload.get("error")
    if isinstance(error, dict):
        text = error.get("message") or "The run failed."
        data["payload"] = {**payload, "error": text, "error_code": error.get("code")}
    return head + FAILED + json.dumps(data).encode() + end + tail


def with_failure_as_text(view: Any) -> Any:
    def stream(request: HttpRequest, run_id: str) -> HttpResponse:
        response = view(request, run_id)
        if not isinstance(response, StreamingHttpResponse):
            return response
        # every frame goes through the iterator (the listener's direct writes would skip it)
        response.sse_direct = None
        content = response.streaming_content
        if response.is_async:

            async def frames() -> Any:
                async for chunk in content:
                    yield failure_as_text(chunk)

            response.streaming_content = frames()
        else:
            response.streaming_content = map(failure_as_text, content)
        return response

    return stream


@extend_schema(exclude=True)
class FrontendRunViewSet(FlatErrors, api_urls.AgentRunViewSet):
    pass


@extend_schema(exclude=True)
class FrontendConversationViewSet(FlatErrors, api_urls.AgentConversationViewSet):
    message_pages_from_newest = True


@extend_schema(exclude=True)
class FrontendModelListView(FlatErrors, api_urls.AgentModelListView):
    pass


router = DefaultRouter()
router.include_root_view = False
router.register(r"conversations", FrontendConversationViewSet, basename="conversation")
router.register(r"runs", FrontendRunViewSet, basename="run")

app_name = "agent-runtime"
urlpatterns = [
    path("", include(router.urls)),
    path("runs/<str:run_id>/events/", with_failure_as_text(api_urls.sync_event_stream), name="run-events"),
    path(
        "runs/<str:run_id>/events/stream/",
        with_failure_as_text(api_urls.async_event_stream),
        name="run-stream",
    ),
    path("models/", FrontendModelListView.as_view(), name="models"),
]
