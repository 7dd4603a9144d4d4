"""Agent list, create, edit (with inline validation), duplicate, publish and delete."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from builder import selectors
from builder.access import attach_roles, get_agent_for_user, refusal
from builder.forms import AgentForm, AgentIdentityForm, DuplicateForm, PublishForm, apply_errors
from builder.models import Agent
from builder.schema import ConfigError
from builder.services import agent_create, agent_delete, agent_duplicate, agent_publish, agent_update_draft
from builder.services.templates import TEMPLATES, agent_from_template, free_key, key_from_name
from builder.views.common import delete_dialog, go, is_partial, page, refused, staff_view
from builder.views.playground import playground_context

PAGE_SIZE = 50
STATUSES = [
    ("", "All"),
    ("published", "Published"),
    ("pending", "Unpublished changes"),
    ("draft", "Never published"),
]


@staff_view
def agent_list(request: HttpRequest) -> HttpResponse:
    search = request.GET.get("q", "").strip()[:200]
    status = request.GET.get("status", "")
    shared = request.GET.get("shared") == "1"
    page_number = int(request.GET["page"]) if request.GET.get("page", "").isdigit() else 1
    page_number = max(page_number, 1)
    start = (page_number - 1) * PAGE_SIZE
    # one row more than shown tells whether there is a next page, without a COUNT query
    rows = list(
        selectors.agent_list(user=request.user, search=search, status=status, shared=shared)[
            start : start + PAGE_SIZE + 1
        ]
    )
    context = {
        "agents": attach_roles(request.user, rows[:PAGE_SIZE]),
        "q": search,
        "status": status,
        "shared": shared,
        "statuses": STATUSES,
        "page_number": page_number,
        "has_next": len(rows) > PAGE_SIZE,
        "title": "Agents",
    }
    return page(request, "builder/agent_list.html", context, partial="agent-rows")


@staff_view
@require_http_methods(["GET", "POST"])
def agent_create_view(request: HttpRequest) -> HttpResponse:
    form = AgentIdentityForm(request.POST or None)
    if request.method == "POST" and request.POST.get("template"):
        try:
            agent = agent_from_template(
                owner=request.user,
                template_id=request.POST["template"],
                known=selectors.known_for(request.user),
            )
        except ConfigError as exc:
            form = AgentIdentityForm()
            form.add_error(None, " ".join(exc.errors.values()))
        else:
            messages.success(request, f"Created {agent.name} from a template. Say hello in the playground.")
            return go(request, agent.get_absolute_url())
    elif request.method == "POST" and form.is_valid():
        name = form.cleaned_data["name"]
        slug = form.cleaned_data["slug"] or free_key(key_from_name(name))
        try:
            agent = agent_create(owner=request.user, slug=slug, name=name)
        except ConfigError as exc:
            apply_errors(form, exc)
        else:
            messages.success(
                request, f"Created {agent.name}. Write its instructions, then try it in the playground."
            )
            return go(request, agent.get_absolute_url())
    status = 422 if form.errors else 200
    return page(
        request,
        "builder/agent_create.html",
        {"form": form, "title": "New agent", "templates": TEMPLATES},
        partial="form",
        status=status,
    )


def editor_form(request: HttpRequest, agent: Agent, data: Any = None) -> AgentForm:
    models = selectors.available_models()["models"]
    # the runtime resolves an agent's HTTP tools among its owner's: offer those shared with this user
    http_tools = list(
        selectors.tool_list(user=request.user)
        .filter(kind="http", owner_id=agent.owner_id)
        .values_list("name", flat=True)
    )
    agents = [
        (slug, f"{name} ({slug})")
        for slug, name in selectors.agent_list(user=request.user)
        .exclude(pk=agent.pk)
        .values_list("slug", "name")
    ]
    return AgentForm(
        data,
        initial=AgentForm.initial_from(agent, agent.draft.config),
        models=models,
        http_tools=http_tools,
        python_tools=selectors.python_tool_catalog(),
        agents=agents,
    )


def editor_context(request: HttpRequest, agent: Agent, perms: Any, form: AgentForm) -> dict[str, Any]:
    models = selectors.available_models()["models"]
    return {
        "agent": agent,
        "perms": perms,
        "form": form,
        "publish_form": PublishForm(),
        "only_demo": all(m.get("is_demo") for m in models),
        "python_catalog": selectors.python_tool_catalog(),
        "versions": list(selectors.agent_versions(agent=agent)[:20]),
        "title": agent.name,
        "sharing_url": reverse("builder:agent-sharing", args=[agent.public_id]),
        "playground": None
        if is_partial(request)
        else playground_context(request, key=agent.slug, agent=agent),
    }


@staff_view
@require_http_methods(["GET", "POST"])
def agent_edit(request: HttpRequest, public_id: str) -> HttpResponse:
    agent, perms = get_agent_for_user(request.user, public_id)
    if request.method == "POST" and not perms.edit:
        return refused(request, refusal(perms, agent, "edit"))
    form = editor_form(request, agent, request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                agent_update_draft(
                    agent=agent,
                    user=request.user,
                    config=form.to_config(),
                    name=form.cleaned_data["name"],
                    description=form.cleaned_data["description"],
                    icon=form.cleaned_data["icon"],
                    known=selectors.known_for(request.user),
                )
            except ConfigError as exc:
                apply_errors(form, exc)
            else:
                if not request.htmx:
                    messages.success(request, "Draft saved.")
                    return go(request, agent.get_absolute_url())
                form = editor_form(request, agent)
                form.saved = True
        status = 422 if form.errors else 200
    return page(
        request,
        "builder/agent_edit.html",
        editor_context(request, agent, perms, form),
        partial="editor",
        status=status,
    )


@staff_view
@require_POST
def agent_publish_view(request: HttpRequest, public_id: str) -> HttpResponse:
    agent, perms = get_agent_for_user(request.user, public_id)
    if not perms.publish:
        return refused(request, refusal(perms, agent, "publish"))
    form = PublishForm(request.POST)
    if form.is_valid():
        try:
            version = agent_publish(agent=agent, user=request.user, note=form.cleaned_data["note"])
        except ConfigError as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, f"Published version {version.number}.")
            return go(request, reverse("builder:agent-versions", args=[agent.public_id]))
    # the form again, its errors next to the note, what was typed kept
    context = editor_context(request, agent, perms, editor_form(request, agent))
    context["publish_form"] = form
    return page(request, "builder/agent_edit.html", context, partial="publish", status=422)


@staff_view
@require_http_methods(["GET", "POST"])
def agent_duplicate_view(request: HttpRequest, public_id: str) -> HttpResponse:
    agent, perms = get_agent_for_user(request.user, public_id)
    form = DuplicateForm(
        request.POST or None, initial={"slug": free_key(f"{agent.slug}-copy"), "name": f"{agent.name} (copy)"}
    )
    if request.method == "POST" and form.is_valid():
        try:
            name = form.cleaned_data["name"]
            slug = form.cleaned_data["slug"] or free_key(key_from_name(name))
            copy = agent_duplicate(agent=agent, user=request.user, slug=slug, name=name)
        except ConfigError as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, f"Duplicated as {copy.name}.")
            return go(request, copy.get_absolute_url())
    context = {"form": form, "agent": agent, "title": f"Duplicate {agent.name}"}
    return page(
        request, "builder/agent_duplicate.html", context, partial="form", status=422 if form.errors else 200
    )


@staff_view
@require_http_methods(["GET", "POST"])
def agent_delete_view(request: HttpRequest, public_id: str) -> HttpResponse:
    agent, perms = get_agent_for_user(request.user, public_id)
    if not perms.delete:
        return refused(request, refusal(perms, agent, "delete"))
    return delete_dialog(
        request,
        obj=agent,
        kind="agent",
        delete=lambda: agent_delete(agent=agent, user=request.user),
        action=reverse("builder:agent-delete", args=[agent.public_id]),
        done=reverse("builder:agent-list"),
        dependants=lambda: selectors.agent_dependants(agent=agent),
    )
