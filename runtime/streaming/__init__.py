"""Live streaming: a run's events from the table to every open SSE stream.

- :mod:`~runtime.streaming.frames`: an event row becomes one SSE frame, rendered once
  and shared by every stream that sends it.
- :mod:`~runtime.streaming.listener`: one listener per process (per event loop) hears
  the bus (``LISTEN agent_events`` or Redis pub/sub), reads each notified run's new
  events once and fans them out to the streams' bounded buffers
  (:mod:`~runtime.streaming.subscription`).
- :mod:`~runtime.streaming.direct`: while a stream waits with an empty buffer, the
  listener may write its frame to the socket itself (uvicorn only).
- :mod:`~runtime.streaming.stream`: one stream: backlog, then live events (or, under
  WSGI, polling), exactly once and in order.

The HTTP side (parsing, authentication, the views) is :mod:`runtime.api.streams`;
nothing here imports :mod:`runtime.api` (import-linter checks it), and the bus
(:mod:`runtime.bus`) only sends notifications and knows nothing of streams.
"""
