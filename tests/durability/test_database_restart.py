"""PostgreSQL restarts under a live web server and worker (item 9 of the outside review).

A private PostgreSQL on its own socket, real uvicorn, a real ``runagent``: while the database
is down, creating a run answers 503 with Retry-After (not 500), and an open event stream keeps
its connection, sends keep-alives, and delivers the rest of the run once the database is back.
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.api.live import parse_sse, uvicorn_server
from tests.durability.private_pg import private_postgres
from tests.processes import WorkerProcess, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

MAKE_USER = (
    "from django.contrib.auth import get_user_model; from rest_framework.authtoken.models import Token; "
    "u = get_user_model().objects.create_user('ops', 'ops@example.com', 'pw-ops-12345', is_staff=True); "
    "print(Token.objects.create(user=u).key)"
)


class StreamReader(threading.Thread):
    """Reads one event stream to its end in the background, keeping every byte and when it came."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.url, self.headers = url, headers
        self.chunks: list[tuple[float, bytes]] = []
        self.status: int | None = None
        self.error: BaseException | None = None
        self.ended = threading.Event()

    def run(self) -> None:
        try:
            with (
                httpx.Client(timeout=60) as client,
                client.stream("GET", self.url, headers=self.headers) as resp,
            ):
                self.status = resp.status_code
                for chunk in resp.iter_raw():
                    self.chunks.append((time.monotonic(), chunk))
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
        finally:
            self.ended.set()

    def raw(self) -> bytes:
        return b"".join(chunk for _, chunk in self.chunks)


def test_run_creation_is_503_and_an_open_stream_survives_a_database_restart(tmp_path):
    with private_postgres() as pg:
        assert pg.show("fsync") == "on" and pg.show("synchronous_commit") == "on"  # crash-safe settings
        pg.manage("migrate", "--no-input", "-v", "0")
        token = pg.manage("shell", "-c", MAKE_USER).split()[-1]
        auth = {"Authorization": f"Token {token}"}
        release = tmp_path / "release"
        env = {"DATABASE_URL": pg.url}
        with (
            uvicorn_server({"NAME": "agents"}, tmp_path, **env) as server,
            WorkerProcess("--concurrency", "2", **env) as worker,
        ):
            api = f"{server.base_url}/api/agents"
            body = {
                "agent_key": "wait",
                "messages": [{"role": "user", "content": "hold on"}],
                "params": {"release_file": str(release)},
            }
            created = httpx.post(f"{api}/runs/", json=body, headers=auth, timeout=30)
            assert created.status_code == 201, created.text
            run_id = created.json()["id"]

            reader = StreamReader(f"{api}/runs/{run_id}/events/stream/", auth)
            reader.start()
            wait_until(lambda: b"working" in reader.raw(), timeout=30, what="the first delta")

            pg.stop()
            stopped_at = time.monotonic()
            down = httpx.post(f"{api}/runs/", json=body, headers=auth, timeout=30)
            assert down.status_code == 503, down.text
            assert int(down.headers["Retry-After"]) > 0
            assert down.json()["error"]["code"] == "database_unavailable"
            # the stream stays open through the outage and keeps the client's connection alive
            wait_until(
                lambda: (
                    sum(1 for at, chunk in reader.chunks if at > stopped_at and chunk.startswith(b":")) >= 2
                    or reader.ended.is_set()
                ),
                timeout=30,
                what="keep-alives while the database is down",
            )
            assert not reader.ended.is_set(), (reader.error, reader.raw()[-300:], server.log()[-3000:])

            pg.start()
            release.write_text("go")
            assert reader.ended.wait(60), "the stream did not finish after the database came back"
            log = server.log()
            worker.stop()

        assert reader.status == 200 and reader.error is None, reader.error
        frames = [f for f in parse_sse(reader.raw()).frames if f.id is not None]
        seqs = [f.id for f in frames]
        assert seqs == sorted(set(seqs))  # every event once, in order
        assert [f.event for f in frames][-1] == "run.succeeded" or "run.succeeded" in {
            f.event for f in frames
        }
        assert any(f.data and "after release" in f.data for f in frames)
        assert "Exception in ASGI application" not in log, log[-3000:]
