"""Follow one run's events from its start to its end, the way the SSE stream does.

This reuses the event stream's machinery (``runtime.streaming``: the per-process listener,
the catch-up reads, the resync after a lost bus connection) instead of a second copy of it:
no database connection is held and nothing polls while the run is quiet. The frames it
yields are parsed back into ``(type, payload, attempt)``; parsing one small JSON object per
event costs far less than the event's trip through the database.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from runtime.events import visible_levels
from runtime.streaming.stream import Cursor, Page, live_frames


@dataclass(frozen=True)
class RunEvent:
    type: str
    payload: dict[str, Any]
    attempt: int


KEEPALIVE = None  # yielded when the run has been quiet for a while


async def run_events(run_id: str, *, read_at: float) -> AsyncIterator[RunEvent | None]:
    """Every user-visible event of a run that had no events at ``read_at`` (``time.monotonic()``),
    until its terminal event; ``None`` for each keep-alive.

    ``read_at`` must be taken before the run was created: the listener then vouches for every
    event committed since, and no backlog read is needed.
    """
    cursor = Cursor(0, frozenset(visible_levels()))
    empty = Page([], terminal_status=False, complete=True, read_at=read_at)
    async for chunk in live_frames(run_id, cursor, empty):
        for frame in chunk.split(b"\n\n"):
            if not frame:
                continue
            if frame.startswith(b":"):
                yield KEEPALIVE
                continue
            for line in frame.split(b"\n"):
                if line.startswith(b"data: "):
                    data = json.loads(line[6:])
                    yield RunEvent(data["type"], data.get("payload") or {}, int(data.get("attempt") or 0))
