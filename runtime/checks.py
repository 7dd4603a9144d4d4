"""System checks: what the runtime needs from the host project, said at start-up.

Not tagged ``database``: those run only for migrate and ``check --database``, and the
worker (``runagent``) and the web server must refuse to start too. Nothing here connects.
"""

from __future__ import annotations

from django.core import checks
from django.db import DEFAULT_DB_ALIAS, connections


@checks.register()
def postgresql_required(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """The queue, leases and event streams are PostgreSQL statements (SKIP LOCKED, LISTEN/NOTIFY)."""
    vendor = connections[DEFAULT_DB_ALIAS].vendor
    if vendor == "postgresql":
        return []
    return [
        checks.Error(
            f"The agent runtime needs PostgreSQL; DATABASES['default'] uses {vendor}.",
            hint=(
                "Set DATABASES['default']['ENGINE'] to 'django.db.backends.postgresql' (with the pgvector "
                "extension available) and point it at a PostgreSQL server. Runs are queued, leased and "
                "streamed with PostgreSQL statements (FOR UPDATE SKIP LOCKED, LISTEN/NOTIFY), so workers "
                "cannot run on another database."
            ),
            id="runtime.E001",
        )
    ]
