"""The widget API, mounted by the project at ``/api/widget/``."""

from __future__ import annotations

from django.urls import path

from runtime.channels import api

app_name = "widget"
urlpatterns = [
    path("session/", api.WidgetSessionView.as_view(), name="session"),
    path("session/refresh/", api.WidgetSessionRefreshView.as_view(), name="session-refresh"),
    path("messages/", api.WidgetMessageView.as_view(), name="messages"),
    path("conversations/<str:conversation_id>/", api.WidgetConversationView.as_view(), name="conversation"),
    path("feedback/", api.WidgetFeedbackView.as_view(), name="feedback"),
    path("runs/<str:run_id>/stream/", api.widget_stream, name="stream"),
]
