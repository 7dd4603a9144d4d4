"""Reads for the API: every query that answers "what may this caller see".

Each ``*_for_caller`` helper returns the object or raises ``Http404``: an object
that exists but belongs to someone else is indistinguishable from one that does
not exist, so ids cannot be probed.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

from django.db import connection
from django.db.models import QuerySet
from django.http import Http404

from runtime.models import AgentConversation, AgentMessage, AgentRun

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
    queryset = AgentConversation.objects.filter(**caller.conversation_filter()).order_by("-updated_at")
    if caller.api_key is not None:
        queryset = queryset.distinct()  # one row per conversation, however many of the key's runs
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
    *, conversation: AgentConversation, limit: int, offset: int, from_newest: bool = False
) -> tuple[list[AgentMessage], int]:
    """One page of a conversation's messages in order, and the total count.

    ``offset`` counts from the first message, or with ``from_newest`` from the last one (a chat
    window shows the latest page first and loads older ones above it); the page is in order either way.
    """
    queryset = AgentMessage.objects.filter(conversation=conversation)
    total = queryset.count()
    if from_newest:
        return list(reversed(queryset.order_by("-seq")[offset : offset + limit])), total
    return list(queryset.order_by("seq")[offset : offset + limit]), total


EventRow = tuple[int, str, Any, str, int, Any]  # seq, event_type, payload, visibility, attempt, created_at


def run_status_and_events(
    *, run_id: Any, after_seq: int, limit: int = 500, caller: Caller | None = None
) -> tuple[str, list[EventRow]]:
    """A run's status and its events with ``seq > after_seq`` (oldest first, at most ``limit``).

    One query, so one snapshot: if the status says the run has ended, its terminal
    event is among the rows (they commit together). With ``caller``, a run that is
    not the caller's raises ``Http404``.
    """
    runs = AgentRun.objects.filter(pk=_as_uuid(run_id, "run"))
    if caller is not None:
        runs = runs.filter(**caller.owner_filter())
    visible, params = runs.order_by().values("pk").query.sql_with_params()
    sql = (
        "SELECT r.status, e.seq, e.event_type, e.payload, e.visibility, e.attempt, e.created_at "  # noqa: S608
        "FROM runtime_agentrun AS r LEFT JOIN LATERAL ("
        "SELECT seq, event_type, payload, visibility, attempt, created_at FROM runtime_agentevent "
        "WHERE run_id = r.id AND seq > %s ORDER BY seq LIMIT %s) AS e ON true "
        f"WHERE r.id IN ({visible}) ORDER BY e.seq"  # the ORM's SQL for "visible to the caller"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [after_seq, limit, *params])
        rows = cursor.fetchall()
    if not rows:
        raise Http404("No run with this id.")
    # jsonb comes back as text from Django's cursor (it keeps its own JSON handling)
    return rows[0][0], [
        (seq, kind, _json(payload), *rest) for _, seq, kind, payload, *rest in rows if seq is not None
    ]


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value
