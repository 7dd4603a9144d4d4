"""``manage.py rotate_secrets``: re-encrypt stored secrets with the first key of AGENT_SECRET_KEYS."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from runtime.fields import rotate_all_encrypted_fields


class Command(BaseCommand):
    help = "Re-encrypt every stored secret with the newest key (put the new key first in AGENT_SECRET_KEYS)."

    def handle(self, *args, **options) -> None:
        counts = rotate_all_encrypted_fields()
        for label, count in counts.items():
            self.stdout.write(f"{label}: {count} row(s) re-encrypted")
        self.stdout.write(
            self.style.SUCCESS("Done. Old keys can be removed once every process uses the new list.")
        )
