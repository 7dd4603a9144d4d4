"""A conversation's messages on its admin page: one read-only field, rendered by one template.

The page used to show them as a read-only inline, and Unfold renders every cell of an inline
through its field machinery: about 4 ms a message, 20 a page, most of the page's time
(bench/builder_pages.py). Here the rows are read once and rendered by
``admin/runtime/_transcript.html``: oldest first, ``PAGE_SIZE`` a page, paged with
``?messages-page=N`` (the parameter the inline's pager used, so its links still land).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.paginator import Paginator
from django.http import QueryDict
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import SafeString
from django.utils.timezone import localtime

from runtime.admin_support import label_html
from runtime.models import AgentConversation

PAGE_SIZE = 20
PAGE_PARAM = "messages-page"
ANCHOR = "messages"  # the transcript's id: a pager link lands on the messages, not the page's top
ROLE_LABELS = {"user": "info", "assistant": "success", "tool": "warning", "system": ""}
_RUN_SLOT = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class Row:
    seq: str
    role: str
    role_badge: SafeString
    agent_key: str
    tool: str  # a tool result names its tool (or the call it answers)
    created_at: datetime
    time: str  # local time, as text: Django's date filter asks for the language on every call
    text: str
    tool_calls: str
    run_url: str
    run_label: str


def _text(value: Any) -> str:
    """Message content as text: a string as it is, structured content (parts) as compact JSON."""
    if value is None or value == "":
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def transcript_html(conversation: AgentConversation, query: QueryDict) -> SafeString:
    """One page of ``conversation``'s messages (the page number read from ``query``): two queries,
    the count and the page."""
    messages = conversation.messages.order_by("seq").only(
        "seq", "role", "content", "tool_calls", "tool_call_id", "name", "agent_key", "created_at", "run_id"
    )
    page = Paginator(messages, PAGE_SIZE).get_page(query.get(PAGE_PARAM))
    run_url = reverse("admin:runtime_agentrun_change", args=[_RUN_SLOT])  # reversed once, not per row
    rows = [
        Row(
            seq=str(m.seq),
            role=m.role,
            role_badge=label_html(m.role, ROLE_LABELS),
            agent_key=m.agent_key,
            tool=m.name or m.tool_call_id,
            created_at=m.created_at,
            time=localtime(m.created_at).strftime("%Y-%m-%d %H:%M:%S"),
            text=_text(m.content),
            tool_calls=_text(m.tool_calls),
            run_url=run_url.replace(_RUN_SLOT, str(m.run_id)) if m.run_id else "",
            run_label=str(m.run_id)[:8] if m.run_id else "",
        )
        for m in page.object_list
    ]

    def link(number: int) -> str:
        params = query.copy()
        params[PAGE_PARAM] = str(number)
        return f"?{params.urlencode()}#{ANCHOR}"

    back = [("First", link(1)), ("Previous", link(page.number - 1))] if page.has_previous() else []
    ahead = (
        [("Next", link(page.number + 1)), ("Last", link(page.paginator.num_pages))] if page.has_next() else []
    )
    return render_to_string(
        "admin/runtime/_transcript.html",
        {"anchor": ANCHOR, "page": page, "rows": rows, "back": back, "ahead": ahead},
    )
