"""The runtime API as our project mounts it (``/api/agents/``), wired as the seed's README shows.

A host project can include this module as is, or copy it and mount its own
subclasses of the base view sets.
"""

from __future__ import annotations

from django.urls import include, path
from rest_framework.authentication import SessionAuthentication
from rest_framework.routers import DefaultRouter

from runtime.api import schema  # noqa: F401 - registers the anonymous-session auth scheme
from runtime.api.credentials import CachedTokenAuthentication
from runtime.api.permissions import AnonymousSessionAuthentication, IsAuthenticatedOrAnonymousSession
from runtime.api.streams import stream_stats
from runtime.api.views import (
    BaseAgentConversationViewSet,
    BaseAgentRunViewSet,
    ModelListView,
    async_event_stream,
    sync_event_stream,
)


# CachedTokenAuthentication is DRF's TokenAuthentication, remembering a good token for a few
# seconds (runtime/api/credentials.py): starting a run and opening its stream look it up once.
class AgentRunViewSet(BaseAgentRunViewSet):
    authentication_classes = [
        CachedTokenAuthentication,
        SessionAuthentication,
        AnonymousSessionAuthentication,
    ]
    permission_classes = [IsAuthenticatedOrAnonymousSession]


class AgentConversationViewSet(BaseAgentConversationViewSet):
    authentication_classes = [
        CachedTokenAuthentication,
        SessionAuthentication,
        AnonymousSessionAuthentication,
    ]
    permission_classes = [IsAuthenticatedOrAnonymousSession]


router = DefaultRouter()
router.include_root_view = False
router.register(r"conversations", AgentConversationViewSet, basename="conversation")
router.register(r"runs", AgentRunViewSet, basename="run")

app_name = "agents"
urlpatterns = [
    path("", include(router.urls)),
    path("runs/<str:run_id>/events/", sync_event_stream, name="run-events"),
    path("runs/<str:run_id>/events/stream/", async_event_stream, name="run-stream"),
    path("models/", ModelListView.as_view(), name="models"),
    path("streams/stats/", stream_stats, name="stream-stats"),
]
