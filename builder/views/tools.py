"""HTTP tools: list, create, edit (secrets write-only), delete, and "try it"."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from builder import selectors
from builder.access import attach_roles, get_tool_for_user, refusal
from builder.forms import CurlImportForm, OpenAPIImportForm, ToolForm, TryToolForm, apply_errors
from builder.models import ToolDefinition
from builder.schema import ConfigError
from builder.services.openapi_import import base_url, load_openapi, openapi_operations, tool_import_openapi
from builder.services.tool_import import draft_from_curl
from builder.services.tools import build_spec, parse_secrets, tool_delete, tool_save, tool_try
from builder.tool_params import EMPTY_ROWS, LOCATIONS, TYPES, empty_row, rows_from_post, rows_from_spec
from builder.views.common import delete_dialog, go, page, refused, staff_view

TOOLS_PER_PAGE = 50


@staff_view
def tool_list(request: HttpRequest) -> HttpResponse:
    shared = request.GET.get("shared") == "1"
    # a page of 50: rendering every tool grew with the site (200 tools, 50 ms of CPU)
    page_obj = Paginator(selectors.tool_list(user=request.user, shared=shared), TOOLS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    context = {
        "tools": attach_roles(request.user, list(page_obj.object_list)),
        "page_obj": page_obj,
        "shared": shared,
        "python_catalog": selectors.python_tool_catalog(),
        "title": "Tools",
    }
    return page(request, "builder/tool_list.html", context, partial="tools")


def _rows_context(rows: list[dict[str, Any]]) -> dict[str, Any]:
    rows = [*rows, *(empty_row() for _ in range(EMPTY_ROWS if not rows else 1))]
    return {"param_rows": rows, "param_types": TYPES, "param_locations": LOCATIONS}


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
            # the list editor posts param_rows; a client that sends only the schema keeps JSON
            rows=None
            if data["parameters_as_json"] or "param_rows" not in request.POST
            else rows_from_post(request.POST),
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


def _form_page(
    request: HttpRequest,
    form: ToolForm,
    rows: list[dict[str, Any]],
    extra: dict[str, Any],
    *,
    status: int = 200,
) -> HttpResponse:
    context = {"form": form, **_rows_context(rows), **extra}
    return page(request, "builder/tool_form.html", context, partial="form", status=status)


def _posted(
    request: HttpRequest, tool: ToolDefinition | None
) -> tuple[ToolDefinition | None, ToolForm, list[dict[str, Any]]]:
    """A POST of the tool form: "Add a parameter" only grows the list (nothing is saved or
    judged); "Save" saves or returns the form with its errors. Rows the user typed are kept."""
    rows = [r for r in rows_from_post(request.POST) if r["name"] or r["description"]]
    if "add_param" in request.POST:
        return None, ToolForm(initial=request.POST.dict()), [*rows, empty_row()]
    form = ToolForm(request.POST)
    return _save(request, form, tool), form, rows


def _status(form: ToolForm) -> int:
    return 422 if form.is_bound and form.errors else 200


@staff_view
@require_http_methods(["GET", "POST"])
def tool_create(request: HttpRequest) -> HttpResponse:
    extra = {"title": "New HTTP tool", "curl_form": CurlImportForm()}
    if request.method == "POST":
        saved, form, rows = _posted(request, None)
        if saved:
            messages.success(request, f"Saved {saved.name}. Try it below, then attach it to an agent.")
            return go(request, reverse("builder:tool-edit", args=[saved.public_id]))
        return _form_page(request, form, rows, extra, status=_status(form))
    return _form_page(request, ToolForm(initial={"method": "GET"}), [], extra)


@staff_view
@require_POST
def tool_from_curl(request: HttpRequest) -> HttpResponse:
    """A cURL command becomes a filled-in, unsaved tool form to review (a full page)."""
    curl_form = CurlImportForm(request.POST)
    extra = {"title": "New HTTP tool", "curl_form": curl_form}
    if curl_form.is_valid():
        try:
            draft = draft_from_curl(curl_form.cleaned_data["curl"])
        except ConfigError as exc:
            apply_errors(curl_form, exc)
        else:
            form = ToolForm(initial={k: v for k, v in draft.items() if k != "rows"})
            context = {"form": form, **_rows_context(draft["rows"]), **extra, "imported": True}
            return page(request, "builder/tool_form.html", context)
    context = {"form": ToolForm(initial={"method": "GET"}), **_rows_context([]), **extra, "curl_open": True}
    return page(request, "builder/tool_form.html", context, status=422)


@staff_view
@require_http_methods(["GET", "POST"])
def tool_import_openapi_view(request: HttpRequest) -> HttpResponse:
    """Step 1 reads a document and lists its operations; step 2 saves the ticked ones as tools."""
    form = OpenAPIImportForm(request.POST or None, request.FILES or None)
    context: dict[str, Any] = {"form": form, "title": "Import tools from OpenAPI", "section": "tools"}
    template = "builder/tool_openapi.html"
    if request.method == "GET":
        return page(request, template, context)
    if not form.is_valid():
        return page(request, template, context, status=422)
    text = form.cleaned_data["document"]
    if form.cleaned_data["file"]:
        try:
            text = form.cleaned_data["file"].read().decode("utf-8")
        except UnicodeDecodeError:
            form.add_error("file", "The file is not UTF-8 text; export the document as JSON or YAML.")
            return page(request, template, context, status=422)
    try:
        doc = load_openapi(text)
    except ConfigError as exc:
        apply_errors(
            form, ConfigError({"file" if form.cleaned_data["file"] else "document": exc.errors["document"]})
        )
        return page(request, template, context, status=422)
    chosen = request.POST.getlist("operations")
    context.update(
        document=text, operations=openapi_operations(doc), chosen=set(chosen), server=base_url(doc)
    )
    if "create" not in request.POST:
        return page(request, template, context)
    try:
        tools = tool_import_openapi(
            owner=request.user, text=text, operation_ids=chosen, server=form.cleaned_data["server"]
        )
    except ConfigError as exc:
        context["operations_error"] = exc.errors.get("operations")
        if "server" in exc.errors:
            form.add_error("server", exc.errors["server"])
        return page(request, template, context, status=422)
    names = ", ".join(t.name for t in tools)
    messages.success(request, f"Imported {len(tools)} tool(s): {names}. Try each one before you attach it.")
    return go(request, reverse("builder:tool-list"))


@staff_view
@require_http_methods(["GET", "POST"])
def tool_edit(request: HttpRequest, public_id: str) -> HttpResponse:
    tool, perms = get_tool_for_user(request.user, public_id)
    rows = rows_from_spec(tool.spec)
    initial = {
        "name": tool.name,
        "description": tool.description,
        "method": tool.spec.get("method", "GET"),
        "url": tool.spec.get("url", ""),
        "headers": json.dumps(tool.spec.get("headers") or {}, indent=2) if tool.spec.get("headers") else "",
        "parameters": json.dumps(tool.spec.get("parameters") or {}, indent=2),
        "parameters_as_json": rows is None,
    }
    extra = {
        "tool": tool,
        "perms": perms,
        "secret_names": sorted(tool.secrets or {}),
        "try_form": TryToolForm(),
        "title": tool.name,
        "sharing_url": reverse("builder:tool-sharing", args=[tool.public_id]),
    }
    if request.method == "POST":
        if not perms.edit:
            return refused(request, refusal(perms, tool, "edit"))
        saved, form, rows = _posted(request, tool)
        if saved:
            messages.success(request, f"Saved {saved.name}.")
            return go(request, reverse("builder:tool-edit", args=[tool.public_id]))
        return _form_page(request, form, rows, extra, status=_status(form))
    return _form_page(request, ToolForm(initial=initial), rows or [], extra)


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
    if not perms.delete:
        return refused(request, refusal(perms, tool, "delete"))
    return delete_dialog(
        request,
        obj=tool,
        kind="tool",
        delete=lambda: tool_delete(tool=tool, user=request.user),
        action=reverse("builder:tool-delete", args=[tool.public_id]),
        done=reverse("builder:tool-list"),
        dependants=lambda: selectors.tool_dependants(tool=tool),
    )
