"""Fenced writes on a run's lease.

A claim mints a fresh ``lease_token`` (the fencing token). Every later write of
the claiming worker names that token in its WHERE clause, so once the lease has
expired and been rescued (which clears the token) the old worker's writes match
no row and it learns it must stop. All statements are plain SQL: this is the
hot path of every run.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction

from runtime.bus import get_bus
from runtime.events import LeaseLost, dumps, insert_events, reserve_seqs


@dataclass(frozen=True)
class Claim:
    run_id: str
    lease_token: str
    attempt: int
    max_attempts: int
    agent_key: str


@dataclass(frozen=True)
class HeartbeatResult:
    alive: bool
    cancel_requested: bool


_CLAIM_SQL = """
WITH candidates AS (
    SELECT id FROM runtime_agentrun
    WHERE status = 'queued' AND available_at <= now() {key_filter}
    ORDER BY available_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE runtime_agentrun AS r
SET status = 'running',
    attempt = r.attempt + 1,
    lease_owner = %(owner)s,
    lease_token = gen_random_uuid(),
    lease_expires_at = now() + make_interval(secs => %(ttl)s),
    started_at = now()
FROM candidates
WHERE r.id = candidates.id
RETURNING r.id, r.lease_token, r.attempt, r.max_attempts, r.agent_key, r.available_at
"""


def claim_runs(*, owner: str, limit: int, ttl: float, agent_keys: list[str] | None = None) -> list[Claim]:
    """Claim up to ``limit`` due runs, oldest ``available_at`` first."""
    params: dict[str, Any] = {"owner": owner, "limit": limit, "ttl": ttl}
    key_filter = ""
    if agent_keys:
        key_filter = "AND agent_key = ANY(%(keys)s)"
        params["keys"] = list(agent_keys)
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL.format(key_filter=key_filter), params)
        rows = sorted(cursor.fetchall(), key=lambda row: row[5])
    return [Claim(str(r[0]), str(r[1]), r[2], r[3], r[4]) for r in rows]


def claim_run(run_id: str, *, owner: str, ttl: float) -> Claim | None:
    """Claim one specific run if it is still queued and due (the Redis Streams queue)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE runtime_agentrun SET status = 'running', attempt = attempt + 1, lease_owner = %s, "
            "lease_token = gen_random_uuid(), lease_expires_at = now() + make_interval(secs => %s), "
            "started_at = now() WHERE id = %s AND status = 'queued' AND available_at <= now() "
            "RETURNING id, lease_token, attempt, max_attempts, agent_key",
            [owner, ttl, run_id],
        )
        row = cursor.fetchone()
    return Claim(str(row[0]), str(row[1]), row[2], row[3], row[4]) if row else None


def heartbeat(run_id: str, lease_token: str, *, ttl: float) -> HeartbeatResult:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE runtime_agentrun SET lease_expires_at = now() + make_interval(secs => %s) "
            "WHERE id = %s AND lease_token = %s AND status = 'running' RETURNING cancel_requested_at",
            [ttl, run_id, lease_token],
        )
        row = cursor.fetchone()
    if row is None:
        return HeartbeatResult(alive=False, cancel_requested=False)
    return HeartbeatResult(alive=True, cancel_requested=row[0] is not None)


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
    """Write the terminal status, the last events and the run's messages in one transaction."""
    usage = usage or {}
    with transaction.atomic(), connection.cursor() as cursor:
        # One fenced statement both ends the lease and reserves the events' seqs.
        cursor.execute(
            "UPDATE runtime_agentrun SET status = %s, output = %s::jsonb, error = %s::jsonb, finished_at = now(), "
            "lease_token = NULL, lease_expires_at = NULL, prompt_tokens = prompt_tokens + %s, "
            "completion_tokens = completion_tokens + %s, cost_usd = cost_usd + %s, next_seq = next_seq + %s "
            "WHERE id = %s AND lease_token = %s AND status = 'running' RETURNING next_seq",
            [
                status,
                dumps(output) if output is not None else None,
                dumps(error) if error is not None else None,
                int(usage.get("prompt_tokens", 0)),
                int(usage.get("completion_tokens", 0)),
                float(usage.get("cost_usd", 0) or 0),
                len(events),
                run_id,
                lease_token,
            ],
        )
        row = cursor.fetchone()
        if row is None:
            raise LeaseLost(run_id)
        last = insert_events(cursor, run_id, row[0] - len(events) + 1, attempt, events)
        if messages and conversation_id:
            append_messages(cursor, conversation_id, run_id, messages, agent_key=agent_key)
        get_bus().notify_events(cursor, run_id, last)


def append_messages(
    cursor, conversation_id: str, run_id: str | None, messages, *, agent_key: str = ""
) -> None:
    """Append messages to a conversation, keeping every one (identical repeats included)."""
    # Locking the conversation row serialises writers, so seqs never collide.
    cursor.execute(
        "UPDATE runtime_agentconversation SET updated_at = now() WHERE id = %s "
        "RETURNING (SELECT coalesce(max(seq), 0) FROM runtime_agentmessage WHERE conversation_id = %s)",
        [conversation_id, conversation_id],
    )
    seq = cursor.fetchone()[0]
    rows: list[Any] = []
    for message in messages:
        seq += 1
        rows.extend(
            [
                conversation_id,
                run_id,
                seq,
                str(message.get("role", "assistant"))[:20],
                dumps(message.get("content")),
                dumps(message["tool_calls"]) if message.get("tool_calls") else None,
                str(message.get("tool_call_id") or ""),
                str(message.get("name") or ""),
                agent_key,
            ]
        )
    if not rows:
        return
    placeholders = ",".join(["(%s, %s, %s, %s, %s::jsonb, %s::jsonb, %s, %s, %s, now())"] * len(messages))
    columns = (
        "conversation_id, run_id, seq, role, content, tool_calls, tool_call_id, name, agent_key, created_at"
    )
    sql = f"INSERT INTO runtime_agentmessage ({columns}) VALUES {placeholders}"  # noqa: S608 - only placeholders are interpolated
    cursor.execute(sql, rows)


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
