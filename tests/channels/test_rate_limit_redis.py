"""One key's requests-per-minute limit is shared by every web process through Redis."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import httpx
import pytest
from django.contrib.auth import get_user_model

from runtime.channels.api_keys import api_key_create
from runtime.models import AgentRun
from tests.api.live import uvicorn_server
from tests.processes import WorkerProcess
from tests.runtime.redis_support import RedisServer

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_two_web_processes_share_one_limit(tmp_path):
    from django.db import connection

    redis_server = RedisServer(tmp_path)
    redis_server.start()
    env = {"REDIS_URL": redis_server.url}
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-12345")
    _, token = api_key_create(name="shared", agent_keys=["echo"], user=admin, requests_per_minute=4)
    try:
        with ExitStack() as stack:
            servers = [
                stack.enter_context(uvicorn_server(dict(connection.settings_dict), tmp_path, **env))
                for _ in range(2)
            ]
            worker = WorkerProcess(**env).start()
            stack.callback(worker.stop)

            def post(index: int) -> httpx.Response:
                return httpx.post(
                    f"{servers[index % 2].base_url}/v1/chat/completions",
                    headers={"Authorization": f"Bearer {token}"},
                    json={"model": "echo", "messages": [{"role": "user", "content": "hi there"}]},
                    timeout=60,
                )

            with ThreadPoolExecutor(12) as pool:
                responses = list(pool.map(post, range(12)))
    finally:
        redis_server.kill()
    assert sorted(r.status_code for r in responses) == [200] * 4 + [429] * 8
    assert {
        r.json()["choices"][0]["message"]["content"].strip() for r in responses if r.status_code == 200
    } == {"hi there"}
    assert AgentRun.objects.count() == 4
