"""The PostgreSQL queue: the run table itself, claimed with FOR UPDATE SKIP LOCKED."""

from __future__ import annotations

from runtime.bus import RUNS_CHANNEL
from runtime.engine.leases import Claim, claim_runs
from runtime.engine.queue.base import RunQueue


class PostgresQueue(RunQueue):
    name = "postgres"

    def enqueue(self, cursor, run) -> None:
        # Delivered at commit, so a woken worker always finds the row.
        cursor.execute("SELECT pg_notify(%s, %s)", [RUNS_CHANNEL, run.agent_key])

    def enqueue_sql(self, run) -> tuple[str, list]:
        return "pg_notify(%s, %s)", [RUNS_CHANNEL, run.agent_key]

    def claim(self, *, owner: str, limit: int, ttl: float, agent_keys: list[str] | None) -> list[Claim]:
        return claim_runs(owner=owner, limit=limit, ttl=ttl, agent_keys=agent_keys)
