"""What the listener keeps per stream (a subscription) and per process (statistics)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any

RESYNC = object()  # "you may have missed events: read from the database"
KEEPALIVE = object()  # "nothing happened for a while: send a keep-alive comment"
WAKE = object()  # "the listener changed your state (it wrote your last frame): look again"


@dataclass(eq=False)
class Subscription:
    run_id: str
    queue: asyncio.Queue
    # the highest seq this stream has sent; a hint for where the listener starts reading
    position: int = -1
    overflowed: bool = False
    degraded: bool = False
    # set by every offer; the keep-alive ticker clears it and wakes streams that stayed quiet
    active: bool = True
    # while its stream waits with an empty buffer: writes an event to the client without waiting,
    # or declines (False) and the event is buffered instead (runtime/streaming/direct.py)
    writer: Any = None
    # False: the listener cannot tell what was committed between the stream's backlog read and
    # this subscription, so the stream must read the database once more (see EventListener.attach)
    vouched: bool = False

    def offer(self, item: Any) -> bool:
        if self.overflowed:
            return False
        self.active = True
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True
            # wake a reader that may be blocked on get(): it sees the flag and ends the stream
            with contextlib.suppress(asyncio.QueueFull):
                self.queue.get_nowait()
                self.queue.put_nowait(RESYNC)
            return False
        return True


@dataclass
class ListenerStats:
    notifications: int = 0
    reads: int = 0
    delivered: int = 0
    overflows: int = 0
    reconnects: int = 0
    # seconds from a notification's arrival to its frame being handed to a client's socket
    lags: deque = field(default_factory=lambda: deque(maxlen=50_000))

    def lag_summary(self) -> dict[str, float | None]:
        ordered = sorted(self.lags)
        if not ordered:
            return {"delivery_p50_ms": None, "delivery_p99_ms": None, "delivery_max_ms": None}

        def at(q: float) -> float:
            return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000, 2)

        return {"delivery_p50_ms": at(0.5), "delivery_p99_ms": at(0.99), "delivery_max_ms": at(1.0)}
