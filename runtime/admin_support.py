"""What every admin page of this project shares: rows filtered per user, state changes as POSTs.

``confirmed_action`` makes an Unfold detail action safe: a GET only shows a confirmation page
whose button POSTs (with Django's CSRF token, which the admin checks on every POST); the object
is looked up through the admin's own filtered queryset, so a missing or invisible pk gets the
admin's "does not exist" message, and the action's permission is checked on that object.
Changelist actions are POSTs already; their querysets come from the same filtered queryset.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, wraps
from typing import Any

from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Model, Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from unfold.admin import ModelAdmin, checkbox
from unfold.decorators import action
from unfold.utils import display_for_label


class ReadOnlyMixin:
    """Rows nobody adds, changes or deletes in the admin (runs, events, versions): they are records."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class VisibleRowsMixin:
    """Each staff user sees the rows ``visible_filter`` allows (None: all); superusers see all.

    Access comes from the project's access rules (``builder/access.py`` and ``runtime/access.py``),
    not from Django's model permissions: builder users are staff without model permissions.
    """

    def visible_filter(self, user: Any) -> Q | None:
        # Every admin using the mixin must say which rows a staff user sees; showing all by
        # default would leak, so a missing override fails loudly (Unfold's metaclass rules out abc).
        raise NotImplementedError(f"{type(self).__name__} must define visible_filter(user).")

    def get_queryset(self, request: HttpRequest) -> Any:
        queryset = super().get_queryset(request)  # type: ignore[misc]
        if request.user.is_superuser:
            return queryset
        q = self.visible_filter(request.user)
        return queryset if q is None else queryset.filter(q)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # the filtered queryset decides which objects exist for this user
        return request.user.is_active and request.user.is_staff

    def resolve(self, request: HttpRequest, obj: Any) -> Model | None:
        """Unfold passes a detail action's permission check the raw object id: look it up here."""
        if isinstance(obj, str):
            return self.get_object(request, unquote(obj))  # type: ignore[attr-defined]
        return obj


# -- cheap cells ------------------------------------------------------------------------------
# Unfold renders a row's selection checkbox and each status badge through Django templates, one
# render per cell: on a changelist of 25 runs that was a fifth of the page's server time. Their
# markup depends only on the primary key (the checkbox) or on the value (a badge), so each is
# rendered once through Unfold's own templates and reused: the HTML stays Unfold's.

_PK_SLOT = "__row_pk__"


@cache
def _checkbox_html() -> str:
    return str(checkbox.render(helpers.ACTION_CHECKBOX_NAME, _PK_SLOT))


@cache
def _label_html(value: str, label_type: str | None) -> SafeString:
    return display_for_label(value, "-", {value: label_type} if label_type is not None else True)


def label_html(value: str, labels: dict[str, str]) -> SafeString:
    """Unfold's badge for ``value`` (its colour from ``labels``), rendered once per value."""
    return _label_html(value, labels.get(value))


class QuickRowsMixin:
    """A changelist whose selection checkboxes cost a string replace each, not a template render."""

    def action_checkbox(self, obj: Any) -> SafeString:
        return mark_safe(_checkbox_html().replace(_PK_SLOT, escape(str(obj.pk))))  # noqa: S308 - pk escaped

    action_checkbox.short_description = ModelAdmin.action_checkbox.short_description  # type: ignore[attr-defined]


# -- counting at most so many rows ------------------------------------------------------------
# Django's changelist counts every row it could list on each view: for a staff user that is a
# scan of all runs through the sharing filter (the runs of 1,000 shared agents among 10,000), the
# page's costliest statement, and it grows with the table. Counting stops at COUNT_CAP instead.


class AtLeast(int):
    """A row count that stopped at its cap: it pages like the number, and reads "1,000+"."""

    def __str__(self) -> str:
        return f"{int(self):,}+"


class CappedCountPaginator(Paginator):
    """Counts at most ``COUNT_CAP`` rows (one ``LIMIT``ed count, in no particular order); beyond
    that the changelist shows "1,000+" and its first ``COUNT_CAP`` rows in pages; filters narrow
    the rest."""

    COUNT_CAP = 1_000

    @cached_property
    def count(self) -> int:
        counted = self.object_list.order_by()[: self.COUNT_CAP + 1].count()
        return AtLeast(self.COUNT_CAP) if counted > self.COUNT_CAP else counted


def confirmed_action(
    *, description: str, url_path: str, permission: str, question: str
) -> Callable[[Callable[..., HttpResponse | None]], Any]:
    """An Unfold detail action that changes state: ``func(modeladmin, request, obj)``.

    ``has_<permission>_permission(request, obj)`` is checked for the object (Unfold also calls
    it with the raw id before the view runs; answer True when the id does not resolve, so the
    view can say the object does not exist instead of a bare 403).
    """

    def decorator(func: Callable[..., HttpResponse | None]) -> Any:
        @wraps(func)
        def view(modeladmin: Any, request: HttpRequest, object_id: str) -> HttpResponse:
            obj = modeladmin.get_object(request, unquote(object_id))
            if obj is None:
                return modeladmin._get_obj_does_not_exist_redirect(request, modeladmin.opts, object_id)
            if not getattr(modeladmin, f"has_{permission}_permission")(request, obj):
                raise PermissionDenied
            opts = modeladmin.opts
            change_url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
            if request.method != "POST":
                context = {
                    **modeladmin.admin_site.each_context(request),
                    "opts": opts,
                    "object": obj,
                    "title": description,
                    "question": question.format(obj=obj),
                }
                return TemplateResponse(request, "admin/runtime/confirm_action.html", context)
            return func(modeladmin, request, obj) or HttpResponseRedirect(change_url)

        return action(description=description, url_path=url_path, permissions=[permission])(view)

    return decorator
