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
from runtime.bus import NOTIFY_WORK, get_bus
from runtime.engine.outcomes import finish
from runtime.events import EVENTS_CTE, LeaseLost, dumps, event_params, insert_events


@dataclass(frozen=True)
class Claim:
    run_id: str
    lease_token: str
    attempt: int
    max_attempts: int
    agent_key: str
    # What the runner needs, loaded by the claim itself (see _CLAIM_SQL)
    run: dict[str, Any] = field(compare=False)
    history: list[dict[str, Any]] = field(compare=False)
    # seq of this attempt's run.started; 1 means the run never ran before (so has no checkpoint)
    started_seq: int


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
        notify=bus.events_notify_sql("c.id", "c.next_seq"),
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
        bus.notify_events_after(cursor, [(row[0], row[6]) for row in rows])
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


def lease_held(run_id: str, lease_token: str) -> bool:
    """The fenced check before a side effect: this token's lease is current and unexpired.

    (A child run has no expiry of its own: its parent's rescue ends it and clears its token.)
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM runtime_agentrun WHERE id = %s AND lease_token = %s AND status = 'running' "
            "AND (lease_expires_at IS NULL OR lease_expires_at > now())",
            [run_id, lease_token],
        )
        return cursor.fetchone() is not None


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
    """After a failed attempt: requeue with backoff, or fail for good. Returns the new status.

    Raises LeaseLost if the lease is gone (nothing is written).
    """
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
    retrying = ("run.retrying", {"attempt": attempt + 1, "reason": error, "delay_s": delay})
    _requeue(run_id, lease_token, attempt=attempt, events=[*events, retrying], error=error, delay=delay)
    return "queued"


def release(run_id: str, lease_token: str, *, attempt: int) -> bool:
    """Give a lease back on shutdown: the run is queued again and this attempt does not count."""
    retrying = ("run.retrying", {"attempt": attempt, "reason": {"code": "worker_shutdown"}, "delay_s": 0})
    try:
        _requeue(run_id, lease_token, attempt=attempt, events=[retrying], give_back=True)
    except LeaseLost:
        return False
    return True


# A running run goes back to the queue, fenced by its lease, with its events, in one statement
# (in autocommit its own transaction). With ``give_back`` the attempt does not count.
_REQUEUE_SQL = """
WITH r AS (
    UPDATE runtime_agentrun AS a
    SET status = 'queued', error = coalesce(%(error)s::jsonb, a.error), lease_token = NULL, lease_owner = '',
        lease_expires_at = NULL, available_at = now() + make_interval(secs => %(delay)s),
        attempt = greatest(a.attempt - %(give_back)s, 0), next_seq = a.next_seq + %(n)s
    WHERE a.id = %(id)s AND a.lease_token = %(token)s AND a.status = 'running'
    RETURNING a.id, a.next_seq, %(n)s::int AS n, %(attempt)s::int AS attempt
){events_cte}
SELECT r.id, r.next_seq{notify}{wake} FROM r
"""


def _requeue(
    run_id: str,
    lease_token: str,
    *,
    attempt: int,
    events: list[tuple[str, dict[str, Any]]],
    error: dict[str, Any] | None = None,
    delay: float = 0.0,
    give_back: bool = False,
) -> None:
    bus = get_bus()
    sql = _REQUEUE_SQL.format(
        events_cte=EVENTS_CTE,
        notify=bus.events_notify_sql("r.id", "r.next_seq"),
        # a run given back is due now: wake a worker (a retry waits out its backoff; workers poll)
        wake=f", {NOTIFY_WORK}" if give_back else "",
    )
    params = {
        "id": run_id,
        "token": lease_token,
        "attempt": attempt,
        "n": len(events),
        "error": dumps(error) if error is not None else None,
        "delay": delay,
        "give_back": 1 if give_back else 0,
        **event_params([(str(run_id), events)]),
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
        if not rows:
            raise LeaseLost(run_id)
        bus.notify_events_after(cursor, [(row[0], row[1]) for row in rows])


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
                cursor.execute(f"SELECT {NOTIFY_WORK}")
    return [(str(r[0]), r[1]) for r in rows]
