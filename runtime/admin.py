"""Unfold admin for the runtime's tables: runs and events are read-only; cancel and retry call the services.

Lives in ``runtime`` so the engine has an admin on its own; it imports nothing from the builder.
Who sees which rows, and who may cancel or retry, comes from ``runtime/access.py`` (the builder
registers its access rules there): a staff user sees the runs, conversations, events and memory of
the agents they may edit plus their own runs and conversations; superusers see everything.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import Q, QuerySet, StringAgg, Value
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce, NullIf
from django.http import HttpRequest, HttpResponseRedirect, QueryDict
from django.urls import reverse
from unfold.admin import ModelAdmin, TabularInline
from unfold.contrib.filters.admin import FieldTextFilter, RangeDateTimeFilter
from unfold.decorators import action, display

from runtime import access
from runtime.admin_support import (
    CappedCountPaginator,
    QuickRowsMixin,
    ReadOnlyMixin,
    VisibleRowsMixin,
    confirmed_action,
    label_html,
)
from runtime.admin_transcript import transcript_html
from runtime.channels.models import WidgetChannel
from runtime.channels.services import ChannelError, widget_channel_set_enabled
from runtime.models import AgentCheckpoint, AgentConversation, AgentEvent, AgentMessage, AgentRun, MemoryEntry
from runtime.services import RunAlreadyFinished, RunInputError, run_cancel, run_retry

ACTIVE = ("queued", "running")
STATUS_LABELS = {
    "queued": "warning",
    "running": "info",
    "succeeded": "success",
    "failed": "danger",
    "cancelled": "",
    "timed_out": "danger",
}


def _json_text(value: Any) -> str:
    """A JSON column as compact text. Unfold highlights a JSON field with Pygments, a few
    milliseconds a cell: on an inline of 40 messages that was most of the page's time."""
    if value is None or value == "":
        return "—"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


class EventInline(ReadOnlyMixin, TabularInline):
    """A run's steps; its token deltas are joined into the page's *Answer* instead of one row each."""

    model = AgentEvent
    verbose_name_plural = "Events (token deltas joined in the answer above)"
    fields = ["seq", "event_type", "visibility", "attempt", "payload_text", "created_at"]
    readonly_fields = fields
    ordering = ["seq"]
    extra = 0
    per_page = 50
    show_change_link = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[AgentEvent]:
        return super().get_queryset(request).exclude(event_type="assistant.delta")

    @display(description="Payload")
    def payload_text(self, event: AgentEvent) -> str:
        return _json_text(event.payload)


def _manageable(modeladmin: ModelAdmin, request: HttpRequest, runs: QuerySet[AgentRun]) -> list[AgentRun]:
    allowed = [run for run in runs if access.may_manage_run(request.user, run)]
    if len(allowed) < len(runs):
        modeladmin.message_user(
            request,
            f"Skipped {len(runs) - len(allowed)} run(s) of agents you may not edit.",
            level=messages.WARNING,
        )
    return allowed


def _cancel(modeladmin: ModelAdmin, request: HttpRequest, runs: list[AgentRun]) -> None:
    cancelled = skipped = 0
    for run in runs:
        try:
            run_cancel(run=run)
            cancelled += 1
        except RunAlreadyFinished:
            skipped += 1
    modeladmin.message_user(request, f"Cancelled {cancelled} run(s); {skipped} had already finished.")


def _retry(modeladmin: ModelAdmin, request: HttpRequest, runs: list[AgentRun]) -> list[AgentRun]:
    new_runs = []
    for run in runs:
        try:
            # The new run belongs to the run's own caller and conversation, under the same run-access rules.
            new_runs.append(run_retry(run=run))
        except RunInputError as exc:
            modeladmin.message_user(request, f"{run.pk}: {exc}", level=messages.WARNING)
    if new_runs:
        modeladmin.message_user(request, f"Started {len(new_runs)} new run(s).")
    return new_runs


class RunRowsMixin(VisibleRowsMixin):
    run_path = ""  # path from this model to its run ("run__")

    def visible_filter(self, user: Any) -> Q | None:
        return access.visible_runs_q(user, self.run_path)


@admin.register(AgentRun)
class AgentRunAdmin(QuickRowsMixin, RunRowsMixin, ReadOnlyMixin, ModelAdmin):
    # Agent and time first: people look for "the support bot's run this morning", not a UUID.
    list_display = ["agent_key", "created_at", "status_badge", "user", "total_tokens", "cost", "short_id"]
    list_display_links = ["agent_key"]
    # The agent is a typed filter, not an option list: with thousands of agents a list of every
    # key would cost more than the page.
    list_filter = [
        ("agent_key", FieldTextFilter),
        "status",
        ("created_at", RangeDateTimeFilter),
    ]
    list_filter_submit = True
    # Server time grows with the rows shown: 20 keeps the page within 50 ms (bench/builder_pages.py)
    list_per_page = 20
    search_fields = ["id", "agent_key", "agent_version"]
    list_select_related = ["user"]
    fields = ["answer", "problem", *(f.name for f in AgentRun._meta.fields if f.name != "cost_usd"), "cost"]
    readonly_fields = fields
    inlines = [EventInline]
    actions = ["cancel_runs", "retry_runs"]
    actions_detail = ["cancel_run", "retry_run"]
    show_full_result_count = False
    paginator = CappedCountPaginator  # "1,000+ runs": no scan of every visible run per view

    def has_manage_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        run = self.resolve(request, obj)
        if run is None:  # the changelist, or an id that does not resolve (the action says so)
            return request.user.is_staff
        return access.may_manage_run(request.user, run)

    # A run page offers only what can apply to it: Cancel while it may still stop, Retry once it ended.
    def has_cancel_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        run = self.resolve(request, obj)
        if run is None:
            return self.has_manage_permission(request, obj)
        return run.status in ACTIVE and access.may_manage_run(request.user, run)

    def has_retry_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        run = self.resolve(request, obj)
        if run is None:
            return self.has_manage_permission(request, obj)
        return run.status not in ACTIVE and access.may_manage_run(request.user, run)

    @display(description="Run")
    def short_id(self, run: AgentRun) -> str:
        return str(run.pk)[:8]

    @display(description="Answer (the streamed text, joined)")
    def answer(self, run: AgentRun) -> str:
        # the last attempt's text only: an attempt that failed mid-stream started the answer again
        # joined by PostgreSQL: decoding 5,000 payloads in Python was a third of the page's time
        piece = Coalesce(NullIf(KT("payload__delta"), Value("")), KT("payload__content"), Value(""))
        text = run.events.filter(event_type="assistant.delta", attempt=run.attempt).aggregate(
            text=StringAgg(piece, delimiter=Value(""), order_by="seq")
        )["text"]
        if not text:
            message = (
                run.events.filter(event_type="assistant.message")
                .order_by("-seq")
                .values_list("payload", flat=True)
                .first()
            )
            text = str((message or {}).get("content") or "")
        return text or "—"

    @display(description="What went wrong")
    def problem(self, run: AgentRun) -> str:
        # the user-safe message (a missing sub-agent names itself and the fix), above the raw JSON
        return str((run.error or {}).get("message") or "—")

    @display(description="Status", ordering="status")
    def status_badge(self, run: AgentRun) -> str:
        return label_html(run.status, STATUS_LABELS)  # Unfold's badge, rendered once per status

    @display(description="Cost (estimated)")
    def cost(self, run: AgentRun) -> str:
        return run.cost_label

    @action(description="Cancel selected runs", permissions=["manage"])
    def cancel_runs(self, request: HttpRequest, queryset: QuerySet[AgentRun]) -> None:
        _cancel(self, request, _manageable(self, request, queryset))

    @action(description="Retry selected runs", permissions=["manage"])
    def retry_runs(self, request: HttpRequest, queryset: QuerySet[AgentRun]) -> None:
        _retry(self, request, _manageable(self, request, queryset))

    @confirmed_action(
        description="Cancel run", url_path="cancel", permission="cancel", question="Cancel the run {obj.pk}?"
    )
    def cancel_run(self, request: HttpRequest, run: AgentRun) -> None:
        _cancel(self, request, [run])

    @confirmed_action(
        description="Retry run",
        url_path="retry",
        permission="retry",
        question="Start a new run of {obj.agent_key} with the same input as {obj.pk}?",
    )
    def retry_run(self, request: HttpRequest, run: AgentRun) -> HttpResponseRedirect:
        new_runs = _retry(self, request, [run])
        target = new_runs[0].pk if new_runs else run.pk
        return HttpResponseRedirect(reverse("admin:runtime_agentrun_change", args=[target]))


class VisibilityFilter(admin.SimpleListFilter):
    title = "visibility"
    parameter_name = "visibility"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(level, level) for level in ("user", "debug", "internal")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[AgentEvent]) -> QuerySet[AgentEvent]:
        return queryset.filter(visibility=self.value()) if self.value() else queryset


@admin.register(AgentEvent)
class AgentEventAdmin(QuickRowsMixin, RunRowsMixin, ReadOnlyMixin, ModelAdmin):
    run_path = "run__"
    # As for runs: the agent and the time first, filters by agent (typed), type and time.
    list_display = ["agent", "created_at", "event_type", "seq", "visibility", "attempt", "short_run"]
    list_display_links = ["agent"]
    list_per_page = 25
    # Typed filters and fixed choices: Django's field filters ask the table for its distinct
    # values on every page view, a scan of every event (70 ms at 100,000 events).
    list_filter = [
        ("run__agent_key", FieldTextFilter),
        ("event_type", FieldTextFilter),
        VisibilityFilter,
        ("created_at", RangeDateTimeFilter),
    ]
    list_filter_submit = True
    list_select_related = ["run"]
    search_fields = ["run__id", "event_type"]
    readonly_fields = [f.name for f in AgentEvent._meta.fields]
    show_full_result_count = False
    paginator = CappedCountPaginator

    @display(description="Agent", ordering="run__agent_key")
    def agent(self, event: AgentEvent) -> str:
        return event.run.agent_key

    @display(description="Run")
    def short_run(self, event: AgentEvent) -> str:
        return str(event.run_id)[:8]


@admin.register(AgentConversation)
class AgentConversationAdmin(QuickRowsMixin, VisibleRowsMixin, ModelAdmin):
    list_display = ["title", "agent_key", "user", "updated_at", "active_agent_key", "id"]
    list_per_page = 25  # Django's 100 rows took 300 ms at 12,000 conversations
    show_full_result_count = False
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
        "transcript",
    ]
    fieldsets = [
        (None, {"fields": ["title", "metadata", *readonly_fields[:-1]]}),
        ("Messages", {"fields": ["transcript"]}),
    ]

    def visible_filter(self, user: Any) -> Q | None:
        return access.visible_conversations_q(user)

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Any:
        conversation = super().get_object(request, object_id, from_field)
        if conversation is not None:
            # a read-only field sees only the object: the transcript's page travels on it
            conversation.transcript_query = request.GET
        return conversation

    @display(description="Transcript")
    def transcript(self, conversation: AgentConversation) -> str:
        # one template over the page's rows: Unfold's inline rendered each cell, ~4 ms a message
        return transcript_html(conversation, getattr(conversation, "transcript_query", QueryDict()))


@admin.register(AgentMessage)
class AgentMessageAdmin(VisibleRowsMixin, ReadOnlyMixin, ModelAdmin):
    list_display = ["conversation", "seq", "role", "agent_key", "created_at"]
    list_filter = ["role"]
    readonly_fields = [f.name for f in AgentMessage._meta.fields]
    show_full_result_count = False

    def visible_filter(self, user: Any) -> Q | None:
        return access.visible_conversations_q(user, "conversation__")


@admin.register(AgentCheckpoint)
class AgentCheckpointAdmin(RunRowsMixin, ReadOnlyMixin, ModelAdmin):
    run_path = "run__"
    list_display = ["run", "seq", "attempt", "created_at"]
    readonly_fields = [f.name for f in AgentCheckpoint._meta.fields]


@admin.register(MemoryEntry)
class MemoryEntryAdmin(VisibleRowsMixin, ModelAdmin):
    list_display = ["key", "scope_badge", "agent_key", "system_key", "whose", "updated_at", "expires_at"]
    list_filter = ["scope"]
    search_fields = ["key", "agent_key", "system_key", "visitor"]
    list_select_related = ["user"]
    readonly_fields = ["id", "created_at", "updated_at"]
    raw_id_fields = ["conversation", "user"]

    def visible_filter(self, user: Any) -> Q | None:
        return access.visible_memory_q(user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser  # agents write memory; the builder's memory page corrects it

    @display(description="Scope", label=True)
    def scope_badge(self, entry: MemoryEntry) -> str:
        return entry.scope

    @display(description="User or visitor", ordering="user")
    def whose(self, entry: MemoryEntry) -> str:
        # user memory belongs to an account or to a widget's identified visitor ("<widget>:<their id>")
        if entry.user_id:
            return str(entry.user)
        return f"visitor {entry.visitor}" if entry.visitor else "-"


# -- channels ---------------------------------------------------------------------------------


@admin.register(WidgetChannel)
class WidgetChannelAdmin(VisibleRowsMixin, ReadOnlyMixin, ModelAdmin):
    """Web widgets, read-only: owners manage them on the agent's Publish page (or through
    ``runtime.channels.services`` for code agents); turning one off is an action here too."""

    list_display = ["agent_key", "enabled_badge", "origins", "publishable_key", "created_by", "updated_at"]
    list_filter = ["enabled"]
    search_fields = ["agent_key", "publishable_key"]
    list_select_related = ["created_by"]
    # the identity secret is shown on the Publish page to owners, not in the admin
    exclude = ["identity_secret"]
    readonly_fields = [f.name for f in WidgetChannel._meta.fields if f.name != "identity_secret"]
    actions = ["turn_off", "turn_on"]

    def visible_filter(self, user: Any) -> Q | None:
        return access._editable_keys_q(user, "agent_key")

    def has_manage_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_staff

    @display(description="Enabled", label={"on": "success", "off": "danger"}, ordering="enabled")
    def enabled_badge(self, channel: WidgetChannel) -> str:
        return "on" if channel.enabled else "off"

    @display(description="Allowed origins")
    def origins(self, channel: WidgetChannel) -> str:
        return ", ".join(channel.allowed_origins) or "none yet"

    def _switch(self, request: HttpRequest, queryset: QuerySet[WidgetChannel], enabled: bool) -> None:
        done = 0
        for channel in queryset:
            try:
                widget_channel_set_enabled(channel=channel, user=request.user, enabled=enabled)
                done += 1
            except ChannelError as exc:
                self.message_user(request, f"{channel.agent_key}: {exc.message}", level=messages.ERROR)
        if done:
            self.message_user(request, f"Turned {'on' if enabled else 'off'} {done} widget(s).")

    @action(description="Turn selected widgets off", permissions=["manage"])
    def turn_off(self, request: HttpRequest, queryset: QuerySet[WidgetChannel]) -> None:
        self._switch(request, queryset, False)

    @action(description="Turn selected widgets on", permissions=["manage"])
    def turn_on(self, request: HttpRequest, queryset: QuerySet[WidgetChannel]) -> None:
        self._switch(request, queryset, True)


# The API-key channel's tables (runtime/channels/admin.py).
from runtime.channels import admin as channels_admin  # noqa: E402, F401
