"""The Redis Streams queue: Redis carries the wake-ups, PostgreSQL decides who runs what.

Layout in Redis:
- one stream per agent key, ``agent_runtime:runs:<agent_key>``, entries ``{"run_id": ...}``, so a
  worker serving some keys reads only their streams and leaves the others' entries alone;
- the set ``agent_runtime:streams`` names every stream (for workers serving all keys);
- the consumer group ``agent_workers`` on each stream, one consumer per worker.

Algorithm:
1. ``enqueue``: once the creating transaction commits, XADD the run id to its key's stream. If
   Redis does not answer, the run is committed all the same; the reconciler dispatches it later.
2. ``claim``: XREADGROUP new entries of the served streams (blocking briefly when there are
   none) and claim their runs in PostgreSQL in one statement (``leases.claim_run_ids``). An
   entry whose run is not claimable (a duplicate, cancelled, finished, or not due yet) is
   acknowledged and deleted.
   While Redis is down, claim straight from PostgreSQL so no run waits for Redis.
3. ``done``: acknowledge and delete the entry (while Redis is down, the ack waits for the next
   ``claim``, so the worker's event loop never waits on an unreachable Redis).
4. ``maintain`` (one worker at a time, behind a ``SET NX`` lock): XAUTOCLAIM entries pending
   longer than the lease TTL (their consumer died) and put their runs back if still queued;
   then the reconciler re-dispatches queued, due runs that have waited ``reconcile_after``
   seconds on streams with nothing undelivered: Redis lost them (restart without persistence,
   failed XADD) or they were requeued by a retry, a lease rescue or a shutdown. Duplicates are
   harmless: the PostgreSQL claim admits exactly one worker.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from typing import TYPE_CHECKING

import redis
from django.db import connection, transaction
from redis.backoff import NoBackoff
from redis.retry import Retry

from runtime import conf
from runtime.engine import leases
from runtime.engine.queue.base import RunQueue

if TYPE_CHECKING:
    from runtime.engine.leases import Claim

logger = logging.getLogger("runtime.queue.redis")

PREFIX = "agent_runtime:"
STREAMS_SET = PREFIX + "streams"
STREAM_PREFIX = PREFIX + "runs:"
RECONCILE_LOCK = PREFIX + "reconciler"
GROUP = "agent_workers"
MAXLEN = 100_000  # a safety bound; anything trimmed is still queued in PostgreSQL


def stream_for(agent_key: str) -> str:
    return STREAM_PREFIX + agent_key


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisStreamsQueue(RunQueue):
    name = "redis_streams"

    block_seconds = 0.5  # how long an idle claim waits inside XREADGROUP
    reconcile_after = 2.0  # seconds a due run may wait before Redis is assumed to have lost it
    reconcile_batch = 500
    maintain_every = 1.0  # the lock's lifetime: at most one maintenance pass per second overall
    reclaim_idle: float | None = None  # seconds; None means the lease TTL
    retry_redis_after = 1.0  # while Redis is down, how often a claim tries it again
    consumer_idle_limit = 3600.0  # forget consumers (dead workers) idle this long with nothing pending

    def __init__(self, url: str) -> None:
        # One quick retry heals a pooled connection that a Redis restart broke; no long backoff,
        # because every caller has a PostgreSQL fallback.
        self.redis = redis.Redis.from_url(
            url,
            socket_connect_timeout=1.0,
            socket_timeout=self.block_seconds + 5.0,
            retry=Retry(NoBackoff(), 1),
        )
        self._lock = threading.Lock()
        self._known: set[str] = set()  # streams seen in the set or served by a worker here
        self._groups: set[str] = set()  # streams whose consumer group exists (as far as we know)
        self._streams_read_at = 0.0
        self._entries: dict[str, tuple[str, str]] = {}  # run_id -> (stream, entry id) being run here
        self._acks: list[tuple[str, str]] = []
        self._waited: dict[str, bool] = {}
        self._down_since: float | None = None
        self._last_attempt = 0.0
        self._consumers_cleaned_at = 0.0

    # -- enqueue -------------------------------------------------------------------------------

    def enqueue(self, cursor, run) -> None:
        pair = (run.agent_key, str(run.pk))
        transaction.on_commit(lambda: self.dispatch([pair]))

    def dispatch(self, runs: list[tuple[str, str]]) -> bool:
        """XADD ``(agent_key, run_id)`` pairs; False (and a warning) when Redis did not take them."""
        try:
            pipe = self.redis.pipeline(transaction=False)
            for agent_key, run_id in runs:
                pipe.xadd(stream_for(agent_key), {"run_id": run_id}, maxlen=MAXLEN, approximate=True)
            streams = {stream_for(key) for key, _ in runs}
            pipe.sadd(STREAMS_SET, *streams)
            pipe.execute()
        except redis.RedisError as exc:
            logger.warning(
                "Redis did not take %d run(s) (%s); they stay queued in PostgreSQL and the reconciler "
                "will dispatch them",
                len(runs),
                exc,
            )
            return False
        with self._lock:
            self._known |= streams  # workers of this process see a new key's stream at once
        return True

    # -- claim ---------------------------------------------------------------------------------

    def waited_for_work(self, owner: str) -> bool:
        """True when the last claim by ``owner`` already blocked in Redis for new work."""
        return self._waited.get(owner, False)

    def claim(self, *, owner: str, limit: int, ttl: float, agent_keys: list[str] | None) -> list[Claim]:
        self._waited[owner] = False
        if not self._redis_worth_trying():
            return leases.claim_runs(owner=owner, limit=limit, ttl=ttl, agent_keys=agent_keys)
        try:
            self._flush_acks()
            streams = self._streams(agent_keys)
            entries = self._read(owner, streams, limit) if streams else []
        except redis.RedisError as exc:
            self._mark_down(exc)
            return leases.claim_runs(owner=owner, limit=limit, ttl=ttl, agent_keys=agent_keys)
        self._mark_up()
        if not entries:
            self._waited[owner] = bool(streams)
            return []
        wanted = entries[:limit]
        extra = entries[limit:]
        # One statement claims every run read (PostgreSQL admits one worker per run). If it
        # fails, nothing was claimed and the entries stay pending here until XAUTOCLAIM hands them on.
        ids = list(dict.fromkeys(run_id for _, _, run_id in wanted if _is_uuid(run_id)))
        claims = leases.claim_run_ids(ids, owner=owner, ttl=ttl)
        by_run = {claim.run_id: claim for claim in claims}
        stale: list[tuple[str, str]] = []
        with self._lock:
            for stream, entry_id, run_id in wanted:
                if by_run.pop(run_id, None) is not None:
                    self._entries[run_id] = (stream, entry_id)
                else:  # not claimable (duplicate, cancelled, finished, not due) or a second entry for it
                    stale.append((stream, entry_id))
        self._settle(stale, extra)
        return claims

    def done(self, claim: Claim) -> None:
        """Acknowledge and delete the claim's entry.

        This runs on the worker's event loop, so it makes one quick pipelined call and only when
        Redis answered last time; otherwise the ack waits for the next claim (in a thread).
        """
        with self._lock:
            entry = self._entries.pop(claim.run_id, None)
            if entry is not None:
                self._acks.append(entry)
        if entry is None or self._down_since is not None:
            return
        try:
            self._flush_acks()
        except redis.RedisError as exc:
            self._mark_down(exc)

    def _read(self, owner: str, streams: list[str], limit: int) -> list[tuple[str, str, str]]:
        self._ensure_groups(streams)
        # COUNT is per stream: ask each for its share, and put any surplus back (see _settle).
        count = max(1, math.ceil(limit / len(streams)))
        block = max(1, int(self.block_seconds * 1000))
        try:
            reply = self.redis.xreadgroup(GROUP, owner, {s: ">" for s in streams}, count=count, block=block)
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # Redis restarted (or someone deleted a stream): recreate the groups and read again.
            with self._lock:
                self._groups.clear()
            self._ensure_groups(streams)
            reply = self.redis.xreadgroup(GROUP, owner, {s: ">" for s in streams}, count=count, block=block)
        entries: list[tuple[str, str, str]] = []
        for stream, items in reply or []:
            for entry_id, fields in items:
                run_id = fields.get(b"run_id") if fields else None
                entries.append((_text(stream), _text(entry_id), _text(run_id) if run_id else ""))
        return entries

    def _settle(self, stale: list[tuple[str, str]], extra: list[tuple[str, str, str]]) -> None:
        """Drop entries whose runs are not claimable; requeue the surplus of a read at the tail."""
        if not stale and not extra:
            return
        try:
            pipe = self.redis.pipeline(transaction=False)
            for stream, _entry_id, run_id in extra:
                pipe.xadd(stream, {"run_id": run_id}, maxlen=MAXLEN, approximate=True)
            for stream, entry_id in [*stale, *[(s, e) for s, e, _ in extra]]:
                pipe.xack(stream, GROUP, entry_id)
                pipe.xdel(stream, entry_id)
            pipe.execute()
        except redis.RedisError:
            # Left pending: XAUTOCLAIM will deal with them after the lease TTL.
            logger.warning(
                "could not acknowledge %d stale Redis entries", len(stale) + len(extra), exc_info=True
            )

    def _flush_acks(self) -> None:
        with self._lock:
            acks, self._acks = self._acks, []
        if not acks:
            return
        pipe = self.redis.pipeline(transaction=False)
        for stream, entry_id in acks:
            pipe.xack(stream, GROUP, entry_id)
            pipe.xdel(stream, entry_id)
        try:
            pipe.execute()
        except redis.ResponseError:
            pass  # the stream or group is gone (Redis restarted): nothing left to acknowledge
        except redis.RedisError:
            with self._lock:
                self._acks[:0] = acks
            raise

    # -- streams and groups --------------------------------------------------------------------

    def _streams(self, agent_keys: list[str] | None) -> list[str]:
        if agent_keys:
            return [stream_for(key) for key in agent_keys]
        now = time.monotonic()
        if now - self._streams_read_at >= 1.0:
            found = {_text(s) for s in self.redis.smembers(STREAMS_SET)}
            with self._lock:
                self._known |= found
            self._streams_read_at = now
        return sorted(self._known)

    def _ensure_groups(self, streams: list[str]) -> None:
        missing = [s for s in streams if s not in self._groups]
        if not missing:
            return
        pipe = self.redis.pipeline(transaction=False)
        for stream in missing:
            # From id 0, so entries added before the group existed are delivered too.
            pipe.xgroup_create(stream, GROUP, id="0", mkstream=True)
        pipe.sadd(STREAMS_SET, *missing)
        for result in pipe.execute(raise_on_error=False):
            if isinstance(result, Exception) and "BUSYGROUP" not in str(result):
                raise result
        with self._lock:
            self._groups.update(missing)
            self._known.update(missing)

    # -- Redis health --------------------------------------------------------------------------

    def _redis_worth_trying(self) -> bool:
        if self._down_since is None:
            return True
        now = time.monotonic()
        if now - self._last_attempt >= self.retry_redis_after:
            self._last_attempt = now
            return True
        return False

    def _mark_down(self, exc: Exception) -> None:
        if self._down_since is None:
            logger.warning("Redis is unavailable (%s); claiming runs from PostgreSQL until it answers", exc)
            self._down_since = self._last_attempt = time.monotonic()
        with self._lock:
            self._groups.clear()  # a restarted Redis has none

    def _mark_up(self) -> None:
        if self._down_since is not None:
            logger.warning(
                "Redis answers again after %.1f s; back to the Redis Streams queue",
                time.monotonic() - self._down_since,
            )
            self._down_since = None

    # -- maintenance ---------------------------------------------------------------------------

    def maintain(self) -> None:
        try:
            self._flush_acks()
            if not self.redis.set(RECONCILE_LOCK, "1", nx=True, px=max(1, int(self.maintain_every * 1000))):
                return  # another worker did this recently
            streams = self._streams(None)
            self._reclaim(streams)
            self._reconcile()
            self._forget_dead_consumers(streams)
        except redis.RedisError as exc:
            self._mark_down(exc)

    def _reclaim(self, streams: list[str]) -> int:
        """Take over entries a dead consumer left pending; requeue those whose runs are still queued."""
        idle_ms = max(1, int((self.reclaim_idle or float(conf.get("LEASE_TTL_SECONDS"))) * 1000))
        found: list[tuple[str, str, str]] = []
        for stream in streams:
            try:
                reply = self.redis.xautoclaim(stream, GROUP, "reclaimer", min_idle_time=idle_ms, count=100)
            except redis.ResponseError:
                continue  # no group yet on this stream
            for entry_id, fields in reply[1]:
                run_id = (fields or {}).get(b"run_id")
                found.append((stream, _text(entry_id), _text(run_id) if run_id else ""))
        if not found:
            return 0
        queued = _queued_among([run_id for _, _, run_id in found if _is_uuid(run_id)])
        pipe = self.redis.pipeline(transaction=False)
        for stream, entry_id, run_id in found:
            if run_id in queued:
                pipe.xadd(stream, {"run_id": run_id}, maxlen=MAXLEN, approximate=True)
            pipe.xack(stream, GROUP, entry_id)
            pipe.xdel(stream, entry_id)
        pipe.execute()
        logger.info("reclaimed %d stuck Redis entries (%d runs requeued)", len(found), len(queued))
        return len(found)

    def _reconcile(self) -> int:
        """Re-dispatch queued, due runs that Redis does not hold anywhere a worker will read."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, agent_key FROM runtime_agentrun WHERE status = 'queued' "
                "AND available_at <= now() - make_interval(secs => %s) ORDER BY available_at LIMIT %s",
                [self.reconcile_after, self.reconcile_batch],
            )
            rows = [(agent_key, str(run_id)) for run_id, agent_key in cursor.fetchall()]
        if not rows:
            return 0
        # A stream with undelivered entries is still being worked through (or nobody serves
        # its key yet): its runs are probably in it, so adding them again would only pile up.
        keys = sorted({key for key, _ in rows})
        backlog = {key: self._undelivered(stream_for(key)) for key in keys}
        lost = [(key, run_id) for key, run_id in rows if backlog[key] == 0]
        if lost and self.dispatch(lost):
            logger.info("reconciler re-dispatched %d queued run(s) Redis did not hold", len(lost))
        return len(lost)

    def _undelivered(self, stream: str) -> int:
        pipe = self.redis.pipeline(transaction=False)
        pipe.xlen(stream)
        pipe.xinfo_groups(stream)
        length, groups = pipe.execute(raise_on_error=False)
        if isinstance(length, Exception) or not length:
            return 0
        group = (
            next((g for g in groups if _text(g["name"]) == GROUP), None) if isinstance(groups, list) else None
        )
        if group is None:
            return length
        if group.get("lag") is not None:
            return int(group["lag"])
        return max(0, length - int(group["pending"]))  # acked entries are deleted, so the rest is unread

    def _forget_dead_consumers(self, streams: list[str]) -> None:
        now = time.monotonic()
        if now - self._consumers_cleaned_at < 60:
            return
        self._consumers_cleaned_at = now
        for stream in streams:
            try:
                consumers = self.redis.xinfo_consumers(stream, GROUP)
            except redis.ResponseError:
                continue
            for consumer in consumers:
                if consumer["pending"] == 0 and consumer["idle"] > self.consumer_idle_limit * 1000:
                    self.redis.xgroup_delconsumer(stream, GROUP, consumer["name"])


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _queued_among(run_ids: list[str]) -> set[str]:
    if not run_ids:
        return set()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM runtime_agentrun WHERE id = ANY(%s::uuid[]) AND status = 'queued'", [run_ids]
        )
        return {str(row[0]) for row in cursor.fetchall()}
