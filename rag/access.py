"""Who may see and change which knowledge base: rag's one seam to the app that shares them.

rag must not import the builder. The builder registers a :class:`KnowledgeAccess` in its
``AppConfig.ready`` (``set_knowledge_access``) answering from ``builder/access.py``: viewers see a
base and search it, editors also upload and delete documents, owners also delete the base.
Without one, a staff user sees the bases they created; superusers see all.
"""

from __future__ import annotations

from typing import Any, Protocol

from django.db.models import QuerySet

ROLES = ("viewer", "editor", "owner")


class KnowledgeAccess(Protocol):
    def visible(self, user: Any, queryset: QuerySet, *, owner_field: str, min_role: str) -> QuerySet:
        """Rows of ``queryset`` (bases, or rows reaching one through ``owner_field``) where
        ``user``'s role is at least ``min_role``."""

    def deleted(self, user: Any, base: Any) -> None:
        """``user`` is deleting ``base`` (through the API or the admin): record it."""


_access: KnowledgeAccess | None = None


def set_knowledge_access(access: KnowledgeAccess | None) -> None:
    global _access
    _access = access


def visible_bases(
    user: Any, queryset: QuerySet, *, owner_field: str = "owner", min_role: str = "viewer"
) -> QuerySet:
    if not (getattr(user, "is_active", False) and getattr(user, "is_staff", False)):
        return queryset.none()
    if user.is_superuser:
        return queryset
    if _access is None:
        return queryset.filter(**{owner_field: user})
    return _access.visible(user, queryset, owner_field=owner_field, min_role=min_role)


def has_role(user: Any, base: Any, min_role: str) -> bool:
    return visible_bases(user, type(base).objects.filter(pk=base.pk), min_role=min_role).exists()


def record_deleted(user: Any, base: Any) -> None:
    """Tell the sharing app who deleted a base (its audit log); nothing happens without one."""
    hook = getattr(_access, "deleted", None)
    if hook is not None:
        hook(user, base)
