"""A private redis-server per test (so a test may kill and restart it) and in-process workers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
import redis
from django.db import connections

from runtime.engine.worker import Worker
from tests.processes import free_port, wait_until

__all__ = ["BackgroundWorker", "RedisServer", "free_port", "wait_until"]


class RedisServer:
    """A throw-away redis-server with no persistence: a restart loses everything, like a crash."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            missing = "redis-server is not installed (apt-get install -y redis-server)"
            # .ci/run installs it, so in CI a missing server is a failure, never a silent skip
            if os.environ.get("CI"):
                pytest.fail(missing)
            pytest.skip(missing)
        self.process = subprocess.Popen(  # noqa: S603 - fixed arguments
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = self.client()

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        wait_until(answers, timeout=10, what=f"redis-server on port {self.port}")
        client.close()

    def kill(self) -> None:
        """kill -9: in-memory data is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        self.kill()
        self.start()


class BackgroundWorker:
    """A real ``Worker`` loop in a thread, stopped the way SIGTERM stops it."""

    def __init__(self, **options) -> None:
        options.setdefault("poll_interval", 0.1)
        self.worker = Worker(**options)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.ready.set()
        try:
            self.loop.run_until_complete(self.worker.run())
        except BaseException as exc:  # reported by stop()
            self.error = exc
        finally:
            self.loop.close()
            connections.close_all()

    def start(self) -> BackgroundWorker:
        self.thread.start()
        self.ready.wait(5)
        return self

    def stop(self, timeout: float = 30) -> None:
        if self.thread.is_alive() and self.loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already finished
                self.loop.call_soon_threadsafe(self.worker.stop)
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "worker did not stop"
        if self.error is not None:
            raise self.error
