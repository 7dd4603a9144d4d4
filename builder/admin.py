"""Unfold admin for builder models; publishing calls the same service as the builder screens."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from unfold.admin import ModelAdmin, TabularInline
from unfold.decorators import action, display

from builder.models import (
    Agent,
    AgentDraft,
    AgentDraftRevision,
    AgentSystem,
    AgentVersion,
    SystemMember,
    ToolDefinition,
)
from builder.schema import ConfigError
from builder.services import agent_publish
from builder.services.systems import system_publish


class ReadOnlyInline(TabularInline):
    extra = 0

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class VersionInline(ReadOnlyInline):
    model = AgentVersion
    fields = ["number", "note", "published_by", "published_at"]
    readonly_fields = fields
    ordering = ["-number"]
    per_page = 20


def _publish(modeladmin: ModelAdmin, request: HttpRequest, agents: QuerySet[Agent]) -> None:
    for agent in agents:
        try:
            version = agent_publish(agent=agent, user=request.user, note="Published from the admin")
            modeladmin.message_user(request, f"{agent.name}: published version {version.number}.")
        except ConfigError as exc:
            modeladmin.message_user(
                request, f"{agent.name}: {' '.join(exc.errors.values())}", level=messages.WARNING
            )


@admin.register(Agent)
class AgentAdmin(ModelAdmin):
    list_display = ["name", "slug", "status_badge", "owner", "updated_at"]
    list_filter = ["owner"]
    search_fields = ["name", "slug", "description"]
    list_select_related = ["owner", "published_version", "draft"]
    readonly_fields = ["public_id", "slug", "published_version", "created_at", "updated_at"]
    fields = [
        "public_id",
        "slug",
        "name",
        "description",
        "icon",
        "owner",
        "published_version",
        "created_at",
        "updated_at",
    ]
    inlines = [VersionInline]
    actions = ["publish_agents"]
    actions_detail = ["publish_agent"]

    @display(description="Status", label={"published": "success", "changes pending": "warning", "draft": ""})
    def status_badge(self, agent: Agent) -> str:
        if agent.published_version_id is None:
            return "draft"
        return "changes pending" if agent.draft.has_unpublished_changes else "published"

    @action(description="Publish the drafts of selected agents")
    def publish_agents(self, request: HttpRequest, queryset: QuerySet[Agent]) -> None:
        _publish(self, request, queryset)

    @action(description="Publish draft", url_path="publish")
    def publish_agent(self, request: HttpRequest, object_id: str) -> HttpResponseRedirect:
        _publish(self, request, Agent.objects.filter(pk=object_id))
        return HttpResponseRedirect(reverse("admin:builder_agent_change", args=[object_id]))


@admin.register(AgentDraft)
class AgentDraftAdmin(ModelAdmin):
    list_display = ["agent", "revision", "published_revision", "updated_at"]
    list_select_related = ["agent"]
    # Edits go through the builder's editor, which validates and records a revision.
    readonly_fields = ["agent", "config", "revision", "published_revision", "updated_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(AgentDraftRevision)
class AgentDraftRevisionAdmin(ModelAdmin):
    list_display = ["agent", "revision", "created_by", "created_at"]
    list_select_related = ["agent", "created_by"]
    readonly_fields = ["agent", "revision", "config", "created_by", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(AgentVersion)
class AgentVersionAdmin(ModelAdmin):
    list_display = ["agent", "number", "note", "published_by", "published_at"]
    list_select_related = ["agent", "published_by"]
    search_fields = ["agent__slug", "note"]
    readonly_fields = [
        "public_id",
        "agent",
        "number",
        "config",
        "name",
        "description",
        "note",
        "draft_revision",
        "published_by",
        "published_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # versions are immutable


@admin.register(ToolDefinition)
class ToolDefinitionAdmin(ModelAdmin):
    list_display = ["name", "kind_badge", "owner", "updated_at"]
    list_filter = ["kind"]
    search_fields = ["name", "description"]
    list_select_related = ["owner"]
    # Secrets are write-only and set in the builder's tool form; the admin never shows them.
    exclude = ["secrets"]
    readonly_fields = ["public_id", "created_at", "updated_at"]

    @display(description="Kind", label=True)
    def kind_badge(self, tool: ToolDefinition) -> str:
        return tool.get_kind_display()


class MemberInline(TabularInline):
    model = SystemMember
    extra = 0
    fields = ["agent", "role"]
    autocomplete_fields = ["agent"]


@admin.register(AgentSystem)
class AgentSystemAdmin(ModelAdmin):
    list_display = ["name", "slug", "entry_agent", "published_badge", "owner"]
    search_fields = ["name", "slug"]
    list_select_related = ["entry_agent", "owner"]
    readonly_fields = [
        "public_id",
        "published_pins",
        "published_at",
        "published_by",
        "created_at",
        "updated_at",
    ]
    inlines = [MemberInline]
    actions_detail = ["publish_system"]

    @display(description="Published", label={"published": "success", "never": ""})
    def published_badge(self, system: AgentSystem) -> str:
        return "published" if system.published_at else "never"

    @action(description="Publish (pin member versions)", url_path="publish")
    def publish_system(self, request: HttpRequest, object_id: str) -> HttpResponseRedirect:
        system = AgentSystem.objects.get(pk=object_id)
        pins = system_publish(system=system, user=request.user)
        self.message_user(request, f"Published {system.name}; pinned {len(pins)} member version(s).")
        return HttpResponseRedirect(reverse("admin:builder_agentsystem_change", args=[object_id]))


@admin.register(SystemMember)
class SystemMemberAdmin(ModelAdmin):
    list_display = ["system", "agent", "role"]
    list_select_related = ["system", "agent"]
