from __future__ import annotations

from django.urls import path

from rag import api

app_name = "knowledge-api"

urlpatterns = [
    path("bases/", api.KnowledgeBaseListView.as_view(), name="bases"),
    path("bases/<uuid:base_id>/", api.KnowledgeBaseDetailView.as_view(), name="base"),
    path("bases/<uuid:base_id>/documents/", api.DocumentListView.as_view(), name="documents"),
    path(
        "bases/<uuid:base_id>/documents/<uuid:document_id>/",
        api.DocumentDetailView.as_view(),
        name="document",
    ),
    path("bases/<uuid:base_id>/search/", api.SearchView.as_view(), name="search"),
]
