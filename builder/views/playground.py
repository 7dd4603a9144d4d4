"""Playground endpoints: send a turn, cancel it, and render finished turns (sanitised markdown)."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from builder.access import get_agent_for_user, get_system_for_user
from builder.schema import ConfigError
from builder.services.playground import playground_send, playground_turns, turn_for_run
from builder.views.common import staff_view
from runtime.attachments import limits as attachment_limits
from runtime.models import AgentConversation, AgentRun
from runtime.services import RunAlreadyFinished, run_cancel


def _conversation(request: HttpRequest, key: str, conversation_id: str | None) -> AgentConversation | None:
    if not conversation_id:
        return None
    try:
        return AgentConversation.objects.get(pk=conversation_id, user=request.user, agent_key=key)
    except (AgentConversation.DoesNotExist, ValueError, TypeError):
        raise Http404("Unknown conversation.") from None


def _run_urls(run: AgentRun) -> dict[str, Any]:
    return {
        "run_id": str(run.pk),
        "conversation_id": str(run.conversation_id),
        "agent_version": run.agent_version,
        "stream_url": reverse("agents:run-stream", args=[run.pk]) + "?include_debug=true",
        "cancel_url": reverse("builder:playground-cancel", args=[run.pk]),
        "turn_url": reverse("builder:playground-turn", args=[run.pk]),
    }


def _send(request: HttpRequest, *, agent: Any = None, system: Any = None) -> HttpResponse:
    key = system.slug if system is not None else agent.slug
    try:
        run = playground_send(
            user=request.user,
            text=request.POST.get("message", ""),
            agent=agent,
            system=system,
            target=request.POST.get("target", "draft"),
            conversation=_conversation(request, key, request.POST.get("conversation_id")),
            replace_last=request.POST.get("replace_last") == "1",
            idempotency_key=request.POST.get("idempotency_key", "")[:200] or None,
            files=request.FILES.getlist("files"),
        )
    except ConfigError as exc:
        field, message = next(iter(exc.errors.items()))
        return JsonResponse({"field": field, "message": message}, status=422)
    return JsonResponse(_run_urls(run), status=201)


@staff_view
@require_POST
def agent_send(request: HttpRequest, public_id: str) -> HttpResponse:
    agent, _perms = get_agent_for_user(request.user, public_id)
    return _send(request, agent=agent)


@staff_view
@require_POST
def system_send(request: HttpRequest, public_id: str) -> HttpResponse:
    system, _perms = get_system_for_user(request.user, public_id)
    return _send(request, system=system)


def _own_run(request: HttpRequest, run_id: str) -> AgentRun:
    try:
        return AgentRun.objects.get(pk=run_id, user=request.user, parent_run__isnull=True)
    except (AgentRun.DoesNotExist, ValueError):
        raise Http404("Unknown run.") from None


@staff_view
@require_POST
def run_cancel_view(request: HttpRequest, run_id: str) -> HttpResponse:
    run = _own_run(request, run_id)
    try:
        run = run_cancel(run=run)
    except RunAlreadyFinished:
        return JsonResponse({"status": run.status, "message": "The run had already finished."}, status=409)
    return JsonResponse({"status": run.status})


@staff_view
@require_GET
def run_turn(request: HttpRequest, run_id: str) -> HttpResponse:
    """One finished (or running) turn as HTML; the client swaps it in when the stream ends."""
    run = _own_run(request, run_id)
    response = TemplateResponse(request, "builder/_turn.html", {"turn": turn_for_run(run=run)})
    response["X-Run-Status"] = run.status
    return response


def playground_context(
    request: HttpRequest, *, key: str, agent: Any = None, system: Any = None
) -> dict[str, Any]:
    """What the playground pane needs: earlier conversations, the open one, send URL, targets."""
    conversations = list(
        AgentConversation.objects.filter(
            user=request.user, agent_key=key, metadata__playground=True
        ).order_by("-updated_at")[:20]
    )
    current = None
    requested = request.GET.get("conversation")
    if requested:
        current = next((c for c in conversations if str(c.pk) == requested), None) or _conversation(
            request, key, requested
        )
    if system is not None:
        send_url = reverse("builder:system-playground-send", args=[system.public_id])
        targets = [("draft", "Members' drafts")] + (
            [("published", "Published pins")] if system.published_at else []
        )
    else:
        send_url = reverse("builder:agent-playground-send", args=[agent.public_id])
        targets = [("draft", "Saved draft")] + [
            (str(n), f"Version {n}")
            for n in agent.versions.order_by("-number").values_list("number", flat=True)
        ]
    return {
        "send_url": send_url,
        "targets": targets,
        "conversations": conversations,
        "conversation": current,
        "turns": playground_turns(conversation=current) if current else [],
        "base_url": request.path,
        "attachment_limits": attachment_limits(),
        # opening message and suggestions of what answers first (the entry agent of a system)
        "intro": (agent or system.entry_agent).draft.config,
    }
