"""Conversation messages: appended with gap-free, collision-free sequence numbers.

A writer reserves seqs by bumping ``last_message_seq`` on the conversation row
and numbers its messages after the old value, in the same statement. Concurrent
writers to one conversation (a double-clicked Send, a user message while the
worker stores an answer) queue on the row lock, and each sees the counter the
previous one left: PostgreSQL re-evaluates ``SET`` on the newest row version.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from runtime.events import dumps

COLUMNS = "conversation_id, run_id, seq, role, content, tool_calls, tool_call_id, name, agent_key, created_at"
# One row: the seq just before the first new message. Used as the CTE ``seq_base``.
RESERVE_SQL = (
    "UPDATE runtime_agentconversation SET updated_at = now(), last_message_seq = last_message_seq + %s "
    "WHERE id = %s RETURNING last_message_seq - %s AS base"
)
# The messages as rows ``m`` of parallel arrays (``message_arrays``), numbered after ``b.base``.
ROWS = "m(ord, role, content, tool_calls, tool_call_id, name)"
VALUES = "b.base + m.ord, m.role, m.content::jsonb, m.tool_calls::jsonb, m.tool_call_id, m.name"


def message_arrays(messages: Sequence[dict[str, Any]]) -> list[list[Any]]:
    """Ordinal, role, content, tool calls, tool call id and name of each message, as six arrays."""
    columns: list[list[Any]] = [[], [], [], [], [], []]
    for ordinal, message in enumerate(messages, start=1):
        row = (
            ordinal,
            str(message.get("role", "assistant"))[:20],
            dumps(message.get("content")),
            dumps(message["tool_calls"]) if message.get("tool_calls") else None,
            str(message.get("tool_call_id") or ""),
            str(message.get("name") or ""),
        )
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    return columns


def numbered_insert(
    conversation_id: Any, run_id: Any, messages: Sequence[dict[str, Any]], *, agent_key: str = ""
) -> tuple[str, list[Any]]:
    """An INSERT of ``messages`` numbered ``base + 1``, ``base + 2``… from the CTE ``seq_base``."""
    sql = (
        f"INSERT INTO runtime_agentmessage ({COLUMNS}) "  # noqa: S608 - constants only
        f"SELECT %s::uuid, %s::uuid, {VALUES}, %s, now() FROM seq_base AS b, "
        f"unnest(%s::int[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[]) AS {ROWS}"
    )
    return sql, [str(conversation_id), str(run_id) if run_id else None, agent_key, *message_arrays(messages)]


def append_messages(
    cursor, conversation_id: Any, run_id: Any, messages: Sequence[dict[str, Any]], *, agent_key: str = ""
) -> None:
    """Append messages to a conversation in one statement, keeping every one (repeats included)."""
    if not messages:
        cursor.execute(
            "UPDATE runtime_agentconversation SET updated_at = now() WHERE id = %s", [conversation_id]
        )
        return
    count = len(messages)
    insert, params = numbered_insert(conversation_id, run_id, messages, agent_key=agent_key)
    cursor.execute(
        f"WITH seq_base AS ({RESERVE_SQL}) {insert}", [count, str(conversation_id), count, *params]
    )
