"""A run's outcome: its terminal status, last events and answer, written fenced by its lease.

The outcomes of runs that end together share one statement (``finish_many``); each
row is fenced on its own, so a run whose lease is gone writes nothing and holds no
other run back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import connection

from runtime.bus import get_bus
from runtime.events import EVENTS_CTE, LeaseLost, dumps, event_params
from runtime.messages import message_arrays


def finish(
    run_id: str,
    lease_token: str,
    *,
    status: str,
    attempt: int,
    events: list[tuple[str, dict[str, Any]]],
    output: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
    usage: dict[str, Any] | None = None,
    messages: list[dict[str, Any]] | None = None,
    conversation_id: str | None = None,
    agent_key: str = "",
) -> None:
    """Write the terminal status, the last events and the run's messages atomically."""
    has_messages = bool(messages and conversation_id)
    outcome = Outcome(
        run_id, lease_token, status, attempt, events, output, error, usage,
        conversation_id=conversation_id if has_messages else None,
        messages=messages if has_messages else None,
        agent_key=agent_key,
    )  # fmt: skip
    # The one statement is the whole write: no BEGIN/COMMIT round trips.
    if not finish_many([outcome]):
        raise LeaseLost(run_id)


@dataclass(frozen=True)
class Outcome:
    """What ``finish_many`` writes for one run: its terminal status, last events and messages."""

    run_id: str
    lease_token: str
    status: str
    attempt: int
    events: list[tuple[str, dict[str, Any]]]
    output: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    usage: dict[str, Any] | None = None
    # messages the run adds to its conversation (its answer), written only with the outcome
    conversation_id: str | None = None
    messages: list[dict[str, Any]] | None = None
    agent_key: str = ""


# The outcomes of many runs in one statement (runs that end together share the round trip).
# Each row is fenced on its own: a run whose lease is gone matches no row, so neither its
# status nor its events are written, and the others are not held back by it. In autocommit
# the statement is its own transaction: status, output, events and notification commit together.
_FINISH_SQL = """
WITH o AS (
    SELECT * FROM unnest(%(ids)s::uuid[], %(tokens)s::uuid[], %(status)s::text[], %(output)s::text[],
        %(error)s::text[], %(n)s::int[], %(attempt)s::int[], %(pt)s::int[], %(ct)s::int[], %(cost)s::float8[],
        %(upt)s::int[]) AS o(id, token, status, output, error, n, attempt, pt, ct, cost, upt)
), r AS (
    UPDATE runtime_agentrun AS a
    SET next_seq = a.next_seq + o.n, status = o.status, output = o.output::jsonb, error = o.error::jsonb,
        finished_at = now(), lease_token = NULL, lease_expires_at = NULL,
        prompt_tokens = a.prompt_tokens + o.pt, completion_tokens = a.completion_tokens + o.ct,
        cost_usd = a.cost_usd + o.cost, unpriced_tokens = a.unpriced_tokens + o.upt
    FROM o
    WHERE a.id = o.id AND a.lease_token = o.token AND a.status = 'running'
    RETURNING a.id, a.next_seq, o.n, o.attempt
){events_cte}, m AS (  -- the messages of the runs that still held their lease
    SELECT m.* FROM unnest(%(m_run)s::uuid[], %(m_conv)s::uuid[], %(m_agent)s::text[], %(m_ord)s::int[],
        %(m_role)s::text[], %(m_content)s::text[], %(m_calls)s::text[], %(m_call_id)s::text[],
        %(m_name)s::text[]) AS m(run_id, conv, agent, ord, role, content, tool_calls, tool_call_id, name)
    WHERE m.run_id IN (SELECT id FROM r)
), counts AS (
    SELECT conv, count(*)::int AS n FROM m GROUP BY conv
), locked AS (  -- conversations are locked in id order by every statement that locks several
    SELECT c.id FROM runtime_agentconversation AS c WHERE c.id IN (SELECT conv FROM counts)
    ORDER BY c.id FOR NO KEY UPDATE
), seq_base AS (  -- reserve each conversation's seqs (see runtime/messages.py)
    UPDATE runtime_agentconversation AS c
    SET updated_at = now(), last_message_seq = c.last_message_seq + counts.n
    FROM counts JOIN locked ON locked.id = counts.conv
    WHERE c.id = counts.conv
    RETURNING c.id, c.last_message_seq - counts.n AS base
), msg AS (  -- a run's messages stay together, runs in id order
    INSERT INTO runtime_agentmessage (conversation_id, run_id, seq, role, content, tool_calls,
        tool_call_id, name, agent_key, created_at)
    SELECT m.conv, m.run_id, b.base + row_number() OVER (PARTITION BY m.conv ORDER BY m.run_id, m.ord),
        m.role, m.content::jsonb, m.tool_calls::jsonb, m.tool_call_id, m.name, m.agent, now()
    FROM m JOIN seq_base AS b ON b.id = m.conv
)
SELECT r.id, r.next_seq{notify} FROM r
"""
_OUTCOME_COLUMNS = ("ids", "tokens", "status", "output", "error", "n", "attempt", "pt", "ct", "cost", "upt")
_MESSAGE_COLUMNS = (
    "m_run",
    "m_conv",
    "m_agent",
    "m_ord",
    "m_role",
    "m_content",
    "m_calls",
    "m_call_id",
    "m_name",
)


def finish_many(outcomes: list[Outcome], *, cursor=None) -> set[str]:
    """Write each run's outcome (and messages) if it still holds its lease; returns the ids that did."""
    if cursor is None:
        with connection.cursor() as own:
            return finish_many(outcomes, cursor=own)
    params: dict[str, list[Any]] = {name: [] for name in (*_OUTCOME_COLUMNS, *_MESSAGE_COLUMNS)}
    # Rows are locked in input order; one order for every multi-run statement avoids deadlocks.
    outcomes = sorted(outcomes, key=lambda o: str(o.run_id))
    for o in outcomes:
        usage = o.usage or {}
        row = (
            o.run_id, o.lease_token, o.status, dumps(o.output) if o.output is not None else None,
            dumps(o.error) if o.error is not None else None, len(o.events), o.attempt,
            int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)),
            float(usage.get("cost_usd", 0) or 0), int(usage.get("unpriced_tokens", 0) or 0),
        )  # fmt: skip
        for name, value in zip(_OUTCOME_COLUMNS, row, strict=True):
            params[name].append(value)
        if o.messages and o.conversation_id:
            count = len(o.messages)
            params["m_run"] += [o.run_id] * count
            params["m_conv"] += [str(o.conversation_id)] * count
            params["m_agent"] += [o.agent_key] * count
            for name, column in zip(_MESSAGE_COLUMNS[3:], message_arrays(o.messages), strict=True):
                params[name] += column
    params.update(event_params((o.run_id, o.events) for o in outcomes))
    bus = get_bus()
    notify = bus.events_notify_sql("r.id", "r.next_seq")
    cursor.execute(_FINISH_SQL.format(events_cte=EVENTS_CTE, notify=notify), params)
    rows = cursor.fetchall()
    bus.notify_events_after(cursor, [(row[0], row[1]) for row in rows])
    return {str(row[0]) for row in rows}
