"""One access helper per resource: the object and what the user may do with it.

Roles per object (agents, systems, tools, knowledge bases): **viewer** (see it, try it in the
playground), **editor** (viewer + change the draft, its tools, knowledge and memory), **owner**
(editor + publish, share, delete). Superusers may do everything.

Where a role comes from, highest wins:

- the object's ``owner`` column: its creator is always an owner (no row needed);
- django-guardian object permissions in direct foreign-key tables (``builder.models``), for a
  user or for a team (a Django group) the user belongs to: a role is a fixed set of codenames
  (``ROLE_ACTIONS``);
- for an agent, its systems: a role on a system gives at least that role on its member agents
  while they are members.

Every screen, the admin, the REST API and the runtime ask here (the runtime and the knowledge app
through their seams, answered by ``builder/access_seams.py``). An object the user may not see is a 404, never a 403, so its
existence does not leak. Single objects and list pages read the role with the row itself
(correlated subqueries), so a page costs the same number of queries however many shares exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db.models import Case, IntegerField, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Coalesce, Greatest
from django.http import Http404

from builder.models import (
    Agent,
    AgentGroupObjectPermission,
    AgentSystem,
    AgentSystemGroupObjectPermission,
    AgentSystemUserObjectPermission,
    AgentUserObjectPermission,
    KnowledgeBaseGroupObjectPermission,
    KnowledgeBaseUserObjectPermission,
    SystemMember,
    ToolDefinition,
    ToolDefinitionGroupObjectPermission,
    ToolDefinitionUserObjectPermission,
)
from rag.models import Document, KnowledgeBase

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser
    from django.db.models import Model, QuerySet

VIEWER, EDITOR, OWNER = "viewer", "editor", "owner"
ROLES = (VIEWER, EDITOR, OWNER)
RANK = {VIEWER: 1, EDITOR: 2, OWNER: 3}
ROLE_OF_RANK = {rank: role for role, rank in RANK.items()}
# The guardian codenames a role consists of: "<action>_<model name>".
ROLE_ACTIONS = {VIEWER: ("view",), EDITOR: ("view", "change"), OWNER: ("view", "change", "own")}
ACTION_RANK = {"view": 1, "change": 2, "own": 3}

# The shareable models: their user and group permission tables, and how pages name them.
TABLES: dict[type, tuple[type, type]] = {
    Agent: (AgentUserObjectPermission, AgentGroupObjectPermission),
    AgentSystem: (AgentSystemUserObjectPermission, AgentSystemGroupObjectPermission),
    ToolDefinition: (ToolDefinitionUserObjectPermission, ToolDefinitionGroupObjectPermission),
    KnowledgeBase: (KnowledgeBaseUserObjectPermission, KnowledgeBaseGroupObjectPermission),
}
KINDS: dict[type, str] = {
    Agent: "agent",
    AgentSystem: "system",
    ToolDefinition: "tool",
    KnowledgeBase: "knowledge",
}
MODEL_OF_KIND = {kind: model for model, kind in KINDS.items()}
RANK_FIELD = "access_rank"


@dataclass(frozen=True)
class Perms:
    role: str = ""  # "viewer", "editor", "owner", or "" (none); superusers: "owner"
    view: bool = False
    test: bool = False  # run its drafts in the playground
    edit: bool = False
    publish: bool = False
    share: bool = False
    delete: bool = False

    @classmethod
    def of_rank(cls, rank: int) -> Perms:
        return cls(
            role=ROLE_OF_RANK.get(rank, ""),
            view=rank >= 1,
            test=rank >= 1,
            edit=rank >= 2,
            publish=rank >= 3,
            share=rank >= 3,
            delete=rank >= 3,
        )


FULL = Perms.of_rank(3)
NONE = Perms()


NEEDS = {
    "edit": EDITOR,
    "memory": EDITOR,
    "conversations": EDITOR,
    "publish": OWNER,
    "share": OWNER,
    "delete": OWNER,
}
VERBS = {
    "edit": "change it",
    "memory": "see or change what it remembers (people's conversations leave facts there)",
    "conversations": "read its conversations and usage (they hold what visitors typed)",
    "publish": "publish it",
    "share": "share it",
    "delete": "delete it",
}


def refusal(perms: Perms, obj: Model, action: str) -> str:
    """Why ``perms`` do not allow ``action`` ("edit", "publish", "share", "delete") on ``obj``, and
    what to do: the words every refused request shows."""
    kind = KINDS.get(type(obj), "item")
    kind = "knowledge base" if kind == "knowledge" else kind
    needed = NEEDS[action]
    who = "editors and owners" if needed == EDITOR else "owners"
    owner = getattr(obj, "owner", None)
    ask = (
        f"Ask its owner ({owner.get_full_name() or owner.get_username()})"
        if owner is not None
        else "Ask an owner"
    )
    return (
        f"You are {'an' if perms.role == EDITOR else 'a'} {perms.role or 'visitor'} of this {kind}: only {who} "
        f"may {VERBS[action]}. {ask} for the {needed} role. Nothing was changed."
    )


def codename(action: str, model: type) -> str:
    return f"{action}_{model._meta.model_name}"


# -- the role of one user on rows of a queryset -------------------------------------------------


def _rank_in(table: type, model: type, ref: str, **who: Any) -> Subquery:
    """The highest rank ``table`` grants ``who`` on the outer row's object ``ref``."""
    ranks = [When(permission__codename=codename(a, model), then=Value(r)) for a, r in ACTION_RANK.items()]
    rows = (
        table.objects.filter(content_object=OuterRef(ref), **who)
        .annotate(r=Case(*ranks, default=Value(0), output_field=IntegerField()))
        .order_by("-r")
        .values("r")[:1]
    )
    return Coalesce(Subquery(rows, output_field=IntegerField()), Value(0))


def rank_expression(model: type, user: AbstractBaseUser, path: str = "") -> Any:
    """The user's rank (0-3) on the ``model`` object at ``path`` ("" or e.g. ``"system__"``)."""
    ref = path[:-2] if path else "pk"
    user_table, group_table = TABLES[model]
    parts = [
        Case(
            When(**{f"{path}owner_id": user.pk}, then=Value(3)), default=Value(0), output_field=IntegerField()
        ),
        _rank_in(user_table, model, ref, user_id=user.pk),
        _rank_in(group_table, model, ref, group__user=user.pk),
    ]
    if model is Agent:
        inherited = (
            SystemMember.objects.filter(agent=OuterRef(ref))
            .annotate(r=rank_expression(AgentSystem, user, "system__"))
            .order_by("-r")
            .values("r")[:1]
        )
        parts.append(Coalesce(Subquery(inherited, output_field=IntegerField()), Value(0)))
    return Greatest(*parts)


def with_role(user: AbstractBaseUser, queryset: QuerySet) -> QuerySet:
    """``queryset`` with each row's ``access_rank`` for ``user`` (what ``perms_for`` reads)."""
    if not getattr(user, "is_staff", False) or queryset.model not in TABLES:
        return queryset
    return queryset.annotate(**{RANK_FIELD: rank_expression(queryset.model, user)})


def _codename_rank(codenames: Any) -> int:
    return max((ACTION_RANK.get(name.split("_", 1)[0], 0) for name in codenames), default=0)


def _granted_rank(model: type, user: AbstractBaseUser, pks: list[Any]) -> int:
    """The highest role rows grant ``user`` (directly or through a team) on ``model`` rows ``pks``:
    one plain query (the annotation above costs more to build than to run, for a single row)."""
    user_table, group_table = TABLES[model]
    direct = user_table.objects.filter(content_object_id__in=pks, user_id=user.pk)
    teams = group_table.objects.filter(content_object_id__in=pks, group__user=user.pk)
    names = direct.values_list("permission__codename", flat=True).union(
        teams.values_list("permission__codename", flat=True), all=True
    )
    return _codename_rank(names)


def rank_of_row(model: type, user: AbstractBaseUser, pk: Any, owner_id: Any) -> int:
    """What ``rank_expression`` computes, for one object, in two or three small queries."""
    if owner_id == user.pk:
        return 3
    rank = _granted_rank(model, user, [pk])
    if model is Agent and rank < 3:
        systems = list(SystemMember.objects.filter(agent_id=pk).values_list("system_id", "system__owner_id"))
        if any(owner == user.pk for _, owner in systems):
            return 3
        if systems:
            rank = max(rank, _granted_rank(AgentSystem, user, [system for system, _ in systems]))
    return rank


def _granted_ranks(model: type, user: AbstractBaseUser, pks: Any) -> dict[Any, int]:
    """Per row of ``pks`` (a list or a subquery): the highest role granted to ``user`` directly or
    through a team."""
    user_table, group_table = TABLES[model]
    direct = user_table.objects.filter(content_object_id__in=pks, user_id=user.pk)
    teams = group_table.objects.filter(content_object_id__in=pks, group__user=user.pk)
    rows = direct.values_list("content_object_id", "permission__codename").union(
        teams.values_list("content_object_id", "permission__codename"), all=True
    )
    ranks: dict[Any, int] = {}
    for pk, name in rows:
        ranks[pk] = max(ranks.get(pk, 0), _codename_rank([name]))
    return ranks


def attach_roles(user: AbstractBaseUser, objs: list[Model]) -> list[Model]:
    """Set each object's ``access_rank`` (what ``perms_for`` and the list pages read) for a page of
    rows, in two queries (five for agents) however many rows and shares: cheaper to build than the
    ``with_role`` annotation."""
    if not objs or not getattr(user, "is_staff", False):
        return objs
    model = type(objs[0])
    pending = [o.pk for o in objs if o.owner_id != user.pk]
    ranks = _granted_ranks(model, user, pending) if pending else {}
    if model is Agent and pending:
        memberships = SystemMember.objects.filter(agent_id__in=pending)
        members = list(memberships.values_list("agent_id", "system_id", "system__owner_id"))
        # a subquery, so the number of queries does not depend on whether there are members
        granted = _granted_ranks(AgentSystem, user, memberships.values("system_id"))
        for agent_id, system_id, owner_id in members:
            system_rank = 3 if owner_id == user.pk else granted.get(system_id, 0)
            ranks[agent_id] = max(ranks.get(agent_id, 0), system_rank)
    for obj in objs:
        setattr(obj, RANK_FIELD, 3 if obj.owner_id == user.pk else ranks.get(obj.pk, 0))
    return objs


def rank_of(user: AbstractBaseUser, obj: Model) -> int:
    if not getattr(user, "is_staff", False) or not getattr(user, "is_active", True):
        return 0
    if type(obj) not in TABLES:
        raise TypeError(f"{type(obj).__name__} is not shareable")
    rank = getattr(obj, RANK_FIELD, None)
    if rank is None:
        rank = rank_of_row(type(obj), user, obj.pk, getattr(obj, "owner_id", None))
        setattr(obj, RANK_FIELD, rank)
    return rank or 0


def perms_for(user: AbstractBaseUser, obj: Model) -> Perms:
    if not getattr(user, "is_staff", False) or not getattr(user, "is_active", True):
        return NONE
    if user.is_superuser:
        return FULL
    return Perms.of_rank(rank_of(user, obj))


def role_label(user: AbstractBaseUser, obj: Model) -> str:
    """What list pages show: the user's role, "admin" for a superuser's view of others' objects."""
    rank = getattr(obj, RANK_FIELD, None)
    if rank is None:
        rank = rank_of(user, obj)
    if not rank and getattr(user, "is_superuser", False):
        return "admin"
    return ROLE_OF_RANK.get(rank, "")


# -- which rows a user may see ------------------------------------------------------------------


def shared_q(model: type, user: AbstractBaseUser, *, min_rank: int = 1, path: str = "") -> Q:
    """Rows shared with ``user`` (directly, through a team or, for agents, a system), owner aside."""
    user_table, group_table = TABLES[model]
    codenames = [codename(a, model) for a, r in ACTION_RANK.items() if r >= min_rank]
    q = Q(
        **{
            f"{path}pk__in": user_table.objects.filter(
                user_id=user.pk, permission__codename__in=codenames
            ).values("content_object_id")
        }
    ) | Q(
        **{
            f"{path}pk__in": group_table.objects.filter(
                group__user=user.pk, permission__codename__in=codenames
            ).values("content_object_id")
        }
    )
    if model is Agent:
        systems = AgentSystem.objects.filter(visible_q(AgentSystem, user, min_rank=min_rank))
        q |= Q(**{f"{path}pk__in": SystemMember.objects.filter(system__in=systems).values("agent_id")})
    return q


def visible_q(model: type, user: AbstractBaseUser, *, min_rank: int = 1, path: str = "") -> Q:
    return Q(**{f"{path}owner_id": user.pk}) | shared_q(model, user, min_rank=min_rank, path=path)


def _model_at(model: type, path: str) -> type:
    for part in [p for p in path.split("__") if p]:
        model = model._meta.get_field(part).related_model
    return model


def visible_to(
    user: AbstractBaseUser, queryset: QuerySet, *, owner_field: str = "owner", min_role: str = VIEWER
) -> QuerySet:
    """Rows of ``queryset`` the user may see (the list-page counterpart of ``perms_for``), or, with
    ``min_role``, those where their role is at least that; ``owner_field`` is the path to the
    owner, e.g. ``agent__owner`` for versions."""
    if not getattr(user, "is_staff", False) or not getattr(user, "is_active", True):
        return queryset.none()
    if user.is_superuser:
        return queryset
    path = owner_field[: -len("owner")]
    model = _model_at(queryset.model, path)
    if model not in TABLES:
        return queryset.filter(**{owner_field: user})
    return queryset.filter(visible_q(model, user, min_rank=RANK[min_role], path=path))


def shared_with(user: AbstractBaseUser, queryset: QuerySet) -> QuerySet:
    """Rows others shared with ``user`` ("Shared with me"): not their own, a role through a share."""
    if not getattr(user, "is_staff", False):
        return queryset.none()
    return queryset.filter(shared_q(queryset.model, user)).exclude(owner_id=user.pk)


# -- one object, or a 404 ----------------------------------------------------------------------


def _get(user: AbstractBaseUser, queryset: QuerySet, public_id: object) -> tuple[Model, Perms]:
    try:
        obj = queryset.get(public_id=public_id)
    except (queryset.model.DoesNotExist, ValueError, TypeError):
        raise Http404("Not found.") from None
    perms = perms_for(user, obj)
    if not perms.view:
        raise Http404("Not found.")
    return obj, perms


def get_agent_for_user(user: AbstractBaseUser, public_id: object) -> tuple[Agent, Perms]:
    return _get(user, Agent.objects.select_related("draft", "published_version", "owner"), public_id)


def get_tool_for_user(user: AbstractBaseUser, public_id: object) -> tuple[ToolDefinition, Perms]:
    return _get(user, ToolDefinition.objects.select_related("owner"), public_id)


def get_system_for_user(user: AbstractBaseUser, public_id: object) -> tuple[AgentSystem, Perms]:
    return _get(user, AgentSystem.objects.select_related("entry_agent", "owner"), public_id)


def get_knowledge_base_for_user(user: AbstractBaseUser, public_id: object) -> tuple[KnowledgeBase, Perms]:
    return _get(user, KnowledgeBase.objects.select_related("owner"), public_id)


def get_document_for_user(
    user: AbstractBaseUser, base_id: object, public_id: object
) -> tuple[Document, Perms]:
    """A document of a knowledge base the user may see (its permissions are the base's)."""
    base, perms = get_knowledge_base_for_user(user, base_id)
    try:
        return base.documents.select_related("knowledge_base").get(public_id=public_id), perms
    except (Document.DoesNotExist, ValueError, TypeError):
        raise Http404("Not found.") from None


def get_shareable_for_user(user: AbstractBaseUser, kind: str, public_id: object) -> tuple[Model, Perms]:
    getter = {
        "agent": get_agent_for_user,
        "system": get_system_for_user,
        "tool": get_tool_for_user,
        "knowledge": get_knowledge_base_for_user,
    }.get(kind)
    if getter is None:
        raise Http404("Not found.")
    return getter(user, public_id)
