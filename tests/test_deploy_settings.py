"""Production settings pass Django's deployment checklist, and HTTPS is enforced."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What a production deploy sets (docs/configuration.md, docs/production.md); nothing else.
PROD_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.prod",
    "SECRET_KEY": "k3y-" + "a1b2c3d4e5f6g7h8i9j0" * 3,
    "ALLOWED_HOSTS": "agents.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://agents.example.com",
}


def _database_url() -> str:
    # A reachable PostgreSQL, as a deploy has: Django's model checks ask the server for its features.
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    from config.embedded_pg import database_url

    return database_url()


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECURE_HSTS_SECONDS"}}
    environment["DATABASE_URL"] = _database_url()
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**environment, **PROD_ENV, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_with_prod_settings_has_no_warnings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_prod_turns_on_https_redirect_and_hsts():
    code = (
        "from django.conf import settings as s; "
        "print(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, "
        "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE)"
    )
    result = _manage("shell", "--no-imports", "-c", code)
    assert result.stdout.split() == ["True", "31536000", "True", "True", "True"], result.stderr
    # ...and each stays configurable
    relaxed = _manage("shell", "--no-imports", "-c", code, SECURE_SSL_REDIRECT="0", SECURE_HSTS_SECONDS="0")
    assert relaxed.stdout.split()[:2] == ["False", "0"], relaxed.stderr
