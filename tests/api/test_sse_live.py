"""Event streams against a real uvicorn process: cut anywhere, resume, lose nothing."""

from __future__ import annotations

import json
import random
import threading
import time
from contextlib import ExitStack

import httpx
import pytest
from django.db import connection, transaction

from runtime.events import append_events
from runtime.models import AgentEvent, AgentRun
from runtime.services import run_create
from tests.api.conftest import API, open_to_visitors, say
from tests.api.live import parse_sse, read_stream, uvicorn_server
from tests.processes import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
TERMINAL = {"run.succeeded", "run.failed", "run.cancelled", "run.timed_out"}


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker, tmp_path_factory):
    with django_db_blocker.unblock():
        settings_dict = dict(connection.settings_dict)
    # Without connection reuse, so "an idle stream holds no database connection" is directly
    # observable; with the web process's default reuse they are bounded by the API threads instead
    # (test_persistent_connections_stay_bounded_by_threads_not_streams).
    with uvicorn_server(
        settings_dict, tmp_path_factory.mktemp("uvicorn"), DATABASE_CONN_MAX_AGE="0"
    ) as running:
        yield running


@pytest.fixture(scope="module")
def reusing_server(django_db_setup, django_db_blocker, tmp_path_factory):
    with django_db_blocker.unblock():
        settings_dict = dict(connection.settings_dict)
    with uvicorn_server(
        settings_dict, tmp_path_factory.mktemp("uvicorn-reuse"), AGENT_API_THREADS="4"
    ) as running:
        yield running


def plan_events(rng: random.Random, count: int) -> list[tuple[str, dict]]:
    plan: list[tuple[str, dict]] = [("run.started", {"attempt": 1})]
    for index in range(count):
        kind = rng.choice(
            ["assistant.delta", "assistant.delta", "assistant.delta", "tool.call", "run.heartbeat"]
        )
        plan.append((kind, {"delta": f"tok{index} ", "text": "ü\nnew line", "i": index}))
    plan.append(("assistant.message", {"content": "done", "role": "assistant"}))
    plan.append(("run.succeeded", {"output": {"ok": True}}))
    return plan


def write_paced(run_id: str, plan: list[tuple[str, dict]], rng: random.Random) -> threading.Thread:
    """A worker stand-in: writes the plan in small batches, as the runner does."""

    def write() -> None:
        try:
            position = 0
            while position < len(plan):
                size = rng.randint(1, 6)
                batch = plan[position : position + size]
                with transaction.atomic():
                    append_events(run_id, batch, attempt=1, lease_token=None)
                    if batch[-1][0] in TERMINAL:  # the runner commits the final status with the last events
                        AgentRun.objects.filter(pk=run_id).update(status=batch[-1][0].removeprefix("run."))
                position += size
                time.sleep(rng.uniform(0, 0.004))  # pacing, not synchronisation
        finally:
            connection.close()

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def resume_until_done(url: str, token: str, rng: random.Random) -> tuple[list[dict], int]:
    """Read with random cuts, reconnecting with Last-Event-ID, until the terminal event."""
    received: list[dict] = []
    last_id: int | None = None
    mid_frame_cuts = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        headers = {"Authorization": f"Token {token}"}
        if last_id is not None:
            headers["Last-Event-ID"] = str(last_id)
        cut = rng.randint(1, 700) if rng.random() < 0.85 else None
        status, raw, ended = read_stream(url, headers=headers, cut_after=cut)
        if status == 204:
            break
        assert status == 200, raw
        parsed = parse_sse(raw)
        assert parsed.retry == 2000 or len(raw) < len(b"retry: 2000\n\n")
        mid_frame_cuts += bool(parsed.rest) and not ended
        for frame in parsed.frames:
            if frame.id is not None:
                data = json.loads(frame.data)
                assert data["seq"] == frame.id and data["type"] == frame.event
                received.append(data)
                last_id = frame.id
        if received and received[-1]["type"] in TERMINAL:
            assert ended or cut is not None
            break
    else:
        pytest.fail(f"stream did not finish; got {len(received)} events, the last {received[-1:]}")
    return received, mid_frame_cuts


@pytest.mark.parametrize("route", ["events/stream/", "events/"])
def test_cut_anywhere_and_resume_gets_every_event_once_in_order(server, owner, owner_token, route):
    rng = random.Random(20261124)
    run, _ = run_create(agent_key="echo", messages=say("stream me"), user=owner)
    plan = plan_events(rng, 150)
    writer = write_paced(str(run.pk), plan, rng)
    received, mid_frame_cuts = resume_until_done(
        f"{server.base_url}{API}/runs/{run.pk}/{route}?include_all=true", owner_token, rng
    )
    writer.join(timeout=30)
    stored = list(AgentEvent.objects.filter(run=run).order_by("seq"))
    assert len(stored) == len(plan)
    assert [e["seq"] for e in received] == [e.seq for e in stored], "a gap or a duplicate"
    assert [(e["type"], e["payload"], e["attempt"]) for e in received] == [
        (e.event_type, e.payload, e.attempt) for e in stored
    ]
    assert mid_frame_cuts > 0, "the random cuts should include some in the middle of a frame"

    # a finished run: default visibility shows user events and the terminal one, then ends
    status, raw, ended = read_stream(
        f"{server.base_url}{API}/runs/{run.pk}/{route}", headers={"Authorization": f"Token {owner_token}"}
    )
    shown = [f for f in parse_sse(raw).frames if f.id is not None]
    expected = [e for e in stored if e.visibility == "user" or e.event_type in TERMINAL]
    assert (status, ended) == (200, True)
    assert [f.id for f in shown] == [e.seq for e in expected]
    debug = read_stream(
        f"{server.base_url}{API}/runs/{run.pk}/{route}?include_debug=true&from_seq=3",
        headers={"Authorization": f"Token {owner_token}"},
    )[1]
    debug_ids = [f.id for f in parse_sse(debug).frames if f.id is not None]
    assert debug_ids == [
        e.seq for e in stored if e.seq >= 3 and (e.visibility != "internal" or e.event_type in TERMINAL)
    ]
    # resuming after the terminal event: 204 tells EventSource to stop reconnecting
    after_end = read_stream(
        f"{server.base_url}{API}/runs/{run.pk}/{route}",
        headers={"Authorization": f"Token {owner_token}", "Last-Event-ID": str(stored[-1].seq)},
    )
    assert after_end[0] == 204


def stats(server, token: str) -> dict:
    response = httpx.get(
        f"{server.base_url}{API}/streams/stats/", headers={"Authorization": f"Token {token}"}
    )
    assert response.status_code == 200, response.text
    return response.json()


def server_connections() -> list[tuple]:
    """Connections to the test database other than this test's own."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, state, left(query, 60) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
        return cursor.fetchall()


@pytest.mark.parametrize("route", ["events/stream/", "events/"])
def test_idle_streams_hold_no_db_connection_get_events_and_free_their_slot(
    server, owner, owner_token, anon_session, route
):
    open_to_visitors("echo")  # anonymous sessions run an agent through its web widget
    run, _ = run_create(agent_key="echo", messages=say("fan out"), anonymous_session_id=anon_session.pk)
    # an upper-case id names the same run (the bus uses the canonical form)
    url = f"{server.base_url}{API}/runs/{str(run.pk).upper()}/{route}?anonymous_token={anon_session.token}"
    baseline = stats(server, owner_token)["subscribers"]
    with ExitStack() as stack:
        client = stack.enter_context(httpx.Client(timeout=10))
        streams = []
        for _ in range(20):
            response = stack.enter_context(client.stream("GET", url))
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            chunks = response.iter_raw()
            assert next(chunks).startswith(b"retry: 2000")
            streams.append(chunks)
        assert stats(server, owner_token)["subscribers"] == baseline + 20
        # the listener's LISTEN connection (and its reader) at most, not one per stream; polled
        # because a backend that a finished request closed may take a moment to leave the view
        wait_until(
            lambda: len(server_connections()) <= 2, f"at most 2 connections, not {server_connections()}"
        )

        append_events(
            str(run.pk), [("assistant.message", {"content": "to all"})], attempt=1, lease_token=None
        )
        for chunks in streams:
            seen = b""
            while b"event: assistant.message" not in seen:
                seen += next(chunks)  # keep-alives arrive in between
            assert b'"content":"to all"' in seen
        wait_until(
            lambda: len(server_connections()) <= 2, f"at most 2 connections, not {server_connections()}"
        )
        assert stats(server, owner_token)["delivery_p99_ms"] is not None
    wait_until(
        lambda: stats(server, owner_token)["subscribers"] == baseline, "closed streams to free their slots"
    )


def test_keep_alive_comment_while_idle_and_bad_parameters(server, owner, owner_token):
    run, _ = run_create(agent_key="echo", messages=say("quiet"), user=owner)
    url = f"{server.base_url}{API}/runs/{run.pk}/events/stream/"
    headers = {"Authorization": f"Token {owner_token}"}
    with httpx.Client(timeout=10) as client, client.stream("GET", url, headers=headers) as response:
        seen = b""
        for chunk in response.iter_raw():
            seen += chunk
            if b": keep-alive\n\n" in seen:
                break
    assert seen.startswith(b"retry: 2000\n\n")
    bad = httpx.get(url, headers={**headers, "Last-Event-ID": "abc"})
    assert bad.status_code == 400 and "Last-Event-ID" in bad.json()["error"]["fields"]
    bad = httpx.get(url + "?include_debug=maybe", headers=headers)
    assert bad.status_code == 400 and "include_debug" in bad.json()["error"]["fields"]
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"X-Anonymous-Token": "nope"}).status_code == 401


@pytest.mark.redis
def test_redis_bus_delivers_live_events(owner, owner_token, settings, tmp_path):
    redis_url = "redis://127.0.0.1:6379/0"
    settings.DJANGO_AGENT_RUNTIME = {
        **settings.DJANGO_AGENT_RUNTIME,
        "EVENT_BUS_BACKEND": "redis",
        "REDIS_URL": redis_url,
    }
    env = {"AGENT_EVENT_BUS_BACKEND": "redis", "REDIS_URL": redis_url}
    with uvicorn_server(dict(connection.settings_dict), tmp_path, **env) as redis_server:
        run, _ = run_create(agent_key="echo", messages=say("via redis"), user=owner)
        url = f"{redis_server.base_url}{API}/runs/{run.pk}/events/stream/"
        headers = {"Authorization": f"Token {owner_token}"}
        with httpx.Client(timeout=10) as client, client.stream("GET", url, headers=headers) as response:
            chunks = response.iter_raw()
            assert next(chunks).startswith(b"retry: 2000")
            assert stats(redis_server, owner_token)["backend"] == "redis"
            with transaction.atomic():
                append_events(str(run.pk), [("run.failed", {"error": "boom"})], attempt=1, lease_token=None)
                AgentRun.objects.filter(pk=run.pk).update(status="failed")
            body = b"".join(chunks)  # the stream ends after the terminal event
        assert b"id: 1\nevent: run.failed\n" in body


def test_persistent_connections_stay_bounded_by_threads_not_streams(reusing_server, anon_session):
    """With the web process's default DATABASE_CONN_MAX_AGE, 30 open streams still do not hold 30 connections."""
    open_to_visitors("echo")
    run, _ = run_create(agent_key="echo", messages=say("many"), anonymous_session_id=anon_session.pk)
    url = f"{reusing_server.base_url}{API}/runs/{run.pk}/events/stream/?anonymous_token={anon_session.token}"
    with ExitStack() as stack:
        client = stack.enter_context(httpx.Client(timeout=10))
        for _ in range(30):
            response = stack.enter_context(client.stream("GET", url))
            assert next(response.iter_raw()).startswith(b"retry: 2000")
        held = server_connections()
        # LISTEN + reader + at most one per API thread (4) and per stream-read worker thread
        assert len(held) < 16, held


def test_a_stream_opened_after_its_events_costs_the_listener_no_read(server, owner, owner_token):
    """The stream's own backlog read covers what the listener heard before it subscribed."""
    headers = {"Authorization": f"Token {owner_token}"}
    warm, _ = run_create(agent_key="echo", messages=say("warm"), user=owner)
    run, _ = run_create(agent_key="echo", messages=say("late"), user=owner)
    with (
        httpx.Client(timeout=10) as client,
        client.stream(
            "GET", f"{server.base_url}{API}/runs/{warm.pk}/events/stream/", headers=headers
        ) as open_one,
    ):
        assert next(open_one.iter_raw()).startswith(b"retry: 2000")  # the process is listening now
        heard = stats(server, owner_token)["notifications"]
        append_events(
            str(run.pk),
            [("assistant.delta", {"delta": "a"}), ("assistant.delta", {"delta": "b"})],
            attempt=1,
            lease_token=None,
        )
        wait_until(
            lambda: stats(server, owner_token)["notifications"] > heard,
            "the listener to hear of the events",
        )
        reads = stats(server, owner_token)["reads"]
        url = f"{server.base_url}{API}/runs/{run.pk}/events/stream/"
        with client.stream("GET", url, headers=headers) as late:
            seen = b""
            chunks = late.iter_raw()
            while b"id: 2\n" not in seen:
                seen += next(chunks)
        assert stats(server, owner_token)["reads"] == reads
