"""Unfold admin for anonymous sessions: see and expire them; the token itself is never shown.

Sessions belong to widget visitors, not to any builder user, so only superusers see them.
"""

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

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return request.user.is_superuser

    def has_expire_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    @display(description="State", label={"active": "success", "expired": ""})
    def state_badge(self, session: AnonymousSession) -> str:
        return "expired" if session.is_expired else "active"

    @action(description="Expire the selected sessions now", permissions=["expire"])
    def expire_now(self, request: HttpRequest, queryset: QuerySet[AnonymousSession]) -> None:
        count = anonymous_sessions_expire(sessions=queryset)
        self.message_user(request, f"{count} session(s) expired.", messages.SUCCESS)
