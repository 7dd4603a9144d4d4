"""The redis_streams queue and the redis event bus, against a real redis-server and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest
from django.db import connections

from runtime.engine.queue import get_queue
from runtime.engine.queue.redis_streams import GROUP, RECONCILE_LOCK, RedisStreamsQueue, stream_for
from runtime.engine.worker import Worker
from runtime.models import AgentEvent, AgentRun
from runtime.services import run_cancel, run_create
from tests.runtime.redis_support import BackgroundWorker, RedisServer, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


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
    queue.maintain_every = 0.001  # each maintain() call in a test really runs
    return queue


def work(**options) -> int:
    options.setdefault("poll_interval", 0.05)
    return asyncio.run(Worker(once=True, **options).run())


def say(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def undelivered(server: RedisServer, key: str) -> int:
    client = server.client()
    groups = client.xinfo_groups(stream_for(key)) if client.exists(stream_for(key)) else []
    if not groups:
        return client.xlen(stream_for(key)) if client.exists(stream_for(key)) else 0
    return groups[0]["lag"]


def test_runs_flow_through_redis_streams_to_success(queue, redis_server, owner):
    runs = [run_create(agent_key="echo", messages=say(f"hello {i}"), user=owner)[0] for i in range(5)]
    client = redis_server.client()
    # Dispatched at commit, one entry per run, in the stream of its agent key.
    entries = client.xrange(stream_for("echo"))
    assert [fields[b"run_id"].decode() for _, fields in entries] == [str(r.pk) for r in runs]

    work()

    for run in runs:
        run.refresh_from_db()
        assert run.status == "succeeded" and run.attempt == 1
    # Finished entries are acknowledged and deleted: nothing pending, nothing left.
    assert client.xlen(stream_for("echo")) == 0
    assert client.xpending(stream_for("echo"), GROUP)["pending"] == 0


def test_worker_serving_some_keys_leaves_other_entries_for_their_workers(queue, redis_server, owner):
    echo, _ = run_create(agent_key="echo", messages=say("mine"), user=owner)
    noop, _ = run_create(agent_key="noop", messages=say("not mine"), user=owner)

    work(agent_keys=["echo"])
    echo.refresh_from_db()
    noop.refresh_from_db()
    assert echo.status == "succeeded"
    assert noop.status == "queued"
    assert undelivered(redis_server, "noop") == 1  # untouched, still waiting for a noop worker

    work(agent_keys=["noop"])
    noop.refresh_from_db()
    assert noop.status == "succeeded" and noop.attempt == 1


def test_entries_a_dead_consumer_left_pending_are_reclaimed(queue, redis_server, owner):
    queue.reclaim_idle = 3600
    queue.reconcile_after = 3600  # only XAUTOCLAIM may rescue it here
    run, _ = run_create(agent_key="noop", messages=say("x"), user=owner)
    client = redis_server.client()
    client.xgroup_create(stream_for("noop"), GROUP, id="0")
    # A worker read the entry and died before claiming the run in PostgreSQL.
    assert client.xreadgroup(GROUP, "dead-worker", {stream_for("noop"): ">"}, count=1)

    work()  # nothing to read: the entry is pending on the dead consumer
    run.refresh_from_db()
    assert run.status == "queued"

    queue.reclaim_idle = 0.2

    def idle_long_enough() -> bool:
        pending = client.xpending_range(stream_for("noop"), GROUP, min="-", max="+", count=10)
        return bool(pending) and pending[0]["time_since_delivered"] >= 200

    wait_until(idle_long_enough, timeout=5, what="the pending entry to idle past the reclaim threshold")
    queue.maintain()
    assert client.xpending(stream_for("noop"), GROUP)["pending"] == 0
    assert undelivered(redis_server, "noop") == 1  # back in the stream for a live worker

    work()
    run.refresh_from_db()
    assert run.status == "succeeded" and run.attempt == 1


def test_reclaimed_entry_of_a_run_that_already_ran_is_dropped(queue, redis_server, owner):
    queue.reclaim_idle = 0.05
    run, _ = run_create(agent_key="noop", messages=say("x"), user=owner)
    client = redis_server.client()
    client.xgroup_create(stream_for("noop"), GROUP, id="0")
    client.xreadgroup(GROUP, "dead-worker", {stream_for("noop"): ">"}, count=1)
    AgentRun.objects.filter(pk=run.pk).update(status="succeeded")
    wait_until(
        lambda: (
            client.xpending_range(stream_for("noop"), GROUP, "-", "+", 1)[0]["time_since_delivered"] >= 50
        ),
        timeout=5,
    )
    queue.maintain()
    assert client.xlen(stream_for("noop")) == 0


def test_reconciler_redispatches_runs_redis_lost(queue, redis_server, owner):
    queue.reconcile_after = 3600
    runs = [run_create(agent_key="noop", messages=say(str(i)), user=owner)[0] for i in range(3)]
    redis_server.restart()  # no persistence: the stream and its entries are gone

    work()  # reads nothing from Redis, so nothing runs yet
    assert set(AgentRun.objects.values_list("status", flat=True)) == {"queued"}

    queue.reconcile_after = 0
    queue.maintain()
    assert undelivered(redis_server, "noop") == 3
    work()
    for run in runs:
        run.refresh_from_db()
        assert run.status == "succeeded" and run.attempt == 1


def test_reconciler_does_not_pile_up_duplicates_while_a_backlog_waits(queue, redis_server, owner):
    queue.reconcile_after = 0
    for i in range(3):
        run_create(agent_key="noop", messages=say(str(i)), user=owner)
    queue.maintain()
    queue.maintain()
    assert redis_server.client().xlen(stream_for("noop")) == 3


def test_only_one_worker_maintains_at_a_time(queue, redis_server, owner):
    queue.reconcile_after = 0
    queue.maintain_every = 60
    run_create(agent_key="noop", messages=say("x"), user=owner)
    redis_server.client().set(RECONCILE_LOCK, "other-worker", px=60_000)  # another worker holds it
    redis_server.client().delete(stream_for("noop"))
    queue.maintain()
    assert redis_server.client().xlen(stream_for("noop")) == 0


def test_enqueue_commits_the_run_when_redis_is_down_and_it_runs_later(queue, redis_server, owner, caplog):
    queue.reconcile_after = 0
    redis_server.kill()
    with caplog.at_level(logging.WARNING, logger="runtime.queue.redis"):
        run, created = run_create(agent_key="echo", messages=say("still here"), user=owner)
    assert created and AgentRun.objects.get(pk=run.pk).status == "queued"
    assert "stay queued in PostgreSQL" in caplog.text

    redis_server.start()
    queue.maintain()
    work()
    run.refresh_from_db()
    assert run.status == "succeeded" and run.attempt == 1


def test_workers_claim_from_postgresql_while_redis_is_down(queue, redis_server, owner):
    redis_server.kill()
    run, _ = run_create(agent_key="noop", messages=say("x"), user=owner)
    work()
    run.refresh_from_db()
    assert run.status == "succeeded" and run.attempt == 1


def test_stale_entry_of_a_cancelled_run_is_acknowledged(queue, redis_server, owner):
    run, _ = run_create(agent_key="noop", messages=say("x"), user=owner)
    run_cancel(run=run)
    work()
    run.refresh_from_db()
    assert run.status == "cancelled"
    assert redis_server.client().xlen(stream_for("noop")) == 0
    assert not AgentEvent.objects.filter(run=run, event_type="run.started").exists()


def test_a_retried_run_is_redispatched_when_due(queue, redis_server, owner):
    queue.reconcile_after = 0.1
    run, _ = run_create(agent_key="flaky", messages=say("x"), user=owner)
    worker = BackgroundWorker().start()
    try:
        wait_until(
            lambda: AgentRun.objects.get(pk=run.pk).status == "succeeded", timeout=20, what="the retry"
        )
    finally:
        worker.stop()
    run.refresh_from_db()
    assert run.attempt == 2
    started = AgentEvent.objects.filter(run=run, event_type="run.started").count()
    assert started == 2


def test_redis_bus_publishes_the_last_seq_of_each_batch_after_commit(queue, redis_server, owner):
    pubsub = redis_server.client().pubsub()
    pubsub.subscribe("agent_runtime:events")
    assert pubsub.get_message(timeout=5)["type"] == "subscribe"
    seen: list[tuple[str, int, int]] = []  # (run_id, published seq, events visible when it arrived)
    stop = threading.Event()

    def listen() -> None:
        try:
            while not stop.is_set():
                message = pubsub.get_message(timeout=0.1)
                if message and message["type"] == "message":
                    run_id, seq = message["data"].decode().split(":")
                    visible = AgentEvent.objects.filter(run_id=run_id, seq__lte=int(seq)).count()
                    seen.append((run_id, int(seq), visible))
        finally:
            connections.close_all()

    listener = threading.Thread(target=listen)
    listener.start()
    try:
        run, _ = run_create(agent_key="echo", messages=say("one two three"), user=owner)
        work()
        last = AgentEvent.objects.filter(run=run).order_by("-seq").values_list("seq", flat=True).first()
        wait_until(
            lambda: any(seq == last for _, seq, _ in seen), timeout=5, what="the last batch's notification"
        )
    finally:
        stop.set()
        listener.join(5)
    assert {run_id for run_id, _, _ in seen} == {str(run.pk)}
    seqs = [seq for _, seq, _ in seen]
    assert seqs == sorted(seqs) and seqs[-1] == last
    # Published after commit: every event up to the announced seq was already readable.
    assert all(visible == seq for _, seq, visible in seen)
