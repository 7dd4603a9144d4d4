"""The owner's view of an agent or a system: its conversations from every channel (playground,
web widget, API keys, the REST API), each as a read-only transcript, and its usage per day.

What visitors typed is in these pages, so they are for editors and owners (``perms.edit``);
viewers get the builder's 403 saying why, and people who may not see the agent a 404
(``builder/access.py``). ``kind`` ("agent" or "system") comes from the URL. Read-only: GET only.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_GET

from builder.access import get_agent_for_user, get_system_for_user, refusal
from builder.owner_view import (
    SOURCES,
    USAGE_DAYS,
    Day,
    Filters,
    conversation_of,
    conversation_page,
    transcript,
    usage_by_day,
    usage_charts,
)
from builder.views.common import page, refused, staff_view


def _target(request: HttpRequest, kind: str, public_id: str) -> tuple[Any, Any, str]:
    if kind == "system":
        system, perms = get_system_for_user(request.user, public_id)
        return system, perms, reverse("builder:system-edit", args=[system.public_id])
    agent, perms = get_agent_for_user(request.user, public_id)
    return agent, perms, agent.get_absolute_url()


def _context(kind: str, obj: Any, perms: Any, editor_url: str, title: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "owner_obj": obj,
        "perms": perms,
        "editor_url": editor_url,
        "conversations_url": reverse(f"builder:{kind}-conversations", args=[obj.public_id]),
        "usage_url": reverse(f"builder:{kind}-usage", args=[obj.public_id]),
        "publish_url": reverse(f"builder:{kind}-publish-page", args=[obj.public_id]),
        "title": f"{obj.name}: {title}",
        "section": f"{kind}s",
    }


@staff_view
@require_GET
def conversation_list(request: HttpRequest, public_id: str, kind: str) -> HttpResponse:
    obj, perms, editor_url = _target(request, kind, public_id)
    if not perms.edit:
        return refused(request, refusal(perms, obj, "conversations"))
    filters = Filters.from_query(request.GET)
    page_obj, rows = conversation_page(key=obj.slug, filters=filters, page_number=request.GET.get("page"))
    query = {k: v for k, v in (("q", filters.q), ("source", filters.source)) if v}
    if filters.since:
        query["since"] = filters.since.isoformat()
    if filters.until:
        query["until"] = filters.until.isoformat()
    context = {
        **_context(kind, obj, perms, editor_url, "conversations"),
        "filters": filters,
        "sources": SOURCES,
        "page_obj": page_obj,
        "rows": rows,
        "query": urlencode(query),
    }
    return page(
        request,
        "builder/conversations.html",
        context,
        partial="results",
        status=422 if filters.errors else 200,
    )


@staff_view
@require_GET
def conversation_detail(
    request: HttpRequest, public_id: str, conversation_id: str, kind: str
) -> HttpResponse:
    obj, perms, editor_url = _target(request, kind, public_id)
    if not perms.edit:
        return refused(request, refusal(perms, obj, "conversations"))
    row = conversation_of(key=obj.slug, conversation_id=conversation_id)
    if row is None:
        raise Http404("No such conversation.")
    context = {
        **_context(kind, obj, perms, editor_url, "conversation"),
        "transcript": transcript(row=row),
    }
    return page(request, "builder/conversation_detail.html", context)


@staff_view
@require_GET
def usage(request: HttpRequest, public_id: str, kind: str) -> HttpResponse:
    obj, perms, editor_url = _target(request, kind, public_id)
    if not perms.edit:
        return refused(request, refusal(perms, obj, "conversations"))
    days = usage_by_day(key=obj.slug)
    totals = {
        "runs": sum(d.runs for d in days),
        "tokens": sum(d.tokens for d in days),
        "cost": sum((d.cost for d in days), Decimal("0")),
        "unpriced_tokens": sum(d.unpriced_tokens for d in days),
        "errors": sum(d.errors for d in days),
        "thumbs_up": sum(d.thumbs_up for d in days),
        "thumbs_down": sum(d.thumbs_down for d in days),
    }
    totals["cost_label"] = Day(
        day=days[-1].day, cost=totals["cost"], unpriced_tokens=totals["unpriced_tokens"]
    ).cost_label
    context = {
        **_context(kind, obj, perms, editor_url, "usage"),
        "days": days,
        "charts": usage_charts(days),
        "totals": totals,
        "usage_days": USAGE_DAYS,
        "first_day": days[0].day,
        "last_day": days[-1].day,
    }
    return page(request, "builder/usage.html", context)
