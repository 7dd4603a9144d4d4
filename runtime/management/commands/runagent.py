"""``manage.py runagent``: start agent workers."""

from __future__ import annotations

import multiprocessing
import os
import signal

import django
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import autoreload


def _child(options: dict) -> None:
    django.setup()
    # app loading: a spawned child imports this module before django.setup() (the worker imports models)
    from runtime.engine.worker import run_worker

    run_worker(**options)


class Command(BaseCommand):
    help = "Run agent workers: claim queued runs and execute them."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--processes", type=int, default=1, help="worker processes (default 1)")
        parser.add_argument(
            "--concurrency", type=int, default=10, help="concurrent runs per process (default 10)"
        )
        parser.add_argument(
            "--agent-keys", default="", help="comma-separated agent keys to serve (default: all)"
        )
        parser.add_argument("--queue-poll-interval", type=float, default=1.0, help="seconds between polls")
        parser.add_argument("--grace", type=float, default=30.0, help="seconds to finish runs on SIGTERM")
        parser.add_argument(
            "--noreload", action="store_true", help="do not restart when code changes (DEBUG)"
        )
        parser.add_argument("--once", action="store_true", help="process the due runs, then exit")

    def handle(self, *args, **opts) -> None:
        if opts["processes"] < 1 or opts["concurrency"] < 1:
            raise CommandError("--processes and --concurrency must be at least 1.")
        if opts["queue_poll_interval"] <= 0:
            raise CommandError("--queue-poll-interval must be a positive number of seconds.")
        options = {
            "concurrency": opts["concurrency"],
            "agent_keys": [k.strip() for k in opts["agent_keys"].split(",") if k.strip()],
            "poll_interval": opts["queue_poll_interval"],
            "once": opts["once"],
            "grace": opts["grace"],
        }
        processes = opts["processes"]
        reload = settings.DEBUG and processes == 1 and not opts["noreload"] and not opts["once"]
        if reload:
            self.stdout.write("Auto-reload is on (DEBUG); use --noreload to turn it off.")
            autoreload.run_with_reloader(self._single, options)
        elif processes == 1:
            self._single(options)
        else:
            self._multi(processes, options)

    def _single(self, options: dict) -> None:
        from runtime.engine.worker import run_worker  # app loading: see _child

        run_worker(**options)

    def _multi(self, processes: int, options: dict) -> None:
        ctx = multiprocessing.get_context("spawn")
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings.SETTINGS_MODULE)
        children = [ctx.Process(target=_child, args=(options,), daemon=False) for _ in range(processes)]
        for child in children:
            child.start()

        def forward(signum, _frame) -> None:
            for child in children:
                if child.is_alive() and child.pid:
                    os.kill(child.pid, signum)

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        for child in children:
            child.join()
