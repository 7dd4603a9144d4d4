"""Unfold admin for the runtime's tables: runs and events are read-only; cancel and retry call the services.

Lives in ``runtime`` so the engine has an admin on its own; it imports nothing from the builder.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from unfold.admin import ModelAdmin, TabularInline
from unfold.decorators import action, display

from runtime.models import AgentCheckpoint, AgentConversation, AgentEvent, AgentMessage, AgentRun, MemoryEntry
from runtime.services import RunAlreadyFinished, RunInputError, run_cancel, run_retry

STATUS_LABELS = {
    "queued": "warning",
    "running": "info",
    "succeeded": "success",
    "failed": "danger",
    "cancelled": "",
    "timed_out": "danger",
}


class ReadOnlyMixin:
    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class EventInline(ReadOnlyMixin, TabularInline):
    model = AgentEvent
    fields = ["seq", "event_type", "visibility", "attempt", "payload", "created_at"]
    readonly_fields = fields
    ordering = ["seq"]
    extra = 0
    per_page = 50
    show_change_link = False


class MessageInline(ReadOnlyMixin, TabularInline):
    model = AgentMessage
    fields = ["seq", "role", "agent_key", "content", "tool_calls", "run", "created_at"]
    readonly_fields = fields
    ordering = ["seq"]
    extra = 0
    per_page = 50


def _cancel(modeladmin: ModelAdmin, request: HttpRequest, runs: QuerySet[AgentRun]) -> None:
    cancelled = skipped = 0
    for run in runs:
        try:
            run_cancel(run=run)
            cancelled += 1
        except RunAlreadyFinished:
            skipped += 1
    modeladmin.message_user(request, f"Cancelled {cancelled} run(s); {skipped} had already finished.")


def _retry(modeladmin: ModelAdmin, request: HttpRequest, runs: QuerySet[AgentRun]) -> list[AgentRun]:
    new_runs = []
    for run in runs:
        try:
            new_runs.append(run_retry(run=run, user=request.user))
        except RunInputError as exc:
            modeladmin.message_user(request, f"{run.pk}: {exc}", level=messages.WARNING)
    if new_runs:
        modeladmin.message_user(request, f"Started {len(new_runs)} new run(s).")
    return new_runs


@admin.register(AgentRun)
class AgentRunAdmin(ReadOnlyMixin, ModelAdmin):
    list_display = ["id", "agent_key", "status_badge", "user", "total_tokens", "cost", "created_at"]
    # No agent_key filter: with thousands of agents its option list costs more than the page.
    list_filter = ["status"]
    list_per_page = 25
    search_fields = ["id", "agent_key", "agent_version"]
    list_select_related = ["user"]
    readonly_fields = [*(f.name for f in AgentRun._meta.fields if f.name != "cost_usd"), "cost"]
    inlines = [EventInline]
    actions = ["cancel_runs", "retry_runs"]
    actions_detail = ["cancel_run", "retry_run"]
    show_full_result_count = False

    @display(description="Status", label=STATUS_LABELS, ordering="status")
    def status_badge(self, run: AgentRun) -> str:
        return run.status

    @display(description="Cost (estimated)")
    def cost(self, run: AgentRun) -> str:
        return run.cost_label

    @action(description="Cancel selected runs")
    def cancel_runs(self, request: HttpRequest, queryset: QuerySet[AgentRun]) -> None:
        _cancel(self, request, queryset)

    @action(description="Retry selected runs")
    def retry_runs(self, request: HttpRequest, queryset: QuerySet[AgentRun]) -> None:
        _retry(self, request, queryset)

    @action(description="Cancel run", url_path="cancel")
    def cancel_run(self, request: HttpRequest, object_id: str) -> HttpResponseRedirect:
        _cancel(self, request, AgentRun.objects.filter(pk=object_id))
        return HttpResponseRedirect(reverse("admin:runtime_agentrun_change", args=[object_id]))

    @action(description="Retry run", url_path="retry")
    def retry_run(self, request: HttpRequest, object_id: str) -> HttpResponseRedirect:
        new_runs = _retry(self, request, AgentRun.objects.filter(pk=object_id))
        target = new_runs[0].pk if new_runs else object_id
        return HttpResponseRedirect(reverse("admin:runtime_agentrun_change", args=[target]))


@admin.register(AgentEvent)
class AgentEventAdmin(ReadOnlyMixin, ModelAdmin):
    list_display = ["run", "seq", "event_type", "visibility", "attempt", "created_at"]
    list_per_page = 50
    list_filter = ["event_type", "visibility"]
    search_fields = ["run__id", "event_type"]
    readonly_fields = [f.name for f in AgentEvent._meta.fields]
    show_full_result_count = False


@admin.register(AgentConversation)
class AgentConversationAdmin(ModelAdmin):
    list_display = ["id", "title", "agent_key", "active_agent_key", "user", "updated_at"]
    search_fields = ["id", "title", "agent_key"]
    list_select_related = ["user"]
    readonly_fields = [
        "id",
        "user",
        "anonymous_session_id",
        "agent_key",
        "active_agent_key",
        "created_at",
        "updated_at",
    ]
    inlines = [MessageInline]


@admin.register(AgentMessage)
class AgentMessageAdmin(ReadOnlyMixin, ModelAdmin):
    list_display = ["conversation", "seq", "role", "agent_key", "created_at"]
    list_filter = ["role"]
    readonly_fields = [f.name for f in AgentMessage._meta.fields]
    show_full_result_count = False


@admin.register(AgentCheckpoint)
class AgentCheckpointAdmin(ReadOnlyMixin, ModelAdmin):
    list_display = ["run", "seq", "attempt", "created_at"]
    readonly_fields = [f.name for f in AgentCheckpoint._meta.fields]


@admin.register(MemoryEntry)
class MemoryEntryAdmin(ModelAdmin):
    list_display = ["key", "scope_badge", "agent_key", "system_key", "user", "updated_at", "expires_at"]
    list_filter = ["scope"]
    search_fields = ["key", "agent_key", "system_key"]
    list_select_related = ["user"]
    readonly_fields = ["id", "created_at", "updated_at"]
    raw_id_fields = ["conversation", "user"]

    @display(description="Scope", label=True)
    def scope_badge(self, entry: MemoryEntry) -> str:
        return entry.scope
