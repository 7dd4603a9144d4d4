"""The runtime API as our project mounts it (``/api/agents/``), wired as the seed's README shows.

A host project can include this module as is, or copy it and mount its own
subclasses of the base view sets.
"""

from __future__ import annotations

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from runtime.api import schema  # registers the anonymous-session auth scheme
from runtime.api.streams import stream_stats
from runtime.api.views import (
    DEFAULT_AUTHENTICATION_CLASSES,
    DEFAULT_PERMISSION_CLASSES,
    DEFAULT_THROTTLE_CLASSES,
    BaseAgentConversationViewSet,
    BaseAgentRunViewSet,
    ModelListView,
    async_event_stream,
    sync_event_stream,
)

schema.load_extension_targets()


# Token (CachedTokenAuthentication: DRF's TokenAuthentication, remembering a good token for a few
# seconds, runtime/api/credentials.py), session, and the widget's anonymous session token.
class AgentRunViewSet(BaseAgentRunViewSet):
    authentication_classes = DEFAULT_AUTHENTICATION_CLASSES
    permission_classes = DEFAULT_PERMISSION_CLASSES
    throttle_classes = DEFAULT_THROTTLE_CLASSES


class AgentConversationViewSet(BaseAgentConversationViewSet):
    authentication_classes = DEFAULT_AUTHENTICATION_CLASSES
    permission_classes = DEFAULT_PERMISSION_CLASSES
    throttle_classes = DEFAULT_THROTTLE_CLASSES


class AgentModelListView(ModelListView):
    authentication_classes = DEFAULT_AUTHENTICATION_CLASSES
    permission_classes = DEFAULT_PERMISSION_CLASSES
    throttle_classes = DEFAULT_THROTTLE_CLASSES


router = DefaultRouter()
router.include_root_view = False
router.register(r"conversations", AgentConversationViewSet, basename="conversation")
router.register(r"runs", AgentRunViewSet, basename="run")

app_name = "agents"
urlpatterns = [
    path("", include(router.urls)),
    path("runs/<str:run_id>/events/", sync_event_stream, name="run-events"),
    path("runs/<str:run_id>/events/stream/", async_event_stream, name="run-stream"),
    path("models/", AgentModelListView.as_view(), name="models"),
    path("streams/stats/", stream_stats, name="stream-stats"),
]
