"""Fenced writes on a run's lease.

A claim mints a fresh ``lease_token`` (the fencing token). Every later write of
the claiming worker names that token in its WHERE clause, so once the lease has
expired and been rescued (which clears the token) the old worker's writes match
no row and it learns it must stop. All statements are plain SQL: this is the
hot path of every run.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction

from runtime import conf
from runtime.bus import get_bus
from runtime.events import LeaseLost, dumps, insert_events, reserve_seqs
from runtime.messages import message_arrays


@dataclass(frozen=True)
class Claim:
    run_id: str
    lease_token: str
    attempt: int
    max_attempts: int
    agent_key: str
    # What the runner needs, loaded by the claim itself (see _CLAIM_SQL); None: load it.
    run: dict[str, Any] | None = field(default=None, compare=False)
    history: list[dict[str, Any]] | None = field(default=None, compare=False)
    # seq of this attempt's run.started; 1 means the run never ran before (so has no checkpoint)
    started_seq: int | None = None


@dataclass(frozen=True)
class HeartbeatResult:
    alive: bool
    cancel_requested: bool


RUN_COLUMNS = (
    "agent_version", "conversation_id", "parent_run_id", "user_id", "anonymous_session_id",
    "input", "metadata", "model", "cancel_requested_at", "caller",
)  # fmt: skip
_JSON_COLUMNS = {"input", "metadata"}

# One statement claims a batch, writes each run's ``run.started`` event (seq 1 of the
# attempt's events), wakes listeners and returns everything the runner needs, the
# conversation history included. On the hot path of every run: one round trip per batch.
_CLAIM_SQL = """
WITH candidates AS (
    SELECT id FROM runtime_agentrun
    WHERE status = 'queued' AND available_at <= now() {filter}
    ORDER BY available_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE runtime_agentrun AS r
    SET status = 'running',
        attempt = r.attempt + 1,
        lease_owner = %(owner)s,
        lease_token = gen_random_uuid(),
        lease_expires_at = now() + make_interval(secs => %(ttl)s),
        started_at = now(),
        next_seq = r.next_seq + 1
    FROM candidates
    WHERE r.id = candidates.id
    RETURNING r.id, r.lease_token, r.attempt, r.max_attempts, r.agent_key, r.available_at, r.next_seq,
        {columns}
), started AS (
    INSERT INTO runtime_agentevent (run_id, seq, event_type, payload, visibility, attempt, created_at)
    SELECT id, next_seq, 'run.started',
        jsonb_build_object('run_id', id::text, 'attempt', attempt, 'agent_key', agent_key),
        %(visibility)s, attempt, now()
    FROM claimed
)
SELECT c.id, c.lease_token, c.attempt, c.max_attempts, c.agent_key, c.available_at, c.next_seq, {c_columns},
    CASE WHEN c.conversation_id IS NULL OR c.parent_run_id IS NOT NULL THEN '[]'::jsonb ELSE (
        SELECT coalesce(jsonb_agg(jsonb_build_object(
            'role', m.role, 'content', m.content, 'tool_calls', m.tool_calls,
            'tool_call_id', m.tool_call_id, 'name', m.name) ORDER BY m.seq), '[]'::jsonb)
        FROM runtime_agentmessage m JOIN runtime_agentrun pr ON pr.id = m.run_id
        WHERE m.conversation_id = c.conversation_id AND pr.status = 'succeeded' AND m.run_id <> c.id
    ) END AS history
    {notify}
FROM claimed c
"""


def _loads(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _message(raw: dict[str, Any]) -> dict[str, Any]:
    """A stored message in the neutral format (empty optional keys left out, as AgentMessage.as_dict)."""
    message = {"role": raw["role"], "content": raw["content"]}
    for key in ("tool_calls", "tool_call_id", "name"):
        if raw.get(key):
            message[key] = raw[key]
    return message


def _claim(
    candidate_filter: str, params: dict[str, Any], *, owner: str, limit: int, ttl: float
) -> list[Claim]:
    bus = get_bus()
    sql = _CLAIM_SQL.format(
        filter=candidate_filter,
        columns=", ".join(f"r.{c}" for c in RUN_COLUMNS),
        c_columns=", ".join(f"c.{c}" for c in RUN_COLUMNS),
        # the db bus notifies in the same statement; the redis bus publishes below
        notify=", pg_notify('agent_events', c.id::text || ':' || c.next_seq)" if bus.name == "db" else "",
    )
    params = {
        **params,
        "owner": owner,
        "limit": limit,
        "ttl": ttl,
        "visibility": conf.visibility_of("run.started"),
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
        if bus.name != "db":
            for row in rows:
                bus.notify_events(cursor, str(row[0]), row[6])
    claims = []
    for row in sorted(rows, key=lambda r: r[5]):
        run = {
            name: _loads(value) if name in _JSON_COLUMNS else value
            for name, value in zip(RUN_COLUMNS, row[7:], strict=False)
        }
        run.update(id=row[0], agent_key=row[4], attempt=row[2], max_attempts=row[3])
        history = [_message(m) for m in _loads(row[7 + len(RUN_COLUMNS)])]
        claims.append(
            Claim(
                str(row[0]), str(row[1]), row[2], row[3], row[4], run=run, history=history, started_seq=row[6]
            )
        )
    return claims


def claim_runs(*, owner: str, limit: int, ttl: float, agent_keys: list[str] | None = None) -> list[Claim]:
    """Claim up to ``limit`` due runs, oldest ``available_at`` first."""
    if agent_keys:
        return _claim(
            "AND agent_key = ANY(%(keys)s)", {"keys": list(agent_keys)}, owner=owner, limit=limit, ttl=ttl
        )
    return _claim("", {}, owner=owner, limit=limit, ttl=ttl)


def claim_run_ids(run_ids: list[str], *, owner: str, ttl: float) -> list[Claim]:
    """Claim these runs if they are still queued and due (the Redis Streams queue)."""
    if not run_ids:
        return []
    return _claim(
        "AND id = ANY(%(ids)s::uuid[])", {"ids": list(run_ids)}, owner=owner, limit=len(run_ids), ttl=ttl
    )


def heartbeat(run_id: str, lease_token: str, *, ttl: float) -> HeartbeatResult:
    beats = heartbeat_many([(run_id, lease_token)], ttl=ttl)
    if run_id not in beats:
        return HeartbeatResult(alive=False, cancel_requested=False)
    return HeartbeatResult(alive=True, cancel_requested=beats[run_id])


def heartbeat_many(held: list[tuple[str, str]], *, ttl: float) -> dict[str, bool]:
    """Extend the leases of ``(run_id, lease_token)`` pairs in one statement, each fenced by its token.

    Returns {run_id: cancel requested} for the leases still held; a run missing from it lost its lease.
    """
    if not held:
        return {}
    held = sorted(held, key=lambda pair: str(pair[0]))  # the lock order of every multi-run statement
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE runtime_agentrun AS a SET lease_expires_at = now() + make_interval(secs => %s) "
            "FROM unnest(%s::uuid[], %s::uuid[]) AS h(id, token) "
            "WHERE a.id = h.id AND a.lease_token = h.token AND a.status = 'running' "
            "RETURNING a.id, a.cancel_requested_at IS NOT NULL",
            [ttl, [run_id for run_id, _ in held], [token for _, token in held]],
        )
        return {str(run_id): cancel for run_id, cancel in cursor.fetchall()}


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
        %(error)s::text[], %(n)s::int[], %(attempt)s::int[], %(pt)s::int[], %(ct)s::int[], %(cost)s::float8[])
        AS o(id, token, status, output, error, n, attempt, pt, ct, cost)
), r AS (
    UPDATE runtime_agentrun AS a
    SET next_seq = a.next_seq + o.n, status = o.status, output = o.output::jsonb, error = o.error::jsonb,
        finished_at = now(), lease_token = NULL, lease_expires_at = NULL,
        prompt_tokens = a.prompt_tokens + o.pt, completion_tokens = a.completion_tokens + o.ct,
        cost_usd = a.cost_usd + o.cost
    FROM o
    WHERE a.id = o.id AND a.lease_token = o.token AND a.status = 'running'
    RETURNING a.id, a.next_seq, o.n, o.attempt
), ev AS (
    INSERT INTO runtime_agentevent (run_id, seq, event_type, payload, visibility, attempt, created_at)
    SELECT r.id, r.next_seq - r.n + e.ord, e.t, e.p::jsonb, e.v, r.attempt, now()
    FROM r JOIN unnest(%(e_run)s::uuid[], %(e_ord)s::int[], %(e_type)s::text[], %(e_payload)s::text[],
        %(e_vis)s::text[]) AS e(run_id, ord, t, p, v) ON e.run_id = r.id
), m AS (  -- the messages of the runs that still held their lease
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
_OUTCOME_COLUMNS = ("ids", "tokens", "status", "output", "error", "n", "attempt", "pt", "ct", "cost")
_EVENT_COLUMNS = ("e_run", "e_ord", "e_type", "e_payload", "e_vis")
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
    params: dict[str, list[Any]] = {
        name: [] for name in (*_OUTCOME_COLUMNS, *_EVENT_COLUMNS, *_MESSAGE_COLUMNS)
    }
    visibility = conf.runtime_settings()["EVENT_VISIBILITY"]
    # Rows are locked in input order; one order for every multi-run statement avoids deadlocks.
    for o in sorted(outcomes, key=lambda o: str(o.run_id)):
        usage = o.usage or {}
        row = (
            o.run_id, o.lease_token, o.status, dumps(o.output) if o.output is not None else None,
            dumps(o.error) if o.error is not None else None, len(o.events), o.attempt,
            int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)),
            float(usage.get("cost_usd", 0) or 0),
        )  # fmt: skip
        for name, value in zip(_OUTCOME_COLUMNS, row, strict=True):
            params[name].append(value)
        for ordinal, (event_type, payload) in enumerate(o.events, start=1):
            params["e_run"].append(o.run_id)
            params["e_ord"].append(ordinal)
            params["e_type"].append(event_type)
            params["e_payload"].append(dumps(payload))
            params["e_vis"].append(visibility.get(event_type, "user"))
        if o.messages and o.conversation_id:
            count = len(o.messages)
            params["m_run"] += [o.run_id] * count
            params["m_conv"] += [str(o.conversation_id)] * count
            params["m_agent"] += [o.agent_key] * count
            for name, column in zip(_MESSAGE_COLUMNS[3:], message_arrays(o.messages), strict=True):
                params[name] += column
    bus = get_bus()
    in_sql = bus.name == "db"
    notify = ", pg_notify('agent_events', r.id::text || ':' || r.next_seq)" if in_sql else ""
    cursor.execute(_FINISH_SQL.format(notify=notify), params)
    rows = cursor.fetchall()
    if not in_sql:
        for run_id, last in rows:
            bus.notify_events(cursor, str(run_id), last)
    return {str(row[0]) for row in rows}


def backoff_seconds(attempt: int, *, base: float = 1.0, cap: float = 300.0) -> float:
    """Exponential backoff with full jitter: uniform in [base*2^(n-1)/2, base*2^(n-1)], capped."""
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    return random.uniform(ceiling / 2, ceiling)


def retry_or_fail(
    run_id: str,
    lease_token: str,
    *,
    attempt: int,
    max_attempts: int,
    error: dict[str, Any],
    events: list[tuple[str, dict[str, Any]]],
    retry_base: float = 1.0,
) -> str:
    """After a failed attempt: requeue with backoff, or fail for good. Returns the new status."""
    if attempt >= max_attempts:
        finish(
            run_id,
            lease_token,
            status="failed",
            attempt=attempt,
            error=error,
            events=[*events, ("run.failed", {"error": error, "attempt": attempt})],
        )
        return "failed"
    delay = backoff_seconds(attempt, base=retry_base)
    with transaction.atomic(), connection.cursor() as cursor:
        retry_events = [
            *events,
            ("run.retrying", {"attempt": attempt + 1, "reason": error, "delay_s": delay}),
        ]
        first = reserve_seqs(cursor, run_id, len(retry_events), lease_token=lease_token)
        cursor.execute(
            "UPDATE runtime_agentrun SET status = 'queued', error = %s::jsonb, lease_token = NULL, "
            "lease_owner = '', lease_expires_at = NULL, available_at = now() + make_interval(secs => %s) "
            "WHERE id = %s",
            [dumps(error), delay, run_id],
        )
        last = insert_events(cursor, run_id, first, attempt, retry_events)
        get_bus().notify_events(cursor, run_id, last)
    return "queued"


def release(run_id: str, lease_token: str, *, attempt: int) -> bool:
    """Give a lease back on shutdown: the run is queued again and this attempt does not count."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            events = [
                ("run.retrying", {"attempt": attempt, "reason": {"code": "worker_shutdown"}, "delay_s": 0})
            ]
            first = reserve_seqs(cursor, run_id, 1, lease_token=lease_token)
            cursor.execute(
                "UPDATE runtime_agentrun SET status = 'queued', attempt = greatest(attempt - 1, 0), "
                "lease_token = NULL, lease_owner = '', lease_expires_at = NULL, available_at = now() WHERE id = %s",
                [run_id],
            )
            last = insert_events(cursor, run_id, first, attempt, events)
            get_bus().notify_events(cursor, run_id, last)
            cursor.execute("SELECT pg_notify('agent_runs', '')")
    except LeaseLost:
        return False
    return True


_SWEEP_SQL = """
WITH expired AS (
    SELECT id FROM runtime_agentrun
    WHERE status = 'running' AND parent_run_id IS NULL AND lease_expires_at < now()
    ORDER BY lease_expires_at
    LIMIT 500
    FOR UPDATE SKIP LOCKED
)
UPDATE runtime_agentrun AS r
SET status = CASE
        WHEN r.cancel_requested_at IS NOT NULL THEN 'cancelled'
        WHEN r.attempt >= r.max_attempts THEN 'failed'
        ELSE 'queued' END,
    finished_at = CASE WHEN r.cancel_requested_at IS NOT NULL OR r.attempt >= r.max_attempts
        THEN now() ELSE NULL END,
    error = CASE WHEN r.cancel_requested_at IS NULL AND r.attempt >= r.max_attempts
        THEN '{"code": "worker_lost", "message": "The worker running this agent stopped responding too many times."}'::jsonb
        ELSE r.error END,
    lease_token = NULL, lease_owner = '', lease_expires_at = NULL,
    available_at = now(),
    next_seq = r.next_seq + 1
FROM expired
WHERE r.id = expired.id
RETURNING r.id, r.status, r.next_seq, r.attempt
"""


def sweep_expired() -> list[tuple[str, str]]:
    """Rescue runs whose worker stopped heartbeating: requeue, or end them if out of attempts.

    Child runs (sub-agents) are not requeued on their own: they live inside
    their parent's attempt and are ended with it.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_SWEEP_SQL)
        rows = cursor.fetchall()
        for run_id, status, seq, attempt in rows:
            if status == "queued":
                event = (
                    "run.retrying",
                    {"attempt": attempt + 1, "reason": {"code": "lease_expired"}, "delay_s": 0},
                )
            elif status == "cancelled":
                event = ("run.cancelled", {"reason": "cancel requested"})
            else:
                event = ("run.failed", {"error": {"code": "worker_lost"}, "attempt": attempt})
            insert_events(cursor, str(run_id), seq, attempt, [event])
            get_bus().notify_events(cursor, str(run_id), seq)
        if rows:
            # Children of rescued parents are orphans now: end them.
            cursor.execute(
                "UPDATE runtime_agentrun SET status = 'cancelled', finished_at = now(), lease_token = NULL, "
                "lease_expires_at = NULL WHERE parent_run_id = ANY(%s) AND status IN ('queued', 'running')",
                [[str(r[0]) for r in rows]],
            )
            if any(r[1] == "queued" for r in rows):
                cursor.execute("SELECT pg_notify('agent_runs', '')")
    return [(str(r[0]), r[1]) for r in rows]
