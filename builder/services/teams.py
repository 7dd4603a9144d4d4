"""Teams are Django groups; people with ``builder.manage_teams`` (or superusers) manage them in the
builder. Sharing with a team gives its members the role (``builder.access``)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction

from builder.schema import ConfigError
from builder.services.sharing import find_colleague, person_name

MAX_NAME = 150


def may_manage_teams(user: Any) -> bool:
    return bool(
        getattr(user, "is_active", False)
        and getattr(user, "is_staff", False)
        and (user.is_superuser or user.has_perm("builder.manage_teams"))
    )


@transaction.atomic
def team_create(*, name: str) -> Group:
    name = (name or "").strip()
    if not name:
        raise ConfigError({"name": "Give the team a name, e.g. Support."})
    if len(name) > MAX_NAME:
        raise ConfigError({"name": f"Keep the name to {MAX_NAME} characters or fewer."})
    if Group.objects.filter(name__iexact=name).exists():
        raise ConfigError({"name": f"A team called {name} already exists; add people to it instead."})
    try:
        with transaction.atomic():
            return Group.objects.create(name=name)
    except IntegrityError:
        raise ConfigError(
            {"name": f"A team called {name} already exists; add people to it instead."}
        ) from None


@transaction.atomic
def team_add_member(*, team: Group, person: str) -> Any:
    try:
        user = find_colleague(person)
    except ConfigError as exc:
        raise ConfigError({f"person:{team.pk}": exc.errors["person"]}) from None
    if team.user_set.filter(pk=user.pk).exists():
        raise ConfigError({f"person:{team.pk}": f"{person_name(user)} is already in {team.name}."})
    team.user_set.add(user)
    return user


@transaction.atomic
def team_remove_member(*, team: Group, user: Any) -> None:
    team.user_set.remove(user)
