"""The builder's REST routes under ``/api/``: the knowledge bases of agents and systems."""

from __future__ import annotations

from django.urls import path

from builder import api

app_name = "builder-api"

urlpatterns = [
    path("agents/<uuid:public_id>/knowledge/", api.AgentKnowledgeListView.as_view(), name="agent-knowledge"),
    path(
        "agents/<uuid:public_id>/knowledge/<uuid:base_id>/",
        api.AgentKnowledgeDetailView.as_view(),
        name="agent-knowledge-base",
    ),
    path(
        "systems/<uuid:public_id>/knowledge/", api.SystemKnowledgeListView.as_view(), name="system-knowledge"
    ),
    path(
        "systems/<uuid:public_id>/knowledge/<uuid:base_id>/",
        api.SystemKnowledgeDetailView.as_view(),
        name="system-knowledge-base",
    ),
]
