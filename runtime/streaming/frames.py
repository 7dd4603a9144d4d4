"""Server-Sent Events frames for run events.

Each event becomes ``id: <seq>`` / ``event: <type>`` / ``data: <json>``; the
JSON is ``{"run_id", "seq", "type", "payload", "ts", "attempt"}``. A frame is
rendered once per event and shared by every stream that sends it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

RETRY_MS = 2000
RETRY_FRAME = f"retry: {RETRY_MS}\n\n".encode()
KEEPALIVE_FRAME = b": keep-alive\n\n"
TERMINAL_EVENT_TYPES = frozenset({"run.succeeded", "run.failed", "run.cancelled", "run.timed_out"})


@dataclass(frozen=True, slots=True)
class StreamEvent:
    seq: int
    event_type: str
    visibility: str
    frame: bytes

    @property
    def is_terminal(self) -> bool:
        return self.event_type in TERMINAL_EVENT_TYPES


def _single_line(value: str) -> str:
    # a newline inside a field would end the field and corrupt the stream
    return value.replace("\r", " ").replace("\n", " ")


def render_event(
    *,
    run_id: Any,
    seq: int,
    event_type: str,
    payload: Any,
    visibility: str,
    attempt: int,
    created_at: datetime,
) -> StreamEvent:
    data = {
        "run_id": str(run_id),
        "seq": seq,
        "type": event_type,
        "payload": payload if payload is not None else {},
        "ts": created_at.astimezone(UTC).isoformat(),
        "attempt": attempt,
    }
    body = json.dumps(data, cls=DjangoJSONEncoder, separators=(",", ":"))
    frame = f"id: {seq}\nevent: {_single_line(event_type)}\ndata: {body}\n\n".encode()
    return StreamEvent(seq=seq, event_type=event_type, visibility=visibility, frame=frame)


# The columns of an event row, in the order :func:`event_from_row` takes them.
EVENT_COLUMNS = ("seq", "event_type", "payload", "visibility", "attempt", "created_at")


def event_from_row(run_id: Any, row: tuple) -> StreamEvent:
    """The frame of an event row (``EVENT_COLUMNS``): the one mapping from the table to SSE."""
    return render_event(run_id=run_id, **dict(zip(EVENT_COLUMNS, row, strict=True)))


def should_send(event: StreamEvent, levels: set[str] | frozenset[str]) -> bool:
    """Terminal events always go out: they end the stream, and clients listen for them."""
    return event.is_terminal or event.visibility in levels
