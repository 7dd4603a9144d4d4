"""Database-defined agents, their drafts and versions, tools and multi-agent systems.

An agent's configuration lives in one :class:`AgentDraft` that every edit
changes (bumping ``revision`` and writing an :class:`AgentDraftRevision`, so a
run pinned to ``draft:<agent>@<revision>`` executes exactly that text). Publishing
freezes the draft into an immutable numbered :class:`AgentVersion`. Rules about
what a configuration may contain live in ``builder/schema.py`` only.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.urls import reverse
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from runtime.fields import EncryptedJSONField


class Agent(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # The agent_key runs use; unique across the whole site because the registry is.
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    icon = models.CharField(max_length=16, blank=True, default="🤖")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="builder_agents"
    )
    # Denormalised from the versions so the list page needs no per-row query.
    published_version = models.ForeignKey(
        "AgentVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["owner", "-updated_at"])]
        permissions = [("own_agent", "Own the agent: publish, share, delete")]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("builder:agent-edit", args=[self.public_id])


class AgentDraft(models.Model):
    agent = models.OneToOneField(Agent, on_delete=models.CASCADE, related_name="draft")
    config = models.JSONField(default=dict)
    revision = models.PositiveIntegerField(default=1)
    # The revision the latest published version was made from; differs when changes are pending.
    published_revision = models.PositiveIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"draft of {self.agent_id} @{self.revision}"

    @property
    def has_unpublished_changes(self) -> bool:
        return self.published_revision != self.revision


class AgentDraftRevision(models.Model):
    """Every saved draft, so a playground run pinned to a revision runs exactly that text."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="draft_revisions")
    revision = models.PositiveIntegerField()
    config = models.JSONField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["agent", "-revision"]
        constraints = [models.UniqueConstraint(fields=["agent", "revision"], name="draft_revision_unique")]

    def __str__(self) -> str:
        return f"{self.agent_id}@{self.revision}"


class AgentVersion(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    config = models.JSONField()
    # Name/description at publish time, so a diff shows them too.
    name = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    note = models.CharField(max_length=500, blank=True)
    draft_revision = models.PositiveIntegerField(null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="published_agent_versions",
    )
    published_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["agent", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "number"], name="agent_version_number_unique")
        ]

    def __str__(self) -> str:
        return f"{self.agent_id} v{self.number}"

    @property
    def pin(self) -> str:
        return f"version:{self.public_id}"


class ToolKind(models.TextChoices):
    HTTP = "http", "HTTP API"
    PYTHON = "python", "Registered Python function"


class ToolDefinition(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=20, choices=ToolKind.choices, default=ToolKind.HTTP)
    # The name the model sees; unique per owner so agent configs can refer to it.
    name = models.CharField(max_length=64)
    description = models.TextField()
    spec = models.JSONField(default=dict, blank=True)
    # {NAME: value}, encrypted at rest; write-only in every UI; never exported.
    secrets = EncryptedJSONField(null=True, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="builder_tools"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="tool_name_per_owner")]
        permissions = [("own_tooldefinition", "Own the tool: share, delete")]

    def __str__(self) -> str:
        return self.name


class AgentSystem(models.Model):
    """A multi-agent system: an entry agent, members with roles, and knowledge bases they share
    (``SystemKnowledge``)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="builder_systems"
    )
    entry_agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="entry_of_systems")
    # {agent_key: "version:<uuid>"}: what a published run of this system executes.
    published_pins = models.JSONField(default=dict, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        permissions = [("own_agentsystem", "Own the system: publish, share, delete")]

    def __str__(self) -> str:
        return self.name


class SystemMember(models.Model):
    system = models.ForeignKey(AgentSystem, on_delete=models.CASCADE, related_name="members")
    # PROTECT: a system (a published one pins its members' versions) never loses a member
    # behind its back; builder.services.agent_delete says which systems to change first.
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="system_memberships")
    role = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["system", "agent__name"]
        constraints = [models.UniqueConstraint(fields=["system", "agent"], name="system_member_unique")]

    def __str__(self) -> str:
        return f"{self.agent_id} in {self.system_id}"


KNOWLEDGE_MODES = [("auto", "Automatic"), ("tool", "Search tool"), ("both", "Both")]


class KnowledgeLink(models.Model):
    """How an agent or a system uses one attached knowledge base (settings per attachment)."""

    top_k = models.PositiveSmallIntegerField(default=4)
    # auto: passages retrieved for every user message go into the prompt; tool: the model calls
    # search_knowledge when it wants to; both.
    mode = models.CharField(max_length=8, choices=KNOWLEDGE_MODES, default="auto")
    # Passages whose meaning is less similar to the question (cosine, 0..1) are left out; 0 keeps all.
    score_threshold = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True


class AgentKnowledge(KnowledgeLink):
    """A knowledge base attached to an agent: its passages are retrieved for every user message."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="knowledge_links")
    knowledge_base = models.ForeignKey(
        "rag.KnowledgeBase", on_delete=models.CASCADE, related_name="agent_links"
    )

    class Meta:
        ordering = ["agent", "knowledge_base__name"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "knowledge_base"], name="agent_knowledge_unique")
        ]

    def __str__(self) -> str:
        return f"{self.knowledge_base_id} for {self.agent_id}"


class SystemKnowledge(KnowledgeLink):
    """A knowledge base attached to a system: every member retrieves from it when run in the system.

    Like an agent's attachments, these are not versioned: they apply at once to the system's
    playground (members' drafts) and to its published runs (pinned member versions)."""

    system = models.ForeignKey(AgentSystem, on_delete=models.CASCADE, related_name="knowledge_links")
    knowledge_base = models.ForeignKey(
        "rag.KnowledgeBase", on_delete=models.CASCADE, related_name="system_links"
    )

    class Meta:
        ordering = ["system", "knowledge_base__name"]
        constraints = [
            models.UniqueConstraint(fields=["system", "knowledge_base"], name="system_knowledge_unique")
        ]

    def __str__(self) -> str:
        return f"{self.knowledge_base_id} for system {self.system_id}"


# -- sharing: roles stored as django-guardian object permissions --------------------------------
# Direct foreign-key tables (guardian's "direct" mode), one user and one group table per shareable
# model: a role is a fixed set of codenames (builder/access.py ROLES); the ``owner`` column of the
# object itself is an implicit owner role and has no rows here.


class AgentUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="user_perms")

    class Meta(UserObjectPermissionBase.Meta):
        abstract = False


class AgentGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="group_perms")

    class Meta(GroupObjectPermissionBase.Meta):
        abstract = False


class AgentSystemUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(AgentSystem, on_delete=models.CASCADE, related_name="user_perms")

    class Meta(UserObjectPermissionBase.Meta):
        abstract = False


class AgentSystemGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(AgentSystem, on_delete=models.CASCADE, related_name="group_perms")

    class Meta(GroupObjectPermissionBase.Meta):
        abstract = False


class ToolDefinitionUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(ToolDefinition, on_delete=models.CASCADE, related_name="user_perms")

    class Meta(UserObjectPermissionBase.Meta):
        abstract = False


class ToolDefinitionGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(ToolDefinition, on_delete=models.CASCADE, related_name="group_perms")

    class Meta(GroupObjectPermissionBase.Meta):
        abstract = False


class KnowledgeBaseUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(
        "rag.KnowledgeBase", on_delete=models.CASCADE, related_name="user_perms"
    )

    class Meta(UserObjectPermissionBase.Meta):
        abstract = False


class KnowledgeBaseGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(
        "rag.KnowledgeBase", on_delete=models.CASCADE, related_name="group_perms"
    )

    class Meta(GroupObjectPermissionBase.Meta):
        abstract = False


class Team(Group):
    """A Django group as the builder calls it; carries the ``manage_teams`` permission."""

    class Meta:
        proxy = True
        permissions = [("manage_teams", "Manage teams (create, add and remove members) in the builder")]


class AuditAction(models.TextChoices):
    SHARED = "shared", "Shared"
    UNSHARED = "unshared", "Unshared"
    ROLE_CHANGED = "role_changed", "Changed role"
    PUBLISHED = "published", "Published"
    RESTORED = "restored", "Restored a version"
    DELETED = "deleted", "Deleted"
    INVITED = "invited", "Invited"
    # an agent's or a system's use of a knowledge base (the base's name is the entry's subject)
    KNOWLEDGE_ATTACHED = "knowledge_attached", "Attached knowledge base"
    KNOWLEDGE_CHANGED = "knowledge_changed", "Changed knowledge base"
    KNOWLEDGE_DETACHED = "knowledge_detached", "Detached knowledge base"


class AuditEntry(models.Model):
    """Who did what to which shared object, and when. Names are copied: the entry outlives them."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=300, blank=True)
    action = models.CharField(max_length=20, choices=AuditAction.choices)
    # "agent", "system", "tool" or "knowledge", and the object's public id and name at the time
    target_kind = models.CharField(max_length=20)
    target_id = models.UUIDField()
    target_name = models.CharField(max_length=200)
    # whom a share concerned ("ana@example.com", "team Support") and the role before/after
    subject = models.CharField(max_length=300, blank=True)
    role = models.CharField(max_length=20, blank=True)
    previous_role = models.CharField(max_length=20, blank=True)
    detail = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["target_kind", "target_id", "-created_at"])]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.actor_name} {self.action} {self.target_kind} {self.target_name}"


class Invitation(models.Model):
    """An invitation by email to someone without an account: a role on one object.

    The link carries the public id signed with a timestamp (``builder/services/invitations.py``);
    it works once (``accepted_at``) and until ``expires_at``."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    email = models.EmailField()
    role = models.CharField(max_length=20)
    target_kind = models.CharField(max_length=20)
    target_id = models.UUIDField()
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["target_kind", "target_id"])]

    def __str__(self) -> str:
        return f"{self.email} as {self.role} of {self.target_kind} {self.target_id}"
