"""What every builder view shares: staff-only access and one-template-two-renders."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import quote

from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.cache import patch_vary_headers
from django_htmx.http import HttpResponseClientRedirect

from builder.schema import ConfigError
from builder.services.teams import may_manage_teams


def staff_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Staff only; everyone else goes to the admin login (which explains why)."""
    return wraps(view)(staff_member_required(view))


def is_partial(request: HttpRequest) -> bool:
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.boosted


# Sections whose pages exist; the tab bar shows only these.
SECTIONS: tuple[str, ...] = ("agents", "tools", "knowledge", "systems", "import")


def page(
    request: HttpRequest,
    template: str,
    context: dict[str, Any],
    *,
    partial: str | None = None,
    status: int = 200,
) -> HttpResponse:
    """Render ``template`` in the admin frame, or only ``template#partial`` for an htmx request."""
    context.setdefault("section", template.split("/")[-1].split("_")[0].rstrip("s") + "s")
    context.setdefault("builder_sections", SECTIONS)
    if not (partial and is_partial(request)):
        context.setdefault("can_manage_teams", may_manage_teams(request.user))
    if partial and is_partial(request):
        response = TemplateResponse(request, f"{template}#{partial}", context, status=status)
    else:
        full = {**admin.site.each_context(request), **context}
        response = TemplateResponse(request, template, full, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


def refused(request: HttpRequest, message: str) -> HttpResponse:
    """A 403 that says why, nothing changed: the page says it, and so does the ``X-Notice`` header
    that builder.js shows in the notice region (htmx does not swap a 403)."""
    context = {"message": message, "title": "Not allowed"}
    response = page(request, "builder/refused.html", context, partial="refused", status=403)
    response["X-Notice"] = quote(message)
    return response


def go(request: HttpRequest, url: str) -> HttpResponse:
    """Redirect that also works when the request came from htmx."""
    if getattr(request, "htmx", None):
        return HttpResponseClientRedirect(url)
    return redirect(url)


def delete_dialog(
    request: HttpRequest,
    *,
    obj: Any,
    kind: str,
    delete: Callable[[], None],
    action: str,
    done: str,
    dependants: Callable[[], list[str]] | None = None,
) -> HttpResponse:
    """The confirm-and-delete dialog of an agent, tool or system.

    GET shows it (with what still uses the object, which blocks the delete); a POST calls
    ``delete()`` and goes to ``done`` (the caller has refused anyone who may not delete). A ``ConfigError`` from
    it (still in use) shows the dialog again with its message, status 409.
    """
    error = ""
    if request.method == "POST":
        try:
            delete()
        except ConfigError as exc:
            error = " ".join(exc.errors.values())
        else:
            messages.success(request, f"Deleted {obj.name}.")
            return go(request, done)
    context = {"object": obj, "kind": kind, "action": action, "error": error, "title": f"Delete {obj.name}"}
    if dependants is not None:
        context["dependants"] = dependants()
    return page(request, "builder/delete_modal.html", context, partial="dialog", status=409 if error else 200)
