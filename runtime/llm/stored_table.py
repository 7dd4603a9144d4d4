"""A small table the operator edits in the UI, read at most once per period per process.

Provider keys (runtime/llm/credentials.py) and model prices (runtime/llm/model_prices.py) are
both read on the hot path of a model call and changed rarely on a settings page: each keeps its
rows in a :class:`StoredTable`, so a change reaches every web process and worker within the
period without a restart, and the page calls :meth:`StoredTable.forget` for its own process.
Reads from async code go through one helper thread, since the ORM is sync-only; that thread
closes its connection after each read, so it never holds an idle one.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.db import connection

logger = logging.getLogger(__name__)


class StoredTable:
    def __init__(self, name: str, load: Callable[[], dict[str, Any]], period: Callable[[], float]) -> None:
        self.name = name
        self._load = load
        self._period = period
        self._lock = threading.Lock()
        self._at = float("-inf")
        self._values: dict[str, Any] = {}
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    def _read(self, own_thread: bool = False) -> dict[str, Any]:
        try:
            return self._load()
        except Exception:  # no table yet, the database away, or no database here: the other sources only
            logger.debug("stored %s cannot be read", self.name, exc_info=True)
            return {}
        finally:
            if own_thread:
                connection.close()

    def get(self) -> dict[str, Any]:
        with self._lock:
            if time.monotonic() - self._at < self._period():
                return dict(self._values)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            values = self._read()
        else:
            values = self._reader.submit(self._read, True).result(timeout=10)
        with self._lock:
            self._at, self._values = time.monotonic(), values
        return dict(values)

    def forget(self) -> None:
        with self._lock:
            self._at = float("-inf")
