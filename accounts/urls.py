from __future__ import annotations

from django.urls import path

from accounts.api import AnonymousSessionCreateView

app_name = "accounts"
urlpatterns = [
    path("anonymous-session/", AnonymousSessionCreateView.as_view(), name="anonymous-session"),
]
