"""Event bus: tells listeners (SSE endpoints, workers) that something was written.

The bus carries only notifications (``<run_id>:<last_seq>``); the event table is
the source of truth and listeners read from it. The ``db`` bus uses
PostgreSQL NOTIFY inside the transaction that wrote the batch, so a
notification is never seen before its rows; the ``redis`` bus publishes right
after commit.

A statement that writes events asks the bus for its notification in two halves:
``events_notify_sql(...)`` is a select-list item that notifies inside the statement
(the ``db`` bus; empty for ``redis``), and ``notify_events_after(cursor, written)``
publishes once the statement returned (``redis``; nothing for ``db``). No SQL
builder needs to know which bus it has.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import cache
from typing import Any

from django.db import transaction

from runtime import conf

logger = logging.getLogger(__name__)

EVENTS_CHANNEL = "agent_events"
RUNS_CHANNEL = "agent_runs"  # new work for workers
CANCEL_CHANNEL = "agent_cancel"  # a running run was asked to stop
REDIS_EVENTS_CHANNEL = "agent_runtime:events"
REDIS_CANCEL_CHANNEL = "agent_runtime:cancel"


# What wakes workers (new or requeued work), as an SQL expression; workers LISTEN on PostgreSQL.
NOTIFY_WORK = f"pg_notify('{RUNS_CHANNEL}', '')"


class DbBus:
    name = "db"

    def notify_events(self, cursor, run_id: str, last_seq: int) -> None:
        cursor.execute("SELECT pg_notify(%s, %s)", [EVENTS_CHANNEL, f"{run_id}:{last_seq}"])

    def events_notify_sql(self, run_id_sql: str, seq_sql: str, *, when: str | None = None) -> str:
        """A select-list item (with its leading comma) that notifies ``<run_id>:<seq>`` in the statement."""
        notify = f"pg_notify('{EVENTS_CHANNEL}', {run_id_sql}::text || ':' || {seq_sql})"
        return f", CASE WHEN {when} THEN {notify} END" if when else f", {notify}"

    def notify_events_after(self, cursor, written: Iterable[tuple[Any, int]]) -> None:
        """Nothing to do: the statement notified (``events_notify_sql``)."""

    def notify_cancel(self, cursor, run_id: str) -> None:
        cursor.execute("SELECT pg_notify(%s, %s)", [CANCEL_CHANNEL, str(run_id)])


class RedisBus:
    name = "redis"

    def __init__(self, url: str) -> None:
        import redis  # optional: the redis extra

        self._client = redis.Redis.from_url(url)

    def _publish_on_commit(self, channel: str, message: str) -> None:
        def publish() -> None:
            try:
                self._client.publish(channel, message)
            except Exception as exc:
                # Listeners also poll on reconnect, so a lost notification delays, never loses, events.
                # One line, no traceback: during an outage this happens for every batch.
                logger.warning("Could not publish to Redis channel %s: %s", channel, exc)

        transaction.on_commit(publish)

    def notify_events(self, cursor, run_id: str, last_seq: int) -> None:
        self._publish_on_commit(REDIS_EVENTS_CHANNEL, f"{run_id}:{last_seq}")

    def events_notify_sql(self, run_id_sql: str, seq_sql: str, *, when: str | None = None) -> str:
        return ""  # published after the statement: notify_events_after

    def notify_events_after(self, cursor, written: Iterable[tuple[Any, int]]) -> None:
        """Publish ``<run_id>:<seq>`` for each ``(run_id, seq)`` the statement wrote, after commit."""
        for run_id, last_seq in written:
            self.notify_events(cursor, str(run_id), last_seq)

    def notify_cancel(self, cursor, run_id: str) -> None:
        # Workers listen on PostgreSQL for cancellation whatever the bus, so do both.
        cursor.execute("SELECT pg_notify(%s, %s)", [CANCEL_CHANNEL, str(run_id)])
        self._publish_on_commit(REDIS_CANCEL_CHANNEL, str(run_id))


@cache
def _bus_for(backend: str, url: str | None) -> DbBus | RedisBus:
    if backend == "redis":
        return RedisBus(url or "")
    return DbBus()


def get_bus() -> DbBus | RedisBus:
    settings = conf.runtime_settings()
    return _bus_for(settings["EVENT_BUS_BACKEND"], settings["REDIS_URL"])
