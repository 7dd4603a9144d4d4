"""``/v1/``: the OpenAI-compatible endpoint (runtime/channels/openai_compat.py)."""

from __future__ import annotations

from django.urls import path

from runtime.channels.openai_compat import ModelList, chat_completions

app_name = "openai"
urlpatterns = [
    path("models", ModelList.as_view(), name="models"),
    path("chat/completions", chat_completions, name="chat-completions"),
]
