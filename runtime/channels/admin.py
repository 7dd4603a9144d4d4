"""Admin for the API-key channel: keys (read-only, revocable) and each agent's daily spend.

A staff user sees the keys and spend of the agents they may edit (``runtime.access``); the
secret's hash is never shown. Keys are made on the agent's API keys page, where the key can
be shown once; the admin has no "add".
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Q
from django.http import HttpRequest
from unfold.admin import ModelAdmin
from unfold.decorators import display

from runtime import access
from runtime.admin import ReadOnlyMixin
from runtime.admin_support import VisibleRowsMixin, confirmed_action
from runtime.channels.api_key_models import AgentDailySpend, ApiKey
from runtime.channels.api_keys import NotAllowed, api_key_revoke


@admin.register(ApiKey)
class ApiKeyAdmin(VisibleRowsMixin, ReadOnlyMixin, ModelAdmin):
    list_display = [
        "name",
        "prefix",
        "agents",
        "status_badge",
        "requests_per_minute",
        "last_used_at",
        "created_at",
    ]
    list_filter = ["revoked_at"]
    search_fields = ["name", "lookup", "agent_keys"]
    fields = [
        "name",
        "prefix",
        "agent_keys",
        "requests_per_minute",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    readonly_fields = fields
    actions_detail = ["revoke_key"]

    def visible_filter(self, user: Any) -> Q | None:
        return Q(agent_keys__overlap=access.editable_agent_keys(user))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoke instead: the runs it started keep naming it

    def has_manage_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        key = self.resolve(request, obj)
        if key is None:
            return request.user.is_staff
        return all(access.may_manage_channels(agent_key=k, user=request.user) for k in key.agent_keys)

    @display(description="Key")
    def prefix(self, key: ApiKey) -> str:
        return f"{key.display_prefix}…"

    @display(description="Agents")
    def agents(self, key: ApiKey) -> str:
        return ", ".join(key.agent_keys)

    @display(description="Status", label={"active": "success", "revoked": "danger"})
    def status_badge(self, key: ApiKey) -> str:
        return "active" if key.is_active else "revoked"

    @confirmed_action(
        description="Revoke key",
        url_path="revoke",
        permission="manage",
        question="Revoke the key {obj}? Programs using it are refused from now on; this cannot be undone.",
    )
    def revoke_key(self, request: HttpRequest, key: ApiKey) -> None:
        try:
            api_key_revoke(key=key, user=request.user)
        except NotAllowed as exc:
            messages.error(request, str(exc))
            return
        messages.success(request, f"Revoked {key.name}.")


@admin.register(AgentDailySpend)
class AgentDailySpendAdmin(VisibleRowsMixin, ReadOnlyMixin, ModelAdmin):
    list_display = [
        "agent_key",
        "day",
        "spent_usd",
        "reserved_usd",
        "spent_tokens",
        "reserved_tokens",
        "unpriced_tokens",
        "settled_runs",
    ]
    list_filter = ["day"]
    search_fields = ["agent_key"]
    readonly_fields = list_display

    def visible_filter(self, user: Any) -> Q | None:
        return Q(agent_key__in=access.editable_agent_keys(user))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
