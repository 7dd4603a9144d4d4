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


def numbered_insert(
    conversation_id: Any, run_id: Any, messages: Sequence[dict[str, Any]], *, agent_key: str = ""
) -> tuple[str, list[Any]]:
    """An INSERT of ``messages`` numbered ``base + 1``, ``base + 2``… from the CTE ``seq_base``."""
    values: list[Any] = []
    for ordinal, message in enumerate(messages, start=1):
        values.extend(
            [
                ordinal,
                str(message.get("role", "assistant"))[:20],
                dumps(message.get("content")),
                dumps(message["tool_calls"]) if message.get("tool_calls") else None,
                str(message.get("tool_call_id") or ""),
                str(message.get("name") or ""),
            ]
        )
    rows = ",".join(
        ["(%s::int, %s::varchar, %s::jsonb, %s::jsonb, %s::varchar, %s::varchar)"] * len(messages)
    )
    sql = (
        f"INSERT INTO runtime_agentmessage ({COLUMNS}) "  # noqa: S608 - only placeholders are interpolated
        "SELECT %s::uuid, %s::uuid, b.base + v.ord, v.role, v.content, v.tool_calls, v.tool_call_id, v.name, "
        "%s, now() "
        f"FROM seq_base AS b, (VALUES {rows}) AS v(ord, role, content, tool_calls, tool_call_id, name)"
    )
    return sql, [str(conversation_id), str(run_id) if run_id else None, agent_key, *values]


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
