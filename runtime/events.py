"""Event visibility and the fenced, batched event writes a worker makes."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction

from runtime import conf
from runtime.bus import get_bus


class LeaseLost(Exception):
    """The worker no longer holds the run's lease; it must stop and write nothing."""


def visible_levels(*, include_debug: bool = False, include_all: bool = False) -> set[str]:
    if include_all:
        return {"user", "debug", "internal"}
    if include_debug or conf.get("DEBUG_MODE"):
        return {"user", "debug"}
    return {"user"}


def dumps(value: Any) -> str:
    return json.dumps(value, cls=DjangoJSONEncoder, default=str)


# Inserts the events of every run in ``r`` (the fenced update's rows: id, next_seq, n, attempt),
# numbered after the run's previous seq; shared by every statement that writes events in batches.
EVENTS_CTE = """, ev AS (
    INSERT INTO runtime_agentevent (run_id, seq, event_type, payload, visibility, attempt, created_at)
    SELECT r.id, r.next_seq - r.n + e.ord, e.t, e.p::jsonb, e.v, r.attempt, now()
    FROM r JOIN unnest(%(e_run)s::uuid[], %(e_ord)s::int[], %(e_type)s::text[], %(e_payload)s::text[],
        %(e_vis)s::text[]) AS e(run_id, ord, t, p, v) ON e.run_id = r.id
)"""

EVENT_PARAMS = ("e_run", "e_ord", "e_type", "e_payload", "e_vis")


def event_params(batches: Iterable[tuple[str, Sequence[tuple[str, dict[str, Any]]]]]) -> dict[str, list[Any]]:
    """``EVENTS_CTE``'s parameters for ``(run_id, events)`` pairs: every event row is made here."""
    params: dict[str, list[Any]] = {name: [] for name in EVENT_PARAMS}
    visibility = conf.runtime_settings()["EVENT_VISIBILITY"]
    for run_id, events in batches:
        for ordinal, (event_type, payload) in enumerate(events, start=1):
            params["e_run"].append(run_id)
            params["e_ord"].append(ordinal)
            params["e_type"].append(event_type)
            params["e_payload"].append(dumps(payload))
            params["e_vis"].append(visibility.get(event_type, "user"))
    return params


# Events at seqs already reserved (``r`` names the run's last seq and how many there are).
_INSERT_SQL = (
    "WITH r AS (SELECT %(id)s::uuid AS id, %(last)s::int AS next_seq, %(n)s::int AS n, %(attempt)s::int AS attempt)"
    + EVENTS_CTE
    + " SELECT 1"
)


def insert_events(
    cursor, run_id: str, first_seq: int, attempt: int, events: Sequence[tuple[str, dict[str, Any]]]
) -> int:
    """Insert ``events`` with consecutive seqs from ``first_seq``; return the last seq."""
    last = first_seq + len(events) - 1
    params = {"id": str(run_id), "last": last, "n": len(events), "attempt": attempt}
    cursor.execute(_INSERT_SQL, {**params, **event_params([(str(run_id), events)])})
    return last


def reserve_seqs(cursor, run_id: str, count: int, *, lease_token: str | None) -> int:
    """Take ``count`` sequence numbers from the run row; return the first.

    With a lease token the update is fenced: no row means the lease is gone.
    """
    if lease_token is None:
        cursor.execute(
            "UPDATE runtime_agentrun SET next_seq = next_seq + %s WHERE id = %s RETURNING next_seq",
            [count, run_id],
        )
    else:
        cursor.execute(
            "UPDATE runtime_agentrun SET next_seq = next_seq + %s "
            "WHERE id = %s AND lease_token = %s AND status = 'running' RETURNING next_seq",
            [count, run_id, lease_token],
        )
    row = cursor.fetchone()
    if row is None:
        raise LeaseLost(run_id)
    return row[0] - count + 1


def append_events(
    run_id: str,
    events: Iterable[tuple[str, dict[str, Any]]],
    *,
    attempt: int,
    lease_token: str | None,
    cursor=None,
    checkpoints: Sequence[tuple[int, dict[str, Any]]] = (),
) -> int | None:
    """Write a batch of events and wake listeners once. Returns the last seq (None if empty).

    For writes outside a worker's batches (a run cancelled before it started, tests); a
    worker writes through ``write_many`` and ends a run through ``outcomes.finish_many``.
    ``checkpoints`` are ``(index in events, state)``: an ``AgentCheckpoint`` row is written
    with the seq of that event, in the same transaction.
    """
    batch = list(events)
    if not batch:
        return None
    if cursor is not None:
        return _append(cursor, run_id, batch, attempt, lease_token, checkpoints)
    with transaction.atomic(), connection.cursor() as cur:
        return _append(cur, run_id, batch, attempt, lease_token, checkpoints)


def _append(cursor, run_id, batch, attempt, lease_token, checkpoints=()) -> int:
    first = reserve_seqs(cursor, run_id, len(batch), lease_token=lease_token)
    last = insert_events(cursor, run_id, first, attempt, batch)
    if checkpoints:
        cursor.execute(
            "INSERT INTO runtime_agentcheckpoint (run_id, seq, state, attempt, created_at) "
            "SELECT %s, %s + c.i, c.s::jsonb, %s, now() FROM unnest(%s::int[], %s::text[]) AS c(i, s)",
            [run_id, first, attempt, [i for i, _ in checkpoints], [dumps(s) for _, s in checkpoints]],
        )
    get_bus().notify_events(cursor, str(run_id), last)
    return last


# The pending events of many runs (one batch per run) in one statement: each run's seqs
# are reserved on its own row, fenced by its own token, so a run whose lease is gone
# writes nothing and the others are not held back. One notification per run.
#
# A batch that names the seq it follows (``expect``) is written only if the run's counter
# still stands there, so a resend after a lost commit reply is a no-op, not a second copy:
# the last statement then reports the batch as written (the counter stands at expect + n
# and the lease is still ours), reading ``a``, the row as it was before this statement.
_MANY_SQL = """
WITH b AS (
    SELECT * FROM unnest(%(ids)s::uuid[], %(tokens)s::uuid[], %(n)s::int[], %(attempt)s::int[], %(expect)s::int[])
        AS b(id, token, n, attempt, expect)
), r AS (
    UPDATE runtime_agentrun AS a SET next_seq = a.next_seq + b.n
    FROM b
    WHERE a.id = b.id AND a.lease_token = b.token AND a.status = 'running'
        AND (b.expect IS NULL OR a.next_seq = b.expect)
    RETURNING a.id, a.next_seq, b.n, b.attempt
){events_cte}, cp AS (
    INSERT INTO runtime_agentcheckpoint (run_id, seq, state, attempt, created_at)
    SELECT r.id, r.next_seq - r.n + c.ord, c.s::jsonb, r.attempt, now()
    FROM r JOIN unnest(%(c_run)s::uuid[], %(c_ord)s::int[], %(c_state)s::text[]) AS c(run_id, ord, s)
        ON c.run_id = r.id
)
SELECT b.id, coalesce(r.next_seq, a.next_seq), r.id IS NOT NULL{notify}
FROM b JOIN runtime_agentrun AS a ON a.id = b.id LEFT JOIN r ON r.id = b.id
WHERE r.id IS NOT NULL OR (
    a.next_seq = b.expect + b.n AND a.lease_token = b.token AND a.status = 'running'
)
"""


@dataclass(frozen=True)
class EventBatch:
    """One run's pending events for ``write_many``; ``checkpoints`` as in ``append_events``.

    ``after_seq``: the run's last seq as its writer knows it; the batch is then written
    only right after it, and sending it again once it is written changes nothing.
    """

    run_id: str
    lease_token: str
    attempt: int
    events: Sequence[tuple[str, dict[str, Any]]]
    checkpoints: Sequence[tuple[int, dict[str, Any]]] = ()
    after_seq: int | None = None


def write_many(batches: Sequence[EventBatch], *, cursor=None) -> dict[str, int]:
    """Write each run's batch if it still holds its lease (at most one batch per run).

    Returns {run_id: last seq} for the runs that did; a run missing from it lost its lease.
    """
    if cursor is None:
        with connection.cursor() as own:
            return write_many(batches, cursor=own)
    names = ("ids", "tokens", "n", "attempt", "expect")
    params: dict[str, list[Any]] = {name: [] for name in (*names, "c_run", "c_ord", "c_state")}
    # Rows are locked in input order; one order for every multi-run statement avoids deadlocks.
    batches = sorted(batches, key=lambda b: str(b.run_id))
    for batch in batches:
        params["ids"].append(batch.run_id)
        params["tokens"].append(batch.lease_token)
        params["n"].append(len(batch.events))
        params["attempt"].append(batch.attempt)
        params["expect"].append(batch.after_seq)
        for index, state in batch.checkpoints:
            params["c_run"].append(batch.run_id)
            params["c_ord"].append(index + 1)
            params["c_state"].append(dumps(state))
    params.update(event_params((batch.run_id, batch.events) for batch in batches))
    bus = get_bus()
    notify = bus.events_notify_sql("r.id", "r.next_seq", when="r.id IS NOT NULL")
    cursor.execute(_MANY_SQL.format(events_cte=EVENTS_CTE, notify=notify), params)
    rows = cursor.fetchall()
    # a resend of a written batch was notified when it was written
    bus.notify_events_after(cursor, [(row[0], row[1]) for row in rows if row[2]])
    return {str(run_id): last for run_id, last, *_ in rows}
