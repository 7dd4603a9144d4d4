"""Queue backends, chosen by ``QUEUE_BACKEND``: ``postgres`` (default) or ``redis_streams``.

PostgreSQL is always the source of truth for a run's state and lease; a queue
backend only decides how workers learn that work is due.
"""

from __future__ import annotations

from functools import cache

from runtime import conf
from runtime.engine.queue.base import RunQueue
from runtime.engine.queue.postgres import PostgresQueue


@cache
def _queue_for(backend: str, url: str | None) -> RunQueue:
    if backend == "redis_streams":
        from runtime.engine.queue.redis_streams import RedisStreamsQueue  # optional: the redis extra

        return RedisStreamsQueue(url or "")
    return PostgresQueue()


def get_queue() -> RunQueue:
    settings = conf.runtime_settings()
    return _queue_for(settings["QUEUE_BACKEND"], settings["REDIS_URL"])
