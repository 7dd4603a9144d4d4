"""Reads for the API: every query that answers "what may this caller see".

Each ``*_for_caller`` helper returns the object or raises ``Http404``: an object
that exists but belongs to someone else is indistinguishable from one that does
not exist, so ids cannot be probed.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet
from django.http import Http404

from runtime.models import AgentConversation, AgentEvent, AgentMessage, AgentRun

if TYPE_CHECKING:
    from runtime.api.permissions import Caller


def _as_uuid(value: Any, what: str) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except (TypeError, ValueError):
        raise Http404(f"No {what} with this id.") from None


def runs_for_caller(*, caller: Caller) -> QuerySet[AgentRun]:
    return AgentRun.objects.filter(**caller.owner_filter()).order_by("-created_at")


def run_for_caller(*, caller: Caller, run_id: Any) -> AgentRun:
    run = runs_for_caller(caller=caller).filter(pk=_as_uuid(run_id, "run")).first()
    if run is None:
        raise Http404("No run with this id.")
    return run


def conversations_for_caller(*, caller: Caller, agent_key: str | None = None) -> QuerySet[AgentConversation]:
    queryset = AgentConversation.objects.filter(**caller.owner_filter()).order_by("-updated_at")
    if agent_key:
        queryset = queryset.filter(agent_key=agent_key)
    return queryset


def conversation_for_caller(*, caller: Caller, conversation_id: Any) -> AgentConversation:
    conversation = (
        conversations_for_caller(caller=caller).filter(pk=_as_uuid(conversation_id, "conversation")).first()
    )
    if conversation is None:
        raise Http404("No conversation with this id.")
    return conversation


def conversation_messages(
    *, conversation: AgentConversation, limit: int, offset: int
) -> tuple[list[AgentMessage], int]:
    """One page of a conversation's messages in order, and the total count."""
    queryset = AgentMessage.objects.filter(conversation=conversation).order_by("seq")
    total = queryset.count()
    return list(queryset[offset : offset + limit]), total


def run_events_after(*, run_id: Any, after_seq: int, limit: int = 500) -> list[AgentEvent]:
    """Events of a run with ``seq > after_seq``, oldest first, at most ``limit``."""
    return list(
        AgentEvent.objects.filter(run_id=run_id, seq__gt=after_seq)
        .only("run_id", "seq", "event_type", "payload", "visibility", "attempt", "created_at")
        .order_by("seq")[:limit]
    )


def run_status(*, run_id: Any) -> str | None:
    return AgentRun.objects.filter(pk=run_id).values_list("status", flat=True).first()
