"""A host project on SQLite (test_checks.py): the runtime must refuse to start."""

from config.settings.base import *  # noqa: F403

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
