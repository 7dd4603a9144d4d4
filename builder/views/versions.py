"""Version list, diff between two versions, and restore."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_POST

from builder import selectors
from builder.access import get_agent_for_user, refusal
from builder.forms import PublishForm
from builder.services import agent_restore_version
from builder.services.diff import agent_changes
from builder.views.common import go, page, refused, staff_view

VERSIONS_PER_PAGE = 50


@staff_view
def version_list(request: HttpRequest, public_id: str) -> HttpResponse:
    agent, perms = get_agent_for_user(request.user, public_id)
    # a page of 50 versions; the compare pickers offer every number (one small column)
    page_obj = Paginator(selectors.agent_versions(agent=agent), VERSIONS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    context = {
        "agent": agent,
        "perms": perms,
        "versions": list(page_obj.object_list),
        "page_obj": page_obj,
        "numbers": list(agent.versions.order_by("-number").values_list("number", flat=True)),
        "publish_form": PublishForm(),
        "title": f"{agent.name}: versions",
    }
    return page(request, "builder/version_list.html", context, partial="versions")


def _number(value: str | None, default: int) -> int:
    try:
        return int(value) if value else default
    except ValueError:
        raise Http404("Unknown version.") from None


def _side(version: Any) -> dict[str, Any]:
    return {"name": version.name, "description": version.description, "config": version.config}


@staff_view
def version_diff_view(request: HttpRequest, public_id: str) -> HttpResponse:
    """Two versions, or ``b=draft``: the draft against the live (or newest) version."""
    agent, perms = get_agent_for_user(request.user, public_id)
    versions = list(selectors.agent_versions(agent=agent))
    if not versions:
        raise Http404("This agent has no published versions yet.")
    by_number = {v.number: v for v in versions}
    newest = versions[0].number
    draft = request.GET.get("b") == "draft"
    live = agent.published_version or versions[0]
    a = by_number.get(_number(request.GET.get("a"), live.number if draft else max(newest - 1, 1)))
    b = None if draft else by_number.get(_number(request.GET.get("b"), newest))
    if a is None or (b is None and not draft):
        raise Http404("Unknown version.")
    new_side = (
        {"name": agent.name, "description": agent.description, "config": agent.draft.config}
        if draft
        else _side(b)
    )
    b_label = "the draft" if draft else f"version {b.number}"
    context = {
        "agent": agent,
        "versions": versions,
        "a": a,
        "b": b,
        "draft": draft,
        "b_label": b_label,
        "changes": agent_changes(old=_side(a), new=new_side),
        "title": f"{agent.name}: version {a.number} → {b_label}",
    }
    return page(request, "builder/version_diff.html", context, partial="diff")


@staff_view
@require_POST
def version_restore(request: HttpRequest, public_id: str, number: int) -> HttpResponse:
    agent, perms = get_agent_for_user(request.user, public_id)
    version = agent.versions.filter(number=number).first()
    if version is None:
        raise Http404("Unknown version.")
    if not perms.edit:
        return refused(request, refusal(perms, agent, "edit"))
    agent_restore_version(agent=agent, version=version, user=request.user)
    messages.success(request, f"Version {number} is the draft again. Publish it to make it live.")
    return go(request, agent.get_absolute_url())
