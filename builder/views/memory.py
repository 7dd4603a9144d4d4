"""Memory pages: what an agent or a system remembers, searchable by scope, editable."""

from __future__ import annotations

import json
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from builder.access import get_agent_for_user, get_system_for_user
from builder.forms import MemoryEntryForm, apply_errors
from builder.schema import ConfigError
from builder.services.memory import (
    memory_delete,
    memory_for_agent,
    memory_for_system,
    memory_search,
    memory_update,
)
from builder.views.common import page, staff_view
from runtime.models import MemoryScope


def _owner(request: HttpRequest, kind: str, public_id: str) -> tuple[Any, Any, Any]:
    if kind == "agent":
        agent, perms = get_agent_for_user(request.user, public_id)
        return agent, perms, memory_for_agent(agent=agent)
    system, perms = get_system_for_user(request.user, public_id)
    return system, perms, memory_for_system(system=system)


def _list_context(request: HttpRequest, kind: str, obj: Any, queryset: Any) -> dict[str, Any]:
    search = request.GET.get("q", "").strip()[:200]
    scope = request.GET.get("scope", "")
    scope = scope if scope in MemoryScope.values else ""
    entries = list(memory_search(queryset, search=search, scope=scope)[:200])
    for entry in entries:
        entry.value_text = (
            entry.value if isinstance(entry.value, str) else json.dumps(entry.value, ensure_ascii=False)
        )
    return {
        "kind": kind,
        "owner_obj": obj,
        "entries": entries,
        "q": search,
        "scope": scope,
        "scopes": MemoryScope.choices,
        "base_url": reverse(f"builder:{kind}-memory", args=[obj.public_id]),
        "title": f"{obj.name}: memory",
    }


@staff_view
def memory_list(request: HttpRequest, public_id: str, kind: str) -> HttpResponse:
    obj, _perms, queryset = _owner(request, kind, public_id)
    return page(
        request, "builder/memory.html", _list_context(request, kind, obj, queryset), partial="entries"
    )


@staff_view
@require_http_methods(["POST", "DELETE"])
def memory_entry(request: HttpRequest, public_id: str, kind: str, entry_id: str) -> HttpResponse:
    obj, perms, queryset = _owner(request, kind, public_id)
    entry = queryset.filter(pk=entry_id).first()
    if entry is None or not perms.edit:
        raise Http404("Unknown memory entry.")
    if request.method == "DELETE" or request.POST.get("delete"):
        memory_delete(entry=entry)
        status = 200
    else:
        form = MemoryEntryForm(request.POST)
        status = 200
        if form.is_valid():
            try:
                memory_update(entry=entry, value_text=form.cleaned_data["value"])
            except ConfigError as exc:
                apply_errors(form, exc)
                status = 422
        else:
            status = 422
        if status == 422:
            context = _list_context(request, kind, obj, queryset)
            context["error"] = " ".join(" ".join(e) for e in form.errors.values())
            return page(request, "builder/memory.html", context, partial="entries", status=422)
    return page(
        request,
        "builder/memory.html",
        _list_context(request, kind, obj, queryset),
        partial="entries",
        status=status,
    )
