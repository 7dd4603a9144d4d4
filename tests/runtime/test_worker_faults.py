"""Real ``runagent`` processes on the PostgreSQL queue, killed, frozen, stopped and cancelled."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from runtime.models import AgentEvent, AgentRun
from runtime.services import run_cancel, run_create
from tests.processes import WorkerProcess, wait_until
from tests.runtime.fault_agents import register_agents

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

TTL = 2
REGISTRY = "examples.seed_agents:register_agents,tests.runtime.fault_agents:register_agents"


@pytest.fixture(autouse=True)
def _fault_agents():
    register_agents()  # run_create checks the key in this process too


def worker(*args: str, **env: str) -> WorkerProcess:
    env = {"AGENT_LEASE_TTL_SECONDS": str(TTL), "AGENT_RUNTIME_REGISTRY": REGISTRY, **env}
    return WorkerProcess(*args, **env).start()


def hold(owner, tmp_path: Path, name: str = "run") -> tuple[AgentRun, Path, Path]:
    """A run of the ``wait`` agent: it signals when it starts and finishes once released."""
    started, release = tmp_path / f"{name}.started", tmp_path / f"{name}.release"
    run, _ = run_create(
        agent_key="wait",
        messages=[{"role": "user", "content": "hold"}],
        params={"started_file": str(started), "release_file": str(release)},
        user=owner,
    )
    return run, started, release


def fresh(run: AgentRun) -> AgentRun:
    return AgentRun.objects.get(pk=run.pk)


def wait_ready(owner) -> None:
    """A no-op run succeeding proves a (the only free) worker has booted and claims work."""
    probe, _ = run_create(agent_key="noop", messages=[{"role": "user", "content": "probe"}], user=owner)
    wait_until(lambda: fresh(probe).status == "succeeded", timeout=30, what="a worker to boot")


def event_types(run: AgentRun) -> list[str]:
    return list(AgentEvent.objects.filter(run=run).order_by("seq").values_list("event_type", flat=True))


def test_kill_9_mid_run_another_worker_finishes_it_with_the_next_attempt(owner, tmp_path):
    first = worker("--concurrency", "1")
    second = None
    try:
        run, started, release = hold(owner, tmp_path)
        wait_until(started.exists, timeout=30, what="the run to start")
        assert started.read_text() == str(first.pid)
        second = worker("--concurrency", "1")
        wait_ready(owner)

        first.signal(signal.SIGKILL)
        killed_at = time.monotonic()
        release.write_text("go")
        wait_until(
            lambda: fresh(run).status == "succeeded", timeout=TTL + 5, what="the run to resume elsewhere"
        )
        resumed_after = time.monotonic() - killed_at
    finally:
        first.stop()
        if second:
            second.stop()
    run = fresh(run)
    assert run.attempt == 2 and started.read_text() == str(second.pid)
    types = event_types(run)
    assert types.count("run.started") == 2 and types.count("run.succeeded") == 1
    rescue = AgentEvent.objects.get(run=run, event_type="run.retrying")
    assert rescue.payload["reason"]["code"] == "lease_expired"
    print(f"kill -9 to finished elsewhere: {resumed_after:.2f} s (lease TTL {TTL} s)")


def test_a_frozen_worker_writes_nothing_after_its_lease_was_rescued(owner, tmp_path):
    frozen = worker("--concurrency", "1")
    rescuer = None
    try:
        run, started, release = hold(owner, tmp_path)
        wait_until(started.exists, timeout=30, what="the run to start")
        rescuer = worker("--concurrency", "1")
        wait_ready(owner)

        frozen.signal(signal.SIGSTOP)
        wait_until(lambda: started.read_text() == str(rescuer.pid), timeout=TTL + 5, what="the rescue")
        frozen.signal(signal.SIGCONT)  # it wakes believing it still runs the run
        release.write_text("go")  # both attempts see the release and try to finish
        wait_until(lambda: fresh(run).status == "succeeded", timeout=10, what="the rescued run to finish")
    finally:
        frozen_log = frozen.stop()
        if rescuer:
            rescuer.stop()
    run = fresh(run)
    # The rescue happened while the first worker was frozen; everything after it belongs to later
    # attempts. (The rescuer's own 2 s lease can lapse too while runner.execute loads the run
    # before its first heartbeat, so the run may end on attempt 3; what must never happen is a
    # write from attempt 1. The kill -9 test above still asserts attempt 2 exactly.)
    rescue_seq = AgentEvent.objects.filter(run=run, event_type="run.retrying").order_by("seq").first().seq
    later = set(AgentEvent.objects.filter(run=run, seq__gt=rescue_seq).values_list("attempt", flat=True))
    assert later and min(later) >= 2
    types = event_types(run)
    assert run.attempt >= 2 and types.count("run.started") == run.attempt
    assert types.count("run.succeeded") == 1 and not {"run.failed", "run.cancelled"} & set(types)
    assert list(AgentEvent.objects.filter(run=run).values_list("seq", flat=True).order_by("seq")) == list(
        range(1, len(types) + 1)
    )
    assert "lost its lease" in frozen_log


def test_sigterm_lets_a_run_in_flight_finish_within_the_grace_period(owner, tmp_path):
    stopping = worker("--grace", "20")
    run, started, release = hold(owner, tmp_path)
    wait_until(started.exists, timeout=30, what="the run to start")
    stopping.signal(signal.SIGTERM)
    release.write_text("go")
    assert stopping.proc is not None
    stopping.proc.wait(timeout=20)
    log = stopping.stop()
    run = fresh(run)
    assert (run.status, run.attempt) == ("succeeded", 1), log


def test_sigterm_gives_back_a_run_that_outlasts_the_grace_period(owner, tmp_path):
    stopping = worker("--grace", "0.3")
    run, started, release = hold(owner, tmp_path)
    wait_until(started.exists, timeout=30, what="the run to start")
    stopping.signal(signal.SIGTERM)
    assert stopping.proc is not None
    stopping.proc.wait(timeout=15)
    stopping.stop()
    run = fresh(run)
    assert (run.status, run.attempt) == ("queued", 0)  # given back; the attempt does not count
    assert AgentEvent.objects.filter(run=run, event_type="run.retrying").get().payload["reason"] == {
        "code": "worker_shutdown"
    }

    release.write_text("go")
    successor = worker()
    try:
        wait_until(lambda: fresh(run).status == "succeeded", timeout=30, what="a new worker to run it")
    finally:
        successor.stop()
    assert fresh(run).attempt == 1


def test_cancelling_a_running_run_and_one_inside_a_slow_tool_call(owner, tmp_path):
    running, started, _ = hold(owner, tmp_path)
    in_tool_file = tmp_path / "tool.started"
    in_tool, _ = run_create(
        agent_key="slow-tool",
        messages=[{"role": "user", "content": "look it up"}],
        params={"started_file": str(in_tool_file)},
        user=owner,
    )
    process = worker()
    try:
        wait_until(lambda: started.exists() and in_tool_file.exists(), timeout=30, what="both runs to start")
        for run in (running, in_tool):
            asked_at = time.monotonic()
            run_cancel(run=run)
            wait_until(lambda r=run: fresh(r).status == "cancelled", timeout=TTL / 3 + 1, what="the cancel")
            assert time.monotonic() - asked_at <= TTL / 3 + 1
    finally:
        process.stop()
    for run in (running, in_tool):
        types = event_types(run)
        assert types[-1] == "run.cancelled" and "run.succeeded" not in types
    assert "tool.call" in event_types(in_tool) and "tool.result" not in event_types(in_tool)


def test_run_timeout_ends_a_run_as_timed_out(owner, tmp_path):
    run, started, _ = hold(owner, tmp_path)
    process = worker(AGENT_RUN_TIMEOUT_SECONDS="1")
    try:
        wait_until(started.exists, timeout=30, what="the run to start")
        wait_until(lambda: fresh(run).status == "timed_out", timeout=5, what="the timeout")
    finally:
        process.stop()
    run = fresh(run)
    assert run.attempt == 1 and run.error["code"] == "timed_out"
    assert event_types(run)[-1] == "run.timed_out"
