"""``runagent`` with DEBUG on restarts itself when code changes (Django's autoreloader).

A real worker (reloading on, as a developer runs it) serves an agent from a module in a temporary
directory; the test edits that module and checks the next run gets the new answer without anyone
restarting the worker by hand.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from runtime.interfaces import AgentRuntime, RunContext, RunResult
from runtime.models import AgentRun
from runtime.registry import register_runtime, unregister_runtime
from runtime.services import run_create
from tests.processes import ROOT, process_env, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

KEY = "reload-probe"

AGENT_MODULE = """
from runtime.interfaces import AgentRuntime, RunResult
from runtime.registry import register_runtime

ANSWER = "{answer}"


class ReloadProbe(AgentRuntime):
    key = "{key}"

    async def run(self, ctx):
        return RunResult(
            final_output={{"response": ANSWER}},
            final_messages=[{{"role": "assistant", "content": ANSWER}}],
        )


def register_agents():
    register_runtime(ReloadProbe())
"""

# The test settings with DEBUG on (as in development). The autoreloader's debug log says when it
# has first seen a file: only an edit after that point can be noticed as a change.
SETTINGS_MODULE = """
from config.settings.test import *  # noqa: F403

DEBUG = True
LOGGING["loggers"]["django.utils.autoreload"] = {"level": "DEBUG"}  # noqa: F405
"""

READY = re.compile(r"worker \S+:(\d+) ready:")


class StandIn(AgentRuntime):
    """Lets ``run_create`` in this process accept the key; the worker runs the module's agent."""

    key = KEY

    async def run(self, ctx: RunContext) -> RunResult:
        raise AssertionError("runs of this agent belong to the worker")


@pytest.fixture
def stand_in():
    register_runtime(StandIn())
    yield
    unregister_runtime(KEY)


class ReloadingWorker:
    """``manage.py runagent`` without ``--noreload``; its output is read as it comes."""

    def __init__(self, **env: str) -> None:
        self.env = process_env(**env)
        self.lines: list[str] = []
        self.proc: subprocess.Popen | None = None

    def start(self) -> ReloadingWorker:
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "runagent", "--queue-poll-interval", "0.2"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        # Drained all along: the reloader's debug log would otherwise fill the pipe and block it.
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def ready_pids(self) -> list[int]:
        """The pid of each worker process that said it was ready, in order."""
        return [int(m.group(1)) for line in list(self.lines) if (m := READY.search(line))]

    def count(self, text: str) -> int:
        return sum(text in line for line in list(self.lines))

    def log(self) -> str:
        """What was logged, without the reloader's per-file lines."""
        return "\n".join(line for line in list(self.lines) if "first seen with mtime" not in line)

    def stop(self) -> None:
        """SIGTERM the reloader by pid (it kills its child), then make sure every child is gone."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for pid in self.ready_pids():
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.reader.join(timeout=5)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def answer(run: AgentRun, worker: ReloadingWorker) -> str:
    def done() -> AgentRun | None:
        fresh = AgentRun.objects.get(pk=run.pk)
        return fresh if fresh.status in {"succeeded", "failed", "cancelled"} else None

    fresh = wait_until(done, timeout=45, what=f"run {run.pk} to end")
    assert fresh.status == "succeeded", worker.log()
    return fresh.output["final_output"]["response"]


def write_agent(path: Path, answer_text: str) -> None:
    before = path.stat().st_mtime if path.exists() else None
    path.write_text(AGENT_MODULE.format(answer=answer_text, key=KEY))
    if before is not None:
        # "v1" and "v2" are the same size: an edit within the same second as the last one would
        # look unchanged to the reloader (mtime) and to the child's cached bytecode (whole
        # seconds + size). An editor saving by hand is seconds apart; say so explicitly.
        later = max(path.stat().st_mtime, before + 2)
        os.utime(path, (later, later))


def test_editing_an_agent_restarts_the_worker_and_the_next_run_uses_the_new_code(owner, tmp_path, stand_in):
    module = tmp_path / "reload_probe_agent.py"
    write_agent(module, "v1")
    (tmp_path / "reload_probe_settings.py").write_text(SETTINGS_MODULE)
    worker = ReloadingWorker(
        DJANGO_SETTINGS_MODULE="reload_probe_settings",
        PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]),
        AGENT_RUNTIME_REGISTRY="reload_probe_agent:register_agents",
    ).start()
    watched = f"File {module.resolve()} first seen with mtime"
    try:
        wait_until(
            lambda: worker.ready_pids() and worker.count(watched) >= 1,
            timeout=60,  # a worker starting on a loaded 2-core machine took longer than 20 s in CI
            what="the worker to be ready and its reloader to watch the agent module",
        )
        [first] = worker.ready_pids()
        assert "Auto-reload is on" in worker.log()

        run, _ = run_create(agent_key=KEY, messages=[{"role": "user", "content": "which?"}], user=owner)
        assert answer(run, worker) == "v1"

        write_agent(module, "v2")
        wait_until(
            lambda: len(worker.ready_pids()) >= 2,
            timeout=45,
            what="the worker to restart after the edit",
        )
        second = worker.ready_pids()[1]

        again, _ = run_create(agent_key=KEY, messages=[{"role": "user", "content": "which?"}], user=owner)
        assert answer(again, worker) == "v2"
        # ...and the new process watches the module afresh, so the next edit reloads it too.
        wait_until(lambda: worker.count(watched) >= 2, timeout=30, what="the new reloader to watch")
    finally:
        worker.stop()
    log = worker.log()
    assert second != first and not _alive(first) and not _alive(second), log
    assert f"{module.resolve()} changed, reloading." in log
