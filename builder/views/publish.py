"""The Publish page of an agent or a multi-agent system: its web widget channel (settings, on/off,
keys, snippet, preview).

Everyone who may see the agent or system sees the page; only its owners (``perms.publish``)
change it, and the runtime's channel services check ownership again through ``runtime.access``.
The same views serve both kinds (``kind`` comes from the URL).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from csp.constants import SELF
from csp.decorators import csp_replace
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from builder.access import Perms, get_agent_for_user, get_system_for_user, refusal
from builder.publish_forms import WidgetSettingsForm
from builder.views.common import page, refused, staff_view
from runtime.channels.api_keys import budgets_for
from runtime.channels.budget import spend_today
from runtime.channels.models import WidgetChannel
from runtime.channels.services import (
    MAX_QUESTION_CHARS,
    MAX_QUESTIONS,
    ChannelError,
    widget_channel_create,
    widget_channel_rotate_identity_secret,
    widget_channel_rotate_key,
    widget_channel_set_enabled,
    widget_channel_update,
)

ACTIONS = ("publish-page", "widget-create", "widget-settings", "widget-enabled", "widget-rotate",
           "widget-identity-rotate", "widget-preview")  # fmt: skip


@dataclass
class Target:
    """An agent or a system, as the Publish page needs it."""

    kind: str  # "agent" | "system"
    obj: Any
    perms: Perms
    key: str
    name: str
    published: str  # "" when never published, else how it is live ("v3", "published 2026-...")
    config: dict[str, Any]  # greeting and questions come from here (a system: its entry agent's)
    editor_url: str

    def url(self, action: str) -> str:
        prefix = "" if self.kind == "agent" else "system-"
        name = {"publish-page": f"{self.kind}-publish-page"}.get(action, f"{prefix}{action}")
        return reverse(f"builder:{name}", args=[self.obj.public_id])

    @property
    def urls(self) -> dict[str, str]:
        return {action.replace("-", "_"): self.url(action) for action in ACTIONS}


def _published_config(agent: Any) -> dict[str, Any]:
    return agent.published_version.config if agent.published_version else {}


def _target(request: HttpRequest, kind: str, public_id: str) -> Target:
    if kind == "system":
        system, perms = get_system_for_user(request.user, public_id)
        published = f"published {system.published_at:%Y-%m-%d %H:%M}" if system.published_at else ""
        editor = reverse("builder:system-edit", args=[system.public_id])
        config = _published_config(system.entry_agent)
        return Target(kind, system, perms, system.slug, system.name, published, config, editor)
    agent, perms = get_agent_for_user(request.user, public_id)
    published = f"v{agent.published_version.number}" if agent.published_version else ""
    return Target(
        kind,
        agent,
        perms,
        agent.slug,
        agent.name,
        published,
        _published_config(agent),
        agent.get_absolute_url(),
    )


def _channel(target: Target) -> WidgetChannel | None:
    return WidgetChannel.objects.filter(agent_key=target.key).first()


class _NotOwner(Exception):
    """Raised by ``_owned_channel`` for someone who may see the agent but not manage its channels."""


def _owned_channel(target: Target) -> WidgetChannel:
    if not target.perms.publish:
        raise _NotOwner()
    channel = _channel(target)
    if channel is None:
        raise Http404("Not found.")
    return channel


def _owners_only(view):
    """Those who may see the agent but are not its owners get the builder's 403 saying why."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, public_id: str, kind: str) -> HttpResponse:
        try:
            return view(request, public_id, kind)
        except _NotOwner:
            target = _target(request, kind, public_id)
            return refused(request, refusal(target.perms, target.obj, "publish"))

    return wrapped


def snippet(request: HttpRequest, channel: WidgetChannel) -> str:
    src = request.build_absolute_uri(static("widget/widget.js"))
    return f'<script src="{src}" data-key="{channel.publishable_key}" async></script>'


def _context(request: HttpRequest, target: Target, form: WidgetSettingsForm | None = None) -> dict:
    channel = _channel(target)
    if channel is not None and form is None:
        form = WidgetSettingsForm.for_channel(channel)
    return {
        "target": target,
        "perms": target.perms,
        "channel": channel,
        "form": form,
        "snippet": snippet(request, channel) if channel else "",
        # the daily budget is the agent's, shared by the widget and the API keys (set on the keys page)
        "budget": budgets_for(target.key) if target.perms.publish else None,
        "spend": spend_today(target.key) if target.perms.publish else None,
        "title": f"{target.name}: publish",
        "section": f"{target.kind}s",
    }


def _back(target: Target) -> HttpResponse:
    return redirect(target.url("publish-page"))


@staff_view
@require_GET
def publish_page(request: HttpRequest, public_id: str, kind: str) -> HttpResponse:
    target = _target(request, kind, public_id)
    return page(request, "builder/publish.html", _context(request, target))


@staff_view
@require_POST
@_owners_only
def widget_create(request: HttpRequest, public_id: str, kind: str) -> HttpResponse:
    target = _target(request, kind, public_id)
    if not target.perms.publish:
        raise _NotOwner()
    questions = [q for q in target.config.get("suggested_questions") or [] if len(q) <= MAX_QUESTION_CHARS]
    try:
        widget_channel_create(
            agent_key=target.key,
            user=request.user,
            title=target.name[:80],
            greeting=(target.config.get("opening_message") or "")[:500],
            suggested_questions=questions[:MAX_QUESTIONS],
        )
    except ChannelError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request, "Web widget created. Add the websites that may show it, then paste the snippet."
        )
    return _back(target)


@staff_view
@require_http_methods(["POST"])
@_owners_only
def widget_settings(request: HttpRequest, public_id: str, kind: str) -> HttpResponse:
    target = _target(request, kind, public_id)
    channel = _owned_channel(target)
    form = WidgetSettingsForm.for_channel(channel, request.POST)
    status = 422
    if form.is_valid():
        try:
            widget_channel_update(channel=channel, user=request.user, **form.settings)
        except ChannelError as exc:
            for name, errors in exc.fields.items():
                for error in errors:
                    form.add_error(name if name in form.fields else None, error)
        else:
            form = WidgetSettingsForm.for_channel(channel)
            form.saved = True
            status = 200
    return page(
        request, "builder/publish.html", _context(request, target, form), partial="settings", status=status
    )


def _change_widget(request: HttpRequest, public_id: str, kind: str, change, done: str) -> HttpResponse:
    """Apply ``change(channel, user)`` to the agent's widget; say ``done`` or why not, then go back
    to the Publish page."""
    target = _target(request, kind, public_id)
    channel = _owned_channel(target)
    try:
        change(channel=channel, user=request.user)
    except ChannelError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, done)
    return _back(target)


@staff_view
@require_POST
@_owners_only
def widget_enabled(request: HttpRequest, public_id: str, kind: str) -> HttpResponse:
    enabled = request.POST.get("enabled") == "1"
    return _change_widget(
        request,
        public_id,
        kind,
        functools.partial(widget_channel_set_enabled, enabled=enabled),
        "The widget is on." if enabled else "The widget is off: visitors see that the chat is switched off.",
    )


@staff_view
@require_POST
@_owners_only
def widget_rotate(request: HttpRequest, public_id: str, kind: str) -> HttpResponse:
    return _change_widget(
        request,
        public_id,
        kind,
        widget_channel_rotate_key,
        "New key made. Paste the new snippet into your website: the old one has stopped working.",
    )


@staff_view
@require_POST
@_owners_only
def widget_rotate_identity(request: HttpRequest, public_id: str, kind: str) -> HttpResponse:
    return _change_widget(
        request,
        public_id,
        kind,
        widget_channel_rotate_identity_secret,
        "New identity secret made. Put it in your server's settings: tokens signed with the old one are refused.",
    )


@staff_view
@require_GET
@xframe_options_sameorigin
@csp_replace({"frame-ancestors": [SELF]})
def widget_preview(request: HttpRequest, public_id: str, kind: str) -> HttpResponse:
    """A sample page with the snippet, shown in an iframe on the Publish page."""
    target = _target(request, kind, public_id)
    channel = _channel(target)
    if channel is None:
        raise Http404("Not found.")
    context = {"target": target, "channel": channel, "widget_src": static("widget/widget.js")}
    return render(request, "builder/widget_preview.html", context)
