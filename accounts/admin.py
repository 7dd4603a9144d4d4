"""Unfold admin for anonymous sessions: see and expire them; the token itself is never shown."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from unfold.admin import ModelAdmin
from unfold.decorators import action, display

from accounts.models import AnonymousSession
from accounts.services import anonymous_sessions_expire


@admin.register(AnonymousSession)
class AnonymousSessionAdmin(ModelAdmin):
    list_display = ["id", "state_badge", "created_at", "expires_at"]
    list_filter = ["created_at", "expires_at"]
    search_fields = ["id"]
    # the token is a bearer credential: never displayed, never editable
    fields = ["id", "created_at", "expires_at", "metadata"]
    readonly_fields = ["id", "created_at", "expires_at", "metadata"]
    actions = ["expire_now"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # sessions are minted by the API

    @display(description="State", label={"active": "success", "expired": ""})
    def state_badge(self, session: AnonymousSession) -> str:
        return "expired" if session.is_expired else "active"

    @action(description="Expire the selected sessions now")
    def expire_now(self, request: HttpRequest, queryset: QuerySet[AnonymousSession]) -> None:
        count = anonymous_sessions_expire(sessions=queryset)
        self.message_user(request, f"{count} session(s) expired.", messages.SUCCESS)
