"""HTTP tools: list, create, edit (secrets write-only), delete, and "try it"."""

from __future__ import annotations

import json

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from builder import selectors
from builder.access import get_tool_for_user
from builder.forms import ToolForm, TryToolForm, apply_errors
from builder.models import ToolDefinition
from builder.schema import ConfigError
from builder.services.tools import build_spec, parse_secrets, tool_delete, tool_save, tool_try
from builder.views.common import go, page, staff_view


@staff_view
def tool_list(request: HttpRequest) -> HttpResponse:
    context = {
        "tools": list(selectors.tool_list(user=request.user)),
        "python_catalog": selectors.python_tool_catalog(),
        "title": "Tools",
    }
    return page(request, "builder/tool_list.html", context, partial="tools")


def _save(request: HttpRequest, form: ToolForm, tool: ToolDefinition | None) -> ToolDefinition | None:
    if not form.is_valid():
        return None
    data = form.cleaned_data
    try:
        spec = build_spec(
            name=data["name"],
            description=data["description"],
            method=data["method"],
            url=data["url"],
            headers=data["headers"],
            parameters=data["parameters"],
        )
        secrets = parse_secrets(data["secrets"]) if data["secrets"].strip() else None
        return tool_save(
            owner=tool.owner if tool else request.user,
            name=data["name"],
            description=data["description"],
            spec=spec,
            secrets=secrets,
            tool=tool,
        )
    except ConfigError as exc:
        apply_errors(form, exc)
        return None


@staff_view
@require_http_methods(["GET", "POST"])
def tool_create(request: HttpRequest) -> HttpResponse:
    form = ToolForm(request.POST or None, initial={"method": "GET"})
    if request.method == "POST" and (tool := _save(request, form, None)):
        messages.success(request, f"Saved {tool.name}. Try it below, then attach it to an agent.")
        return go(request, reverse("builder:tool-edit", args=[tool.public_id]))
    context = {"form": form, "title": "New HTTP tool"}
    return page(
        request, "builder/tool_form.html", context, partial="form", status=422 if form.errors else 200
    )


@staff_view
@require_http_methods(["GET", "POST"])
def tool_edit(request: HttpRequest, public_id: str) -> HttpResponse:
    tool, perms = get_tool_for_user(request.user, public_id)
    initial = {
        "name": tool.name,
        "description": tool.description,
        "method": tool.spec.get("method", "GET"),
        "url": tool.spec.get("url", ""),
        "headers": json.dumps(tool.spec.get("headers") or {}, indent=2) if tool.spec.get("headers") else "",
        "parameters": json.dumps(tool.spec.get("parameters") or {}, indent=2),
    }
    form = ToolForm(request.POST or None, initial=initial)
    if request.method == "POST" and perms.edit and (saved := _save(request, form, tool)):
        messages.success(request, f"Saved {saved.name}.")
        return go(request, reverse("builder:tool-edit", args=[tool.public_id]))
    context = {
        "form": form,
        "tool": tool,
        "perms": perms,
        "secret_names": sorted(tool.secrets or {}),
        "try_form": TryToolForm(),
        "title": tool.name,
    }
    return page(
        request, "builder/tool_form.html", context, partial="form", status=422 if form.errors else 200
    )


@staff_view
@require_POST
def tool_try_view(request: HttpRequest, public_id: str) -> HttpResponse:
    tool, perms = get_tool_for_user(request.user, public_id)
    form = TryToolForm(request.POST)
    result = None
    if form.is_valid():
        try:
            result = tool_try(tool=tool, arguments_text=form.cleaned_data["arguments"])
        except ConfigError as exc:
            apply_errors(form, exc)
    context = {"tool": tool, "try_form": form, "result": result, "title": tool.name}
    return page(request, "builder/tool_form.html", context, partial="try", status=422 if form.errors else 200)


@staff_view
@require_http_methods(["GET", "POST"])
def tool_delete_view(request: HttpRequest, public_id: str) -> HttpResponse:
    tool, perms = get_tool_for_user(request.user, public_id)
    error = ""
    if request.method == "POST" and perms.delete:
        try:
            tool_delete(tool=tool)
        except ConfigError as exc:
            error = " ".join(exc.errors.values())
        else:
            messages.success(request, f"Deleted {tool.name}.")
            return go(request, reverse("builder:tool-list"))
    context = {
        "object": tool,
        "kind": "tool",
        "action": reverse("builder:tool-delete", args=[tool.public_id]),
        "dependants": selectors.tool_dependants(tool=tool),
        "error": error,
        "title": f"Delete {tool.name}",
    }
    return page(request, "builder/delete_modal.html", context, partial="dialog", status=409 if error else 200)
