"""The per-process listener: fan-out, bounded buffers, and recovery after a lost connection."""

from __future__ import annotations

import asyncio
import time

import pytest
from django.db import connection, transaction

from runtime.events import append_events
from runtime.services import run_create
from runtime.streaming.listener import EventListener, _conninfo
from runtime.streaming.subscription import RESYNC
from tests.api.conftest import say
from tests.processes import until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def write(run_id: str, count: int, start: int = 0) -> None:
    try:
        for index in range(start, start + count):
            append_events(run_id, [("assistant.delta", {"delta": str(index)})], attempt=1, lease_token=None)
    finally:
        connection.close()


def test_a_slow_subscriber_overflows_alone_and_the_others_get_everything(owner):
    run, _ = run_create(agent_key="echo", messages=say("x"), user=owner)
    run_id = str(run.pk)

    async def scenario() -> tuple[list[int], bool, dict]:
        listener = EventListener(conninfo=_conninfo(), buffer_size=4, read_limit=2)
        try:
            slow = await listener.subscribe(run_id, position=0)
            fast = await listener.subscribe(run_id, position=0)
            got: list[int] = []

            async def consume() -> None:
                while len(got) < 12:
                    item = await fast.queue.get()
                    if item is not RESYNC:
                        got.append(item[0].seq)

            consumer = asyncio.create_task(consume())
            await asyncio.to_thread(write, run_id, 12)
            await asyncio.wait_for(consumer, 10)
            assert listener.subscriber_count == 2
            listener.unsubscribe(slow)
            listener.unsubscribe(fast)
            return got, slow.overflowed, listener.describe()
        finally:
            await listener.close()

    got, slow_overflowed, stats = asyncio.run(scenario())
    assert got == list(range(1, 13))
    assert slow_overflowed, "the subscriber that never read must be cut off, not buffered without bound"
    assert stats["overflows"] >= 1 and stats["subscribers"] == 0


def test_after_losing_its_connection_the_listener_reconnects_and_asks_streams_to_resync(owner):
    run, _ = run_create(agent_key="echo", messages=say("x"), user=owner)
    run_id = str(run.pk)

    def kill_listen_connection() -> int:
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND query LIKE 'LISTEN agent_events%%'"
                )
                return len(cursor.fetchall())
        finally:
            connection.close()

    async def scenario() -> list:
        listener = EventListener(conninfo=_conninfo())
        try:
            subscription = await listener.subscribe(run_id, position=0)
            assert await asyncio.to_thread(kill_listen_connection) == 1
            await until(lambda: listener.stats.reconnects >= 1 and listener.connected, "a reconnect")
            items = [await asyncio.wait_for(subscription.queue.get(), 5)]
            await asyncio.to_thread(write, run_id, 1)
            items.append(await asyncio.wait_for(subscription.queue.get(), 5))
            return items
        finally:
            await listener.close()

    resync, (event, _noticed_at) = asyncio.run(scenario())
    assert resync is RESYNC
    assert event.seq == 1 and b'"delta":"0"' in event.frame


def test_a_parked_stream_gets_frames_from_its_writer_and_the_buffer_takes_over_when_it_declines(owner):
    """What the direct-write path relies on: nothing lost, nothing doubled, order kept."""
    run, _ = run_create(agent_key="echo", messages=say("x"), user=owner)
    run_id = str(run.pk)

    async def scenario() -> tuple[list[int], list[int]]:
        listener = EventListener(conninfo=_conninfo())
        try:
            subscription = await listener.subscribe(run_id, position=0)
            written: list[int] = []
            accepting = True

            def writer(event, noticed_at) -> bool:
                if not accepting:
                    return False  # as when the client's socket buffer is full
                written.append(event.seq)
                subscription.position = event.seq
                return True

            subscription.writer = writer
            await asyncio.to_thread(write, run_id, 3)
            await until(lambda: len(written) == 3, "three frames written directly")
            accepting = False
            await asyncio.to_thread(write, run_id, 3, 3)
            buffered: list[int] = []
            while len(buffered) < 3:
                item = await asyncio.wait_for(subscription.queue.get(), 10)
                buffered.append(item[0].seq)
            listener.unsubscribe(subscription)
            return written, buffered
        finally:
            await listener.close()

    written, buffered = asyncio.run(scenario())
    assert written == [1, 2, 3]
    assert buffered == [4, 5, 6]


def test_events_committed_between_a_backlog_read_and_attach_are_delivered_without_a_read(owner):
    """A stream reads its backlog first and subscribes after; the listener covers the gap."""
    run, _ = run_create(agent_key="echo", messages=say("x"), user=owner)
    run_id = str(run.pk)

    async def scenario() -> tuple[bool, list[int], bool]:
        listener = EventListener(conninfo=_conninfo())
        try:
            warm = await listener.subscribe("00000000-0000-0000-0000-000000000000")  # starts it listening
            read_at = time.monotonic()  # the stream's backlog read: nothing yet
            await asyncio.to_thread(write, run_id, 2)  # committed after the read, before attach
            await until(lambda: listener._recent.get(run_id) == 2, "the listener heard of both events")
            subscription = listener.attach(run_id, position=0, read_at=read_at)
            got = []
            while len(got) < 2:
                item = await asyncio.wait_for(subscription.queue.get(), 5)
                got.append(item[0].seq)
            stale = listener.attach(run_id, position=0, read_at=read_at - 3600)  # read before it listened
            listener.unsubscribe(warm)
            return subscription.vouched, got, stale.vouched
        finally:
            await listener.close()

    vouched, got, stale_vouched = asyncio.run(scenario())
    assert vouched and got == [1, 2]
    assert not stale_vouched, "a read older than the listener's memory must be repeated by the stream"


def test_a_listener_that_forgot_notifications_does_not_vouch_for_older_reads(owner):
    runs = [str(run_create(agent_key="echo", messages=say("x"), user=owner)[0].pk) for _ in range(3)]

    async def scenario() -> tuple[bool, bool]:
        listener = EventListener(conninfo=_conninfo(), recent_limit=2)
        try:
            await listener.subscribe("00000000-0000-0000-0000-000000000000")
            read_at = time.monotonic()
            for run_id in runs:  # the third run's notification makes it forget the first two
                await asyncio.to_thread(write, run_id, 1)
            await until(lambda: runs[2] in listener._recent, "the third notification")
            forgotten = listener.attach(runs[0], position=0, read_at=read_at)
            fresh = listener.attach(runs[2], position=0, read_at=time.monotonic())
            return forgotten.vouched, fresh.vouched
        finally:
            await listener.close()

    forgotten_vouched, fresh_vouched = asyncio.run(scenario())
    assert not forgotten_vouched and fresh_vouched


def test_events_of_many_runs_notified_together_are_read_in_one_query(owner):
    runs = [str(run_create(agent_key="echo", messages=say("x"), user=owner)[0].pk) for _ in range(20)]

    def write_all_at_once() -> None:
        try:
            with transaction.atomic():  # the notifications arrive together, at commit
                for index, run_id in enumerate(runs):
                    append_events(
                        run_id, [("assistant.delta", {"delta": str(index)})], attempt=1, lease_token=None
                    )
        finally:
            connection.close()

    async def scenario() -> tuple[list[bytes], int]:
        listener = EventListener(conninfo=_conninfo())
        try:
            subscriptions = [await listener.subscribe(run_id, position=0) for run_id in runs]
            reads_before = listener.stats.reads
            await asyncio.to_thread(write_all_at_once)
            frames = []
            for subscription in subscriptions:
                event, _noticed_at = await asyncio.wait_for(subscription.queue.get(), 5)
                frames.append(event.frame)
            return frames, listener.stats.reads - reads_before
        finally:
            await listener.close()

    frames, reads = asyncio.run(scenario())
    assert all(f'"delta":"{index}"'.encode() in frame for index, frame in enumerate(frames))
    assert reads < len(runs), "one query per round of notifications, not one per run"
