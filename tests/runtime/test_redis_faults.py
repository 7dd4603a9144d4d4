"""Redis dies and comes back empty while workers run a batch: no run is lost, none runs twice."""

from __future__ import annotations

import pytest
from django.db.models import Count, Q

from runtime.engine.queue import get_queue
from runtime.engine.queue.redis_streams import GROUP, RedisStreamsQueue, stream_for
from runtime.models import AgentRun
from runtime.services import run_create
from tests.processes import WorkerProcess
from tests.runtime.redis_support import BackgroundWorker, RedisServer, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.slow]


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.kill()


@pytest.fixture
def queue(redis_server, settings) -> RedisStreamsQueue:
    settings.DJANGO_AGENT_RUNTIME = {
        **settings.DJANGO_AGENT_RUNTIME,
        "QUEUE_BACKEND": "redis_streams",
        "EVENT_BUS_BACKEND": "redis",
        "REDIS_URL": redis_server.url,
    }
    queue = get_queue()
    assert isinstance(queue, RedisStreamsQueue)
    queue.block_seconds = 0.1
    queue.reconcile_after = 0.5
    return queue


def create(n: int, owner, tag: str) -> list[AgentRun]:
    text = "one two three four five six"
    return [
        run_create(agent_key="echo", messages=[{"role": "user", "content": f"{tag} {i} {text}"}], user=owner)[
            0
        ]
        for i in range(n)
    ]


def succeeded(runs: list[AgentRun]) -> int:
    return AgentRun.objects.filter(pk__in=[r.pk for r in runs], status="succeeded").count()


def drained(server: RedisServer) -> bool:
    client = server.client()
    if not client.exists(stream_for("echo")):
        return False
    groups = client.xinfo_groups(stream_for("echo"))
    return (
        bool(groups)
        and groups[0]["name"].decode() == GROUP
        and groups[0]["entries-read"] >= 15
        and (client.xlen(stream_for("echo")) == 0)
    )


def test_restarting_redis_during_a_batch_loses_no_run_and_runs_none_twice(
    queue, redis_server, owner, tmp_path
):
    started_file, release_file = tmp_path / "started", tmp_path / "release"
    in_flight, _ = run_create(
        agent_key="wait",
        messages=[{"role": "user", "content": "hold"}],
        params={"started_file": str(started_file), "release_file": str(release_file)},
        user=owner,
    )
    before = create(40, owner, "before")
    workers = [BackgroundWorker(name=f"w{i}", concurrency=4).start() for i in range(2)]
    try:
        wait_until(started_file.exists, timeout=20, what="the long run to start")
        wait_until(lambda: succeeded(before) >= 5, timeout=20, what="some runs to finish")

        redis_server.kill()  # mid-batch: entries, pending lists and groups are gone
        during = create(15, owner, "during")  # committed although Redis cannot take them
        wait_until(lambda: succeeded([*before, *during]) >= 45, timeout=30, what="progress without Redis")

        redis_server.start()  # empty: everything Redis held is lost
        after = create(15, owner, "after")
        release_file.write_text("go")
        everything = [in_flight, *before, *during, *after]
        wait_until(lambda: succeeded(everything) == len(everything), timeout=60, what="every run to succeed")
    finally:
        for worker in workers:
            worker.stop()

    runs = AgentRun.objects.filter(pk__in=[r.pk for r in everything]).annotate(
        started=Count("events", filter=Q(events__event_type="run.started")),
        ended=Count("events", filter=Q(events__event_type="run.succeeded")),
    )
    assert len(runs) == len(everything)
    for run in runs:
        assert (run.status, run.attempt, run.started, run.ended) == ("succeeded", 1, 1, 1), run.pk


def test_runs_redis_lost_on_restart_are_dispatched_to_a_worker_that_starts_later(queue, redis_server, owner):
    """Entries waiting for a key no worker serves yet are lost with Redis; the reconciler recovers them."""
    waiting = [
        run_create(agent_key="noop", messages=[{"role": "user", "content": str(i)}], user=owner)[0]
        for i in range(10)
    ]
    assert redis_server.client().xlen(stream_for("noop")) == 10
    redis_server.kill()
    redis_server.start()
    assert not redis_server.client().exists(stream_for("noop"))

    worker = BackgroundWorker(name="late", agent_keys=["noop"]).start()
    try:
        wait_until(
            lambda: succeeded(waiting) == len(waiting), timeout=30, what="the lost runs to be dispatched"
        )
    finally:
        worker.stop()
    assert set(AgentRun.objects.filter(pk__in=[r.pk for r in waiting]).values_list("attempt", flat=True)) == {
        1
    }


def test_runagent_processes_on_redis_streams_survive_a_redis_restart(queue, redis_server, owner):
    """The same fault through real ``manage.py runagent`` processes configured from the environment."""
    env = {
        "AGENT_QUEUE_BACKEND": "redis_streams",
        "AGENT_EVENT_BUS_BACKEND": "redis",
        "REDIS_URL": redis_server.url,
    }
    workers = [WorkerProcess("--concurrency", "4", **env).start() for _ in range(2)]
    logs: list[str] = []
    try:
        before = create(30, owner, "before")
        wait_until(lambda: succeeded(before) >= 5, timeout=30, what="the workers to boot and run")
        redis_server.kill()
        during = create(10, owner, "during")
        redis_server.start()
        after = create(10, owner, "after")
        everything = [*before, *during, *after]
        wait_until(lambda: succeeded(everything) == len(everything), timeout=60, what="every run to succeed")
    finally:
        logs = [w.stop() for w in workers]
    runs = AgentRun.objects.filter(pk__in=[r.pk for r in everything]).annotate(
        started=Count("events", filter=Q(events__event_type="run.started"))
    )
    assert {(r.attempt, r.started) for r in runs} == {(1, 1)}
    assert any("queue=redis_streams" in log for log in logs)
