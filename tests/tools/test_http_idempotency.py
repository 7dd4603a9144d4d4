"""HTTP tools send the tool call's idempotency key, so a retried call is not a second refund."""

from __future__ import annotations

import asyncio

import pytest

from runtime.interfaces import RunContext
from runtime.tools import ToolRegistry
from runtime.tools.http import HttpToolSpec, build_http_tool


@pytest.mark.slow
def test_http_tools_send_the_key_as_idempotency_key(local_server, owner):
    spec = HttpToolSpec.from_dict(
        {
            "name": "create_refund",
            "description": "Refund an order.",
            "method": "POST",
            "url_template": f"{local_server.base}/refunds",
            "parameters": {"type": "object", "properties": {}},
        }
    )
    tools = ToolRegistry([build_http_tool(spec)])

    class Sink:  # a run outside a worker: nothing to check the lease against
        async def emit(self, event_type, payload):
            pass

        async def checkpoint(self, state):
            pass

    async def call() -> dict:
        ctx = RunContext(
            run_id="6f0c3b1e-0000-4000-8000-000000000001", agent_key="a", input_messages=[], sink=Sink()
        )
        token = ctx.activate()
        try:
            return await tools.execute("create_refund", {}, call_id="call_9")
        finally:
            ctx.deactivate(token)

    assert asyncio.run(call())["status"] == 200
    seen = local_server.recorder.requests[-1]["headers"]
    assert seen["Idempotency-Key"] == "6f0c3b1e-0000-4000-8000-000000000001:call_9"
