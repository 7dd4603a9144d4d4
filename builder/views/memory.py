"""Memory pages: what an agent or a system remembers, searchable by scope, editable by hand."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from builder.access import get_agent_for_user, get_system_for_user, refusal
from builder.forms import MemoryAddForm, MemoryEntryForm, apply_errors
from builder.schema import ConfigError
from builder.services.memory import (
    memory_add,
    memory_delete,
    memory_for_agent,
    memory_for_system,
    memory_search,
    memory_update,
)
from builder.views.common import page, refused, staff_view
from runtime.models import MemoryScope

ENTRIES_PER_PAGE = 50


def _owner(request: HttpRequest, kind: str, public_id: str) -> tuple[Any, Any, Any]:
    if kind == "agent":
        agent, perms = get_agent_for_user(request.user, public_id)
        return agent, perms, memory_for_agent(agent=agent)
    system, perms = get_system_for_user(request.user, public_id)
    return system, perms, memory_for_system(system=system)


def _render(
    request: HttpRequest,
    kind: str,
    obj: Any,
    queryset: Any,
    *,
    perms: Any,
    add_form: MemoryAddForm | None = None,
    row_error: tuple[str, str, str] | None = None,
    saved: str = "",
    status: int = 200,
) -> HttpResponse:
    """The memory region: the add form, then the entries. ``row_error`` is (entry id, message,
    what was typed) for an entry whose edit was refused: its message shows under its own box."""
    search = request.GET.get("q", "").strip()[:200]
    scope = request.GET.get("scope", "")
    scope = scope if scope in MemoryScope.values else ""
    # a page of 50 entries, each an edit form: 200 at once took 65 ms of CPU to render
    page_obj = Paginator(memory_search(queryset, search=search, scope=scope), ENTRIES_PER_PAGE).get_page(
        request.GET.get("page")
    )
    entries = list(page_obj.object_list)
    for entry in entries:
        entry.value_text = (
            entry.value if isinstance(entry.value, str) else json.dumps(entry.value, ensure_ascii=False)
        )
        if row_error and str(entry.pk) == row_error[0]:
            entry.error, entry.value_text = row_error[1], row_error[2]
    context = {
        "kind": kind,
        "owner_obj": obj,
        "perms": perms,
        "entries": entries,
        "page_obj": page_obj,
        # a save or delete answers with the same search and page it was made from
        "query": urlencode({"q": search, "scope": scope, "page": page_obj.number}),
        "filter_query": urlencode({"q": search, "scope": scope}),
        "add_form": add_form or MemoryAddForm(),
        "saved": saved,
        "q": search,
        "scope": scope,
        "scopes": MemoryScope.choices,
        "base_url": reverse(f"builder:{kind}-memory", args=[obj.public_id]),
        "title": f"{obj.name}: memory",
    }
    return page(request, "builder/memory.html", context, partial="memory", status=status)


@staff_view
@require_http_methods(["GET", "POST"])
def memory_list(request: HttpRequest, public_id: str, kind: str) -> HttpResponse:
    """GET lists; POST adds an entry by hand."""
    obj, perms, queryset = _owner(request, kind, public_id)
    if not perms.edit:  # memory holds facts from everyone's conversations: editors and owners only
        return refused(request, refusal(perms, obj, "memory"))
    if request.method == "GET":
        return _render(request, kind, obj, queryset, perms=perms)
    form = MemoryAddForm(request.POST)
    if form.is_valid():
        try:
            entry = memory_add(
                user=request.user,
                system_key=obj.slug,
                agent_key=obj.slug if kind == "agent" else "",
                key=form.cleaned_data["key"],
                value_text=form.cleaned_data["value"],
                scope=form.cleaned_data["scope"],
            )
        except ConfigError as exc:
            apply_errors(form, exc)
        else:
            return _render(request, kind, obj, queryset, perms=perms, saved=f"Remembered {entry.key}.")
    return _render(request, kind, obj, queryset, perms=perms, add_form=form, status=422)


@staff_view
@require_http_methods(["POST", "DELETE"])
def memory_entry(request: HttpRequest, public_id: str, kind: str, entry_id: str) -> HttpResponse:
    obj, perms, queryset = _owner(request, kind, public_id)
    if not perms.edit:
        return refused(request, refusal(perms, obj, "memory"))
    entry = queryset.filter(pk=entry_id).first()
    if entry is None:
        raise Http404("Unknown memory entry.")
    if request.method == "DELETE" or request.POST.get("delete"):
        memory_delete(entry=entry)
        return _render(request, kind, obj, queryset, perms=perms, saved=f"Deleted {entry.key}.")
    form = MemoryEntryForm(request.POST)
    if form.is_valid():
        try:
            memory_update(entry=entry, value_text=form.cleaned_data["value"])
        except ConfigError as exc:
            apply_errors(form, exc)
        else:
            return _render(request, kind, obj, queryset, perms=perms, saved=f"Saved {entry.key}.")
    message = " ".join(" ".join(errors) for errors in form.errors.values())
    typed = request.POST.get("value", "")
    return _render(
        request, kind, obj, queryset, perms=perms, row_error=(str(entry.pk), message, typed), status=422
    )
