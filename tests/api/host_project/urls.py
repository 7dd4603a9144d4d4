"""Step 4 of the setup guide: the base view sets, mounted as they are."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from runtime.api.views import BaseAgentConversationViewSet, BaseAgentRunViewSet, sync_event_stream

router = DefaultRouter()
router.register(r"conversations", BaseAgentConversationViewSet, basename="conversation")
router.register(r"runs", BaseAgentRunViewSet, basename="run")

urlpatterns = [
    path("api/agents/", include(router.urls)),
    path("api/agents/runs/<str:run_id>/events/", sync_event_stream, name="run-events"),
    # our own wiring, which a host may include as is (token, session and anonymous-session auth)
    path("api/ours/", include("runtime.api.urls")),
]
