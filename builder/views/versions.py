"""Version list, diff between two versions, and restore."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_POST

from builder import selectors
from builder.access import get_agent_for_user
from builder.forms import PublishForm
from builder.services import agent_restore_version, version_diff
from builder.views.common import go, page, staff_view


@staff_view
def version_list(request: HttpRequest, public_id: str) -> HttpResponse:
    agent, perms = get_agent_for_user(request.user, public_id)
    versions = list(selectors.agent_versions(agent=agent))
    context = {
        "agent": agent,
        "perms": perms,
        "versions": versions,
        "publish_form": PublishForm(),
        "title": f"{agent.name}: versions",
    }
    return page(request, "builder/version_list.html", context, partial="versions")


def _number(value: str | None, default: int) -> int:
    try:
        return int(value) if value else default
    except ValueError:
        raise Http404("Unknown version.") from None


@staff_view
def version_diff_view(request: HttpRequest, public_id: str) -> HttpResponse:
    agent, perms = get_agent_for_user(request.user, public_id)
    versions = list(selectors.agent_versions(agent=agent))
    if not versions:
        raise Http404("This agent has no published versions yet.")
    by_number = {v.number: v for v in versions}
    newest = versions[0].number
    a = by_number.get(_number(request.GET.get("a"), max(newest - 1, 1)))
    b = by_number.get(_number(request.GET.get("b"), newest))
    if a is None or b is None:
        raise Http404("Unknown version.")
    context = {
        "agent": agent,
        "versions": versions,
        "a": a,
        "b": b,
        "diff": version_diff(old=a, new=b),
        "title": f"{agent.name}: version {a.number} → {b.number}",
    }
    return page(request, "builder/version_diff.html", context, partial="diff")


@staff_view
@require_POST
def version_restore(request: HttpRequest, public_id: str, number: int) -> HttpResponse:
    agent, perms = get_agent_for_user(request.user, public_id)
    version = agent.versions.filter(number=number).first()
    if version is None:
        raise Http404("Unknown version.")
    if perms.edit:
        agent_restore_version(agent=agent, version=version, user=request.user)
        messages.success(request, f"Version {number} is the draft again. Publish it to make it live.")
    return go(request, agent.get_absolute_url())
