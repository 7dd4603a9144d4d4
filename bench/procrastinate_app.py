"""procrastinate's no-op task, the yardstick for the engine's throughput.

The worker command is ``python -m procrastinate --app=bench.procrastinate_app.app worker``;
``BENCH_PROCRASTINATE_URL`` names the (separate) database its schema lives in.
"""

from __future__ import annotations

import os

from procrastinate import App, PsycopgConnector

app = App(connector=PsycopgConnector(conninfo=os.environ.get("BENCH_PROCRASTINATE_URL", "")))


@app.task(name="noop")
async def noop() -> None:
    return None
