"""``manage.py dev`` (what ``make dev`` runs): everything a developer needs, in one terminal.

Steps: migrate; create a staff login the first time and print it once; start
the ASGI server (uvicorn) and one ``runagent`` worker; print the URL; on Ctrl-C
stop both, and the embedded PostgreSQL if this command started it.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from config import embedded_pg


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


class Command(BaseCommand):
    help = "Migrate, create a staff login, run the web server and a worker (development)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--no-worker", action="store_true", help="do not start a runagent worker")

    def handle(self, *args, host: str, port: int, no_worker: bool, **options) -> None:
        if not _port_free(host, port):
            raise CommandError(
                f"Port {port} on {host} is already in use. Stop the program using it, or run "
                f"`PORT={port + 1} make dev`."
            )
        self.stdout.write("Applying migrations...")
        call_command("migrate", interactive=False, verbosity=0)
        self._ensure_login()

        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "config.settings.dev"),
        }
        children: list[subprocess.Popen] = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "config.asgi:application",
                    "--host",
                    host,
                    "--port",
                    str(port),
                    "--log-level",
                    "warning",
                ],
                env=env,
            )
        ]
        if not no_worker:
            children.append(
                subprocess.Popen([sys.executable, "manage.py", "runagent", "--noreload"], env=env)
            )
        url = f"http://{host}:{port}/"
        self.stdout.write(self.style.SUCCESS(f"\nAgent Builder is running at {url}  (admin: {url}admin/)"))
        self.stdout.write("Press Ctrl-C to stop the web server, the worker and the embedded database.\n")

        stopping = False

        def stop(*_args) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping:
                for child in children:
                    if child.poll() is not None:
                        self.stderr.write(f"A child process exited with code {child.returncode}; stopping.")
                        stopping = True
                time.sleep(0.2)
        finally:
            self._stop(children)

    def _ensure_login(self) -> None:
        User = get_user_model()
        if User.objects.filter(is_staff=True, is_active=True).exists():
            names = ", ".join(
                User.objects.filter(is_staff=True, is_active=True).values_list("username", flat=True)[:3]
            )
            self.stdout.write(
                f"Staff login(s): {names}. The password was printed when it was created; "
                "reset it with `.venv/bin/python manage.py changepassword <name>`."
            )
            return
        password = staff_password()
        User.objects.create_superuser("admin", "admin@example.com", password)
        self.stdout.write(
            self.style.SUCCESS(f"Created a staff login — username: admin  password: {password}")
        )
        self.stdout.write("(It is shown only this once; change it after signing in.)")

    def _stop(self, children: list[subprocess.Popen]) -> None:
        self.stdout.write("\nStopping...")
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 35
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()

        if embedded_pg.started_here:
            embedded_pg.stop()
            self.stdout.write("Stopped the embedded PostgreSQL.")
        self.stdout.write("Stopped.")


def staff_password() -> str:
    """A random password that AUTH_PASSWORD_VALIDATORS accept (16 URL-safe characters)."""
    while True:
        password = secrets.token_urlsafe(12)
        try:
            validate_password(password)
        except ValidationError:  # e.g. all digits, astronomically rarely
            continue
        return password
