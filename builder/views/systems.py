"""Multi-agent systems: list, create/edit, publish, delete."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from builder import selectors
from builder.access import attach_roles, get_agent_for_user, get_system_for_user, refusal
from builder.forms import SystemForm, apply_errors
from builder.models import AgentSystem
from builder.schema import ConfigError
from builder.services.systems import system_delete, system_publish, system_save
from builder.views.common import delete_dialog, go, is_partial, page, refused, staff_view
from builder.views.playground import playground_context


@staff_view
def system_list(request: HttpRequest) -> HttpResponse:
    shared = request.GET.get("shared") == "1"
    context = {
        "systems": attach_roles(request.user, list(selectors.system_list(user=request.user, shared=shared))),
        "shared": shared,
        "title": "Multi-agent systems",
    }
    return page(request, "builder/system_list.html", context, partial="systems")


def _parse_roles(text: str) -> dict[str, str]:
    roles: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, role = line.partition(":")
        if sep and key.strip():
            roles[key.strip()] = role.strip()
    return roles


def _initial(system: AgentSystem) -> dict[str, Any]:
    members = list(system.members.select_related("agent"))
    return {
        "slug": system.slug,
        "name": system.name,
        "description": system.description,
        "entry_agent": system.entry_agent.slug,
        "members": [m.agent.slug for m in members],
        "roles": "\n".join(f"{m.agent.slug}: {m.role}" for m in members if m.role),
    }


def _save(request: HttpRequest, form: SystemForm, system: AgentSystem | None) -> AgentSystem | None:
    if not form.is_valid():
        return None
    data = form.cleaned_data
    entry, _ = get_agent_for_user(
        request.user, selectors.agent_list(user=request.user).get(slug=data["entry_agent"]).public_id
    )
    roles = _parse_roles(data["roles"])
    members = {key: roles.get(key, "") for key in data["members"]}
    try:
        return system_save(
            owner=system.owner if system else request.user,
            system=system,
            slug=data["slug"] if system is None else system.slug,
            name=data["name"],
            description=data["description"],
            entry_agent=entry,
            members=members,
        )
    except ConfigError as exc:
        apply_errors(form, exc)
        return None


def _agent_choices(request: HttpRequest) -> list[tuple[str, str]]:
    return [(s, f"{n} ({s})") for s, n in selectors.agent_list(user=request.user).values_list("slug", "name")]


def _chosen(form: SystemForm) -> list[tuple[str, str]]:
    """The members to show as ticked chips: what was posted, or what is saved."""
    labels = dict(form.fields["members"].choices)
    chosen = form.data.getlist("members") if form.is_bound else form.initial.get("members", [])
    return [(slug, labels[slug]) for slug in dict.fromkeys(chosen) if slug in labels]


@staff_view
@require_http_methods(["GET", "POST"])
def system_create(request: HttpRequest) -> HttpResponse:
    form = SystemForm(request.POST or None, agents=_agent_choices(request))
    if request.method == "POST" and (system := _save(request, form, None)):
        messages.success(request, f"Created {system.name}.")
        return go(request, reverse("builder:system-edit", args=[system.public_id]))
    context = {"form": form, "title": "New system", "chosen_members": _chosen(form)}
    return page(
        request, "builder/system_form.html", context, partial="form", status=422 if form.errors else 200
    )


@staff_view
@require_http_methods(["GET", "POST"])
def system_edit(request: HttpRequest, public_id: str) -> HttpResponse:
    system, perms = get_system_for_user(request.user, public_id)
    if request.method == "POST" and not perms.edit:
        return refused(request, refusal(perms, system, "edit"))
    form = SystemForm(request.POST or None, initial=_initial(system), agents=_agent_choices(request))
    form.fields["slug"].disabled = True
    if request.method == "POST" and (saved := _save(request, form, system)):
        messages.success(request, f"Saved {saved.name}.")
        return go(request, reverse("builder:system-edit", args=[system.public_id]))
    context = {
        "form": form,
        "chosen_members": _chosen(form),
        "system": system,
        "perms": perms,
        "members": [
            (m, system.published_pins.get(m.agent.slug, "")) for m in system.members.select_related("agent")
        ],
        "playground": None
        if is_partial(request)
        else playground_context(request, key=system.slug, system=system),
        "title": system.name,
        "sharing_url": reverse("builder:system-sharing", args=[system.public_id]),
    }
    return page(
        request, "builder/system_form.html", context, partial="form", status=422 if form.errors else 200
    )


@staff_view
@require_POST
def system_publish_view(request: HttpRequest, public_id: str) -> HttpResponse:
    system, perms = get_system_for_user(request.user, public_id)
    if not perms.publish:
        return refused(request, refusal(perms, system, "publish"))
    pins = system_publish(system=system, user=request.user)
    messages.success(request, f"Published {system.name}; pinned {len(pins)} member version(s).")
    return go(request, reverse("builder:system-edit", args=[system.public_id]))


@staff_view
@require_http_methods(["GET", "POST"])
def system_delete_view(request: HttpRequest, public_id: str) -> HttpResponse:
    system, perms = get_system_for_user(request.user, public_id)
    if not perms.delete:
        return refused(request, refusal(perms, system, "delete"))
    return delete_dialog(
        request,
        obj=system,
        kind="system",
        delete=lambda: system_delete(system=system, user=request.user),
        action=reverse("builder:system-delete", args=[system.public_id]),
        done=reverse("builder:system-list"),
    )
