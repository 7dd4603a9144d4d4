"""The same API where the agent-frontend chat widget looks for it by default (``/api/agent-runtime/``).

The widget (npm ``@makemore/agent-frontend``) calls ``conversations/``, ``runs/``,
``runs/<id>/events/`` and ``models/`` under this prefix. These are the views of
``runtime/api/urls.py`` with two differences the widget relies on:

- a conversation's message page counts its offset back from the newest message (the widget
  shows the latest page and loads older ones above it);
- an error is the original package's ``{"error": "<message>"}`` (plus ``code`` and ``fields``):
  the widget shows ``error`` as text, and would show our ``{"error": {...}}`` as "[object Object]".

Left out of the OpenAPI schema: ``/api/agents/`` documents the same endpoints.
"""

from __future__ import annotations

from typing import Any

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
    path("runs/<str:run_id>/events/", api_urls.sync_event_stream, name="run-events"),
    path("runs/<str:run_id>/events/stream/", api_urls.async_event_stream, name="run-stream"),
    path("models/", FrontendModelListView.as_view(), name="models"),
]
