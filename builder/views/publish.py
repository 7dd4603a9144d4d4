"""The Publish page of an agent: its web widget channel (settings, on/off, key, snippet, preview).

Everyone who may see the agent sees the page; only its owners (``perms.publish``) change it, and
the runtime's channel services check ownership again through ``runtime.access``.
"""

from __future__ import annotations

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

from builder.access import get_agent_for_user
from builder.models import Agent
from builder.publish_forms import WidgetSettingsForm
from builder.views.common import page, staff_view
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


def _channel(agent: Agent) -> WidgetChannel | None:
    return WidgetChannel.objects.filter(agent_key=agent.slug).first()


def snippet(request: HttpRequest, channel: WidgetChannel) -> str:
    src = request.build_absolute_uri(static("widget/widget.js"))
    return f'<script src="{src}" data-key="{channel.publishable_key}" async></script>'


def _context(request: HttpRequest, agent: Agent, perms: Any, form: WidgetSettingsForm | None = None) -> dict:
    channel = _channel(agent)
    if channel is not None and form is None:
        form = WidgetSettingsForm.for_channel(channel)
    return {
        "agent": agent,
        "perms": perms,
        "channel": channel,
        "form": form,
        "snippet": snippet(request, channel) if channel else "",
        "title": f"{agent.name}: publish",
        "section": "agents",
    }


@staff_view
@require_GET
def publish_page(request: HttpRequest, public_id: str) -> HttpResponse:
    agent, perms = get_agent_for_user(request.user, public_id)
    return page(request, "builder/publish.html", _context(request, agent, perms))


def _refuse(request: HttpRequest, exc: ChannelError) -> None:
    messages.error(request, exc.message)


@staff_view
@require_POST
def widget_create(request: HttpRequest, public_id: str) -> HttpResponse:
    agent, perms = get_agent_for_user(request.user, public_id)
    if not perms.publish:
        raise Http404("Not found.")
    config = agent.published_version.config if agent.published_version else {}
    questions = [q for q in config.get("suggested_questions") or [] if len(q) <= MAX_QUESTION_CHARS]
    try:
        widget_channel_create(
            agent_key=agent.slug,
            user=request.user,
            title=agent.name[:80],
            greeting=(config.get("opening_message") or "")[:500],
            suggested_questions=questions[:MAX_QUESTIONS],
        )
    except ChannelError as exc:
        _refuse(request, exc)
    else:
        messages.success(
            request, "Web widget created. Add the websites that may show it, then paste the snippet."
        )
    return redirect("builder:agent-publish-page", public_id=agent.public_id)


@staff_view
@require_http_methods(["POST"])
def widget_settings(request: HttpRequest, public_id: str) -> HttpResponse:
    agent, perms = get_agent_for_user(request.user, public_id)
    channel = _channel(agent)
    if channel is None or not perms.publish:
        raise Http404("Not found.")
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
    context = _context(request, agent, perms, form)
    return page(request, "builder/publish.html", context, partial="settings", status=status)


@staff_view
@require_POST
def widget_enabled(request: HttpRequest, public_id: str) -> HttpResponse:
    agent, perms = get_agent_for_user(request.user, public_id)
    channel = _channel(agent)
    if channel is None or not perms.publish:
        raise Http404("Not found.")
    enabled = request.POST.get("enabled") == "1"
    try:
        widget_channel_set_enabled(channel=channel, user=request.user, enabled=enabled)
    except ChannelError as exc:
        _refuse(request, exc)
    else:
        messages.success(
            request,
            "The widget is on."
            if enabled
            else "The widget is off: visitors see that the chat is switched off.",
        )
    return redirect("builder:agent-publish-page", public_id=agent.public_id)


@staff_view
@require_POST
def widget_rotate(request: HttpRequest, public_id: str) -> HttpResponse:
    agent, perms = get_agent_for_user(request.user, public_id)
    channel = _channel(agent)
    if channel is None or not perms.publish:
        raise Http404("Not found.")
    try:
        widget_channel_rotate_key(channel=channel, user=request.user)
    except ChannelError as exc:
        _refuse(request, exc)
    else:
        messages.success(
            request, "New key made. Paste the new snippet into your website: the old one has stopped working."
        )
    return redirect("builder:agent-publish-page", public_id=agent.public_id)


@staff_view
@require_POST
def widget_rotate_identity(request: HttpRequest, public_id: str) -> HttpResponse:
    agent, perms = get_agent_for_user(request.user, public_id)
    channel = _channel(agent)
    if channel is None or not perms.publish:
        raise Http404("Not found.")
    try:
        widget_channel_rotate_identity_secret(channel=channel, user=request.user)
    except ChannelError as exc:
        _refuse(request, exc)
    else:
        messages.success(
            request,
            "New identity secret made. Put it in your server's settings: tokens signed with the old one are refused.",
        )
    return redirect("builder:agent-publish-page", public_id=agent.public_id)


@staff_view
@require_GET
@xframe_options_sameorigin
@csp_replace({"frame-ancestors": [SELF]})
def widget_preview(request: HttpRequest, public_id: str) -> HttpResponse:
    """A sample page with the snippet, shown in an iframe on the Publish page."""
    agent, _perms = get_agent_for_user(request.user, public_id)
    channel = _channel(agent)
    if channel is None:
        raise Http404("Not found.")
    context = {"agent": agent, "channel": channel, "widget_src": static("widget/widget.js")}
    return render(request, "builder/widget_preview.html", context)


def publish_url(agent: Agent) -> str:
    return reverse("builder:agent-publish-page", args=[agent.public_id])
