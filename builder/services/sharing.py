"""Sharing: give a colleague or a team a role on an object, change it, take it away; the audit log.

A role is stored as django-guardian object permissions (``builder.access.ROLE_ACTIONS``) in the
object's direct permission tables. The creator (the object's ``owner`` column) is always an owner
and has no rows: that is how an object keeps at least one owner whatever else changes. Who may
share is the caller's check (``Perms.share``, owners only); these services check the request
itself and raise ``ConfigError`` naming the field, changing nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models import Q

from builder.access import (
    ACTION_RANK,
    KINDS,
    RANK,
    ROLE_ACTIONS,
    ROLE_OF_RANK,
    ROLES,
    TABLES,
    codename,
)
from builder.models import AuditAction, AuditEntry
from builder.schema import ConfigError

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser
    from django.db.models import Model, QuerySet

MIN_SEARCH = 2
MAX_RESULTS = 10


def person_name(user: Any) -> str:
    full = user.get_full_name() if hasattr(user, "get_full_name") else ""
    email = getattr(user, "email", "")
    label = full or user.get_username()
    return f"{label} <{email}>" if email and email != label else label


def audit_record(
    *,
    actor: AbstractBaseUser | None,
    action: str,
    obj: Model,
    subject: str = "",
    role: str = "",
    previous_role: str = "",
    detail: str = "",
) -> AuditEntry:
    return AuditEntry.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        actor_name=person_name(actor) if getattr(actor, "pk", None) else "system",
        action=action,
        target_kind=KINDS[type(obj)],
        target_id=obj.public_id,
        target_name=str(obj)[:200],
        subject=subject[:300],
        role=role,
        previous_role=previous_role,
        detail=detail[:500],
    )


def audit_for(obj: Model) -> QuerySet[AuditEntry]:
    return AuditEntry.objects.filter(target_kind=KINDS[type(obj)], target_id=obj.public_id)


# -- who has which role -------------------------------------------------------------------------


@dataclass
class Share:
    kind: str  # "user" or "team"
    subject: Any  # a User or a Group
    role: str
    creator: bool = False

    @property
    def key(self) -> str:
        return f"{self.kind}-{self.subject.pk}"

    @property
    def label(self) -> str:
        return person_name(self.subject) if self.kind == "user" else f"Team {self.subject.name}"


def _role_of(codenames: set[str], model: type) -> str:
    rank = max((r for a, r in ACTION_RANK.items() if codename(a, model) in codenames), default=0)
    return ROLE_OF_RANK.get(rank, "")


def shares_of(obj: Model) -> list[Share]:
    """The creator first, then people, then teams, each with their role (three queries)."""
    model = type(obj)
    user_table, group_table = TABLES[model]
    shares = [Share("user", obj.owner, "owner", creator=True)]
    people: dict[int, tuple[Any, set[str]]] = {}
    for row in user_table.objects.filter(content_object=obj).select_related("user", "permission"):
        people.setdefault(row.user_id, (row.user, set()))[1].add(row.permission.codename)
    for user, codenames in sorted(people.values(), key=lambda p: person_name(p[0]).lower()):
        if user.pk != obj.owner_id:
            shares.append(Share("user", user, _role_of(codenames, model)))
    teams: dict[int, tuple[Any, set[str]]] = {}
    for row in group_table.objects.filter(content_object=obj).select_related("group", "permission"):
        teams.setdefault(row.group_id, (row.group, set()))[1].add(row.permission.codename)
    for group, codenames in sorted(teams.values(), key=lambda t: t[0].name.lower()):
        shares.append(Share("team", group, _role_of(codenames, model)))
    return shares


def _current_role(obj: Model, *, user: Any = None, group: Any = None) -> str:
    model = type(obj)
    user_table, group_table = TABLES[model]
    rows = (
        user_table.objects.filter(content_object=obj, user=user)
        if user is not None
        else group_table.objects.filter(content_object=obj, group=group)
    )
    return _role_of(set(rows.values_list("permission__codename", flat=True)), model)


def _write_role(obj: Model, *, role: str, user: Any = None, group: Any = None) -> None:
    model = type(obj)
    user_table, group_table = TABLES[model]
    table, who = (user_table, {"user": user}) if user is not None else (group_table, {"group": group})
    table.objects.filter(content_object=obj, **who).delete()
    if not role:
        return
    wanted = [codename(a, model) for a in ROLE_ACTIONS[role]]
    # by app label and model name, not a cached ContentType id (a flushed test database renumbers them)
    permissions = list(
        Permission.objects.filter(
            content_type__app_label=model._meta.app_label,
            content_type__model=model._meta.model_name,
            codename__in=wanted,
        )
    )
    if len(permissions) != len(wanted):
        raise RuntimeError(f"Permissions {wanted} are missing: run `manage.py migrate`.")
    table.objects.bulk_create([table(content_object=obj, permission=p, **who) for p in permissions])


# -- finding whom to share with -----------------------------------------------------------------


def colleague_search(*, actor: AbstractBaseUser, q: str) -> list[Any]:
    """Active staff matching ``q`` by name, username or email: at most 10, never the whole list."""
    q = q.strip()
    if len(q) < MIN_SEARCH:
        return []
    terms = Q()
    for word in q.split()[:4]:
        terms &= (
            Q(username__icontains=word)
            | Q(first_name__icontains=word)
            | Q(last_name__icontains=word)
            | Q(email__icontains=word)
        )
    users = get_user_model().objects.filter(terms, is_active=True, is_staff=True).exclude(pk=actor.pk)
    return list(users.order_by("first_name", "last_name", "username")[:MAX_RESULTS])


def find_colleague(text: str) -> Any:
    """The active staff user named by ``text`` (username or exact email), or a ConfigError."""
    text = (text or "").strip()
    if not text:
        raise ConfigError({"person": "Type a colleague's name or email, then pick them from the list."})
    User = get_user_model()
    found = list(User.objects.filter(Q(username__iexact=text) | Q(email__iexact=text))[:2])
    if len(found) != 1:
        raise ConfigError(
            {
                "person": f"No colleague is called {text!r}; pick someone from the list, or invite them by email."
            }
        )
    user = found[0]
    if not user.is_active:
        raise ConfigError({"person": f"{person_name(user)}'s account is deactivated; ask an administrator."})
    if not user.is_staff:
        raise ConfigError({"person": f"{person_name(user)} cannot use the builder (not a staff account)."})
    return user


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ConfigError({"role": "Choose a role: viewer, editor or owner."})


# -- the verbs ----------------------------------------------------------------------------------


@transaction.atomic
def share_add(
    *, obj: Model, actor: AbstractBaseUser, role: str, user: Any = None, group: Group | None = None
) -> Share:
    """Give ``user`` or ``group`` (a team) ``role`` on ``obj``; refused if they already have one."""
    _check_role(role)
    kind = type(obj)._meta.verbose_name
    if user is not None:
        if user.pk == actor.pk:
            raise ConfigError({"person": f"You already have access to this {kind}; pick a colleague."})
        if user.pk == obj.owner_id:
            raise ConfigError({"person": f"{person_name(user)} created this {kind} and is already an owner."})
        if not (user.is_active and user.is_staff):
            raise ConfigError(
                {"person": f"{person_name(user)} cannot use the builder (inactive or not staff)."}
            )
    current = _current_role(obj, user=user, group=group)
    share = Share("user" if user is not None else "team", user if user is not None else group, role)
    if current:
        raise ConfigError(
            {
                "person": f"{share.label} is already {_article(current)} {current}; change their role in the list."
            }
        )
    _write_role(obj, role=role, user=user, group=group)
    audit_record(actor=actor, action=AuditAction.SHARED, obj=obj, subject=share.label, role=role)
    return share


def _article(role: str) -> str:
    return "an" if role[0] in "aeiou" else "a"


@transaction.atomic
def share_change(
    *, obj: Model, actor: AbstractBaseUser, role: str, user: Any = None, group: Group | None = None
) -> None:
    _check_role(role)
    _not_creator(obj, user)
    current = _current_role(obj, user=user, group=group)
    label = person_name(user) if user is not None else f"Team {group.name}"  # type: ignore[union-attr]
    if not current:
        raise ConfigError({"role": f"{label} no longer has a role here; reload the page."})
    if current == role:
        return
    _write_role(obj, role=role, user=user, group=group)
    audit_record(
        actor=actor, action=AuditAction.ROLE_CHANGED, obj=obj, subject=label, role=role, previous_role=current
    )


@transaction.atomic
def share_remove(
    *, obj: Model, actor: AbstractBaseUser, user: Any = None, group: Group | None = None
) -> None:
    _not_creator(obj, user)
    current = _current_role(obj, user=user, group=group)
    label = person_name(user) if user is not None else f"Team {group.name}"  # type: ignore[union-attr]
    if not current:
        return  # already gone: removing twice changes nothing
    _write_role(obj, role="", user=user, group=group)
    audit_record(actor=actor, action=AuditAction.UNSHARED, obj=obj, subject=label, previous_role=current)


def _not_creator(obj: Model, user: Any) -> None:
    if user is not None and user.pk == obj.owner_id:
        kind = type(obj)._meta.verbose_name
        raise ConfigError(
            {
                "role": f"{person_name(user)} created this {kind} and stays its owner, so it always keeps "
                "one owner; make others owners alongside them instead."
            }
        )


def rank_value(role: str) -> int:
    return RANK.get(role, 0)
