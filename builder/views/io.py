"""Export an agent or system as YAML; import with a preview before anything is saved."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from builder import selectors
from builder.access import get_agent_for_user, get_system_for_user
from builder.forms import ImportForm, apply_errors
from builder.schema import ConfigError
from builder.services.io import MAX_IMPORT_BYTES, export_agent, export_system, import_apply, import_plan
from builder.views.common import go, page, staff_view


def _yaml_download(text: str, filename: str) -> HttpResponse:
    response = HttpResponse(text, content_type="application/yaml; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@staff_view
def agent_export(request: HttpRequest, public_id: str) -> HttpResponse:
    agent, _perms = get_agent_for_user(request.user, public_id)
    return _yaml_download(export_agent(agent=agent, user=request.user), f"{agent.slug}.agent.yaml")


@staff_view
def system_export(request: HttpRequest, public_id: str) -> HttpResponse:
    system, _perms = get_system_for_user(request.user, public_id)
    return _yaml_download(export_system(system=system, user=request.user), f"{system.slug}.system.yaml")


@staff_view
@require_http_methods(["GET", "POST"])
def import_view(request: HttpRequest) -> HttpResponse:
    """POST without ``confirm`` previews; POST with ``confirm`` applies the same text."""
    form = ImportForm(request.POST or None, request.FILES or None)
    plan = None
    text = ""
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data.get("file")
        try:
            if upload and upload.size > MAX_IMPORT_BYTES:  # not read into memory at all
                form.add_error("file", f"The file is larger than {MAX_IMPORT_BYTES // 1024} KB.")
            else:
                text = upload.read().decode("utf-8") if upload else form.cleaned_data.get("text", "")
        except UnicodeDecodeError:
            form.add_error("file", "The file is not UTF-8 text; export it again from this builder.")
        if not text.strip() and not form.errors:
            form.add_error("text", "Choose a file or paste its contents.")
        if not form.errors:
            known = selectors.known_for(request.user)
            try:
                if request.POST.get("confirm"):
                    items = import_apply(user=request.user, text=text, known=known)
                    messages.success(request, f"Imported {len(items)} item(s).")
                    for item in items:
                        for reason in item.skipped:
                            messages.warning(request, f"{item.kind.capitalize()} {item.slug}: {reason}.")
                    return go(request, reverse("builder:agent-list"))
                plan = import_plan(user=request.user, text=text, known=known)
            except ConfigError as exc:
                apply_errors(
                    form,
                    ConfigError(
                        {("text" if k == "file" and not upload else k): v for k, v in exc.errors.items()}
                    ),
                )
    context = {"form": form, "plan": plan, "text": text, "title": "Import"}
    return page(request, "builder/import.html", context, partial="import", status=422 if form.errors else 200)
