"""Unfold admin for builder models; publishing calls the same service as the builder screens.

Every page goes through ``builder/access.py``: a staff user sees and changes only what the builder
would let them (superusers everything); publishing is a POST checked on each object.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest
from unfold.admin import ModelAdmin, TabularInline
from unfold.decorators import action, display

from builder.access import KINDS, RANK_FIELD, ROLE_OF_RANK, Perms, perms_for, visible_q, visible_to, with_role
from builder.models import (
    Agent,
    AgentDraft,
    AgentDraftRevision,
    AgentSystem,
    AgentVersion,
    AuditAction,
    AuditEntry,
    SystemMember,
    ToolDefinition,
)
from builder.schema import ConfigError
from builder.services import agent_publish
from builder.services.sharing import audit_record
from builder.services.systems import system_publish
from runtime.admin_support import ReadOnlyMixin, VisibleRowsMixin, confirmed_action


class OwnedAdmin(VisibleRowsMixin, ModelAdmin):
    """Rows and permissions from the builder's access helper, not Django's model permissions."""

    owner_field = "owner"  # path to the owner, e.g. "agent__owner" for versions

    def owning(self, obj: Any) -> Model:
        """The object whose owner decides (the version's agent, the member's system)."""
        for part in self.owner_field.split("__")[:-1]:
            obj = getattr(obj, part)
        return obj

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        rows = visible_to(request.user, ModelAdmin.get_queryset(self, request), owner_field=self.owner_field)
        return with_role(request.user, rows)  # shareable models: each row's role, in the same query

    @display(description="Your role", label=True)
    def your_role(self, obj: Any) -> str:
        # rows with no role at all are shown to superusers only
        return ROLE_OF_RANK.get(getattr(obj, RANK_FIELD, 0) or 0, "admin")

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self._audit_delete(request, [obj])
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._audit_delete(request, list(queryset))
        super().delete_queryset(request, queryset)

    def _audit_delete(self, request: HttpRequest, objs: list[Any]) -> None:
        for obj in objs:
            if type(obj) in KINDS:
                audit_record(actor=request.user, action=AuditAction.DELETED, obj=obj, detail="from the admin")

    def perms(self, request: HttpRequest, obj: Any) -> Perms | None:
        obj = self.resolve(request, obj)
        return None if obj is None else perms_for(request.user, self.owning(obj))

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        perms = self.perms(request, obj)
        return request.user.is_staff if perms is None else perms.edit

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        perms = self.perms(request, obj)
        return request.user.is_staff if perms is None else perms.delete

    def has_publish_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        perms = self.perms(request, obj)  # None: the changelist, or an id the action reports missing
        return request.user.is_staff if perms is None else perms.publish

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser  # others create in the builder, which validates and records drafts

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser and "owner" in {f.name for f in self.model._meta.fields}:
            fields.append("owner")  # handing an object to someone else is for superusers
        return fields

    def get_list_filter(self, request: HttpRequest) -> list[Any]:
        filters = list(super().get_list_filter(request))
        # an owner filter would list every user's name; one's own rows have one owner anyway
        return filters if request.user.is_superuser else [f for f in filters if f != "owner"]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.related_model in (Agent, AgentSystem):
            kwargs["queryset"] = visible_to(request.user, db_field.related_model.objects.all())
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ReadOnlyInline(ReadOnlyMixin, TabularInline):
    extra = 0


class VersionInline(ReadOnlyInline):
    model = AgentVersion
    fields = ["number", "note", "published_by", "published_at"]
    readonly_fields = fields
    ordering = ["-number"]
    per_page = 20


def _publish(modeladmin: ModelAdmin, request: HttpRequest, agents: Any) -> None:
    for agent in agents:
        if not perms_for(request.user, agent).publish:
            modeladmin.message_user(request, f"{agent.name}: you may not publish it.", level=messages.WARNING)
            continue
        try:
            version = agent_publish(agent=agent, user=request.user, note="Published from the admin")
            modeladmin.message_user(request, f"{agent.name}: published version {version.number}.")
        except ConfigError as exc:
            modeladmin.message_user(
                request, f"{agent.name}: {' '.join(exc.errors.values())}", level=messages.WARNING
            )


@admin.register(Agent)
class AgentAdmin(OwnedAdmin):
    list_display = ["name", "slug", "status_badge", "owner", "your_role", "updated_at"]
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

    @action(description="Publish the drafts of selected agents", permissions=["publish"])
    def publish_agents(self, request: HttpRequest, queryset: QuerySet[Agent]) -> None:
        _publish(self, request, queryset)

    @confirmed_action(
        description="Publish draft",
        url_path="publish",
        permission="publish",
        question="Publish the saved draft of {obj.name} as its next version?",
    )
    def publish_agent(self, request: HttpRequest, agent: Agent) -> None:
        _publish(self, request, [agent])


@admin.register(AgentDraft)
class AgentDraftAdmin(OwnedAdmin):
    owner_field = "agent__owner"
    list_display = ["agent", "revision", "published_revision", "updated_at"]
    list_select_related = ["agent"]
    # Edits go through the builder's editor, which validates and records a revision.
    readonly_fields = ["agent", "config", "revision", "published_revision", "updated_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(AgentDraftRevision)
class AgentDraftRevisionAdmin(OwnedAdmin):
    owner_field = "agent__owner"
    list_display = ["agent", "revision", "created_by", "created_at"]
    list_select_related = ["agent", "created_by"]
    readonly_fields = ["agent", "revision", "config", "created_by", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(AgentVersion)
class AgentVersionAdmin(OwnedAdmin):
    owner_field = "agent__owner"
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
class ToolDefinitionAdmin(OwnedAdmin):
    list_display = ["name", "kind_badge", "owner", "your_role", "updated_at"]
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
class AgentSystemAdmin(OwnedAdmin):
    list_display = ["name", "slug", "entry_agent", "published_badge", "owner", "your_role"]
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

    @confirmed_action(
        description="Publish (pin member versions)",
        url_path="publish",
        permission="publish",
        question="Publish {obj.name}, pinning every member to its current version?",
    )
    def publish_system(self, request: HttpRequest, system: AgentSystem) -> None:
        try:
            pins = system_publish(system=system, user=request.user)
        except ConfigError as exc:
            self.message_user(
                request, f"{system.name}: {' '.join(exc.errors.values())}", level=messages.WARNING
            )
            return
        self.message_user(request, f"Published {system.name}; pinned {len(pins)} member version(s).")


@admin.register(SystemMember)
class SystemMemberAdmin(OwnedAdmin):
    owner_field = "system__owner"
    list_display = ["system", "agent", "role"]
    list_select_related = ["system", "agent"]


@admin.register(AuditEntry)
class AuditEntryAdmin(VisibleRowsMixin, ModelAdmin):
    """Who shared, unshared, changed a role, published, restored, deleted, or attached, changed or
    detached a knowledge base of an agent or system, and what. Read-only; a staff
    user sees the entries of objects they may see (deleted objects: entries they wrote themselves)."""

    list_display = [
        "created_at",
        "actor_name",
        "action_badge",
        "target_kind",
        "target_name",
        "subject",
        "role",
        "detail",
    ]
    list_filter = ["action", "target_kind", "created_at"]
    search_fields = ["target_name", "actor_name", "subject", "detail"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in AuditEntry._meta.fields]

    def visible_filter(self, user: Any) -> Q:
        q = Q(actor=user)
        for model, kind in KINDS.items():
            ids = model.objects.filter(visible_q(model, user)).values("public_id")
            q |= Q(target_kind=kind, target_id__in=ids)
        return q

    @display(
        description="Action",
        label={
            "deleted": "danger",
            "published": "success",
            "unshared": "warning",
            "knowledge_detached": "warning",
        },
    )
    def action_badge(self, entry: AuditEntry) -> str:
        return entry.action

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
