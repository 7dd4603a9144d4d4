"""Writing SSE frames straight from the listener to a waiting client (uvicorn only).

A stream that has caught up waits on its buffer; waking a thousand such tasks for
one event, and pushing each frame up through three generator layers to the
server's ``send``, cost more CPU than the socket writes themselves. So while a
stream is parked with an empty buffer it lends the listener a *writer*: the
listener renders the frame once and, for each parked stream, writes it with the
server's ``send`` right away, without a task switch.

The listener still never waits for a client: the writer only writes when the
server can take the bytes without waiting (uvicorn's ``send`` waits only when the
socket's buffer is full, and checks that before writing anything). Otherwise it
declines, and the event goes into the stream's buffer as before, where the
stream's own task sends it. Only uvicorn's HTTP protocols are known to behave
this way, so any other server gets the plain path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runtime.streaming.frames import StreamEvent, should_send
from runtime.streaming.listener import get_listener

DIRECT_SEND = "sse_direct_send"  # the response attribute the ASGI handler fills in


def can_write_directly(send: Any) -> bool:
    cycle = getattr(send, "__self__", None)
    return type(cycle).__module__.startswith("uvicorn.protocols.http.") and hasattr(cycle, "flow")


def write_now(send: Any, frame: bytes) -> bool:
    """Hand ``frame`` to the server if that needs no waiting; False (nothing written) otherwise."""
    cycle = send.__self__
    if cycle.flow.write_paused or cycle.disconnected:
        return False
    coroutine = send({"type": "http.response.body", "body": frame, "more_body": True})
    try:
        coroutine.send(None)
    except StopIteration:
        return True
    # It waited before writing anything; give up here and let the stream's task send it.
    coroutine.close()
    return False


def make_writer(send: Any, cursor: Any, subscription: Any, on_finish: Callable[[], None]) -> Callable:
    """The listener's writer for one stream: ``writer(event, noticed_at) -> bool`` (True = handled)."""
    listener = get_listener()

    def writer(event: StreamEvent, noticed_at: float) -> bool:
        if cursor.finished or event.seq != cursor.after + 1:
            return False  # a gap: the stream's task re-reads from the table
        if should_send(event, cursor.levels):
            if not write_now(send, event.frame):
                return False
            listener.record_lag(noticed_at)
        cursor.after = subscription.position = event.seq
        if event.is_terminal:
            cursor.finished = True
            on_finish()
        return True

    return writer
