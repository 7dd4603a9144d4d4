"""Reading ``assistant.delta`` frames whose text is a time stamp (see bench/_fake_openai.py).

Both streams the ``llm_*`` e2e benchmarks watch, the runtime's run stream and the plain
proxy view, send ``event: assistant.delta`` frames whose JSON holds ``"delta": "<unix
time> "``; this pulls the stamps out of complete frames as they arrive and notes when.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field

from bench._sse import SseClient

_DELTA = re.compile(rb'"delta":\s?"(\d+\.\d+) ')
_END = re.compile(rb"event: (run\.(succeeded|failed|cancelled|timed_out)|done)\n")


@dataclass
class DeltaReader:
    client: SseClient
    stamps: list[float] = field(default_factory=list)  # when the fake server wrote each token
    arrivals: list[float] = field(default_factory=list)  # when this client read it
    ended: bytes = b""  # the terminal event's name once seen ("done" for the proxy)
    _buffer: bytearray = field(default_factory=bytearray)
    raw: bytearray = field(default_factory=bytearray)

    def __post_init__(self) -> None:
        # whatever arrived in the same read as the stream's first frame (a short answer may be all there)
        self._buffer += self.client.buffer
        self._take(self.client.seen.get(b"retry: 2000", time.time()))

    async def pump(self) -> None:
        chunk = await self.client.reader.read(65536)
        now = time.time()
        if not chunk:
            self.ended = self.ended or b"closed"
            return
        self.raw = (self.raw + chunk)[-2000:]  # for the error message only
        self._buffer += chunk
        self._take(now)

    def _take(self, now: float) -> None:
        cut = self._buffer.rfind(b"\n\n")
        if cut < 0:
            return
        complete = bytes(self._buffer[: cut + 2])
        del self._buffer[: cut + 2]
        for match in _DELTA.finditer(complete):
            self.stamps.append(float(match.group(1)))
            self.arrivals.append(now)
        end = _END.search(complete)
        if end:
            self.ended = end.group(1)

    async def until_first_delta(self, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while not self.stamps and not self.ended:
                await self.pump()
        if not self.stamps:
            raise RuntimeError(
                f"the stream ended ({self.ended.decode()}) before any assistant.delta: {bytes(self.raw)!r}"
            )

    async def until_end(self, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while not self.ended:
                await self.pump()
