"""Provider keys: the environment first, then the ones an operator entered in the UI.

``credential("OPENAI_API_KEY")`` is the setting when it is set (environment variables win),
otherwise the value stored encrypted in :class:`runtime.models.ProviderCredential`. Stored
values are read at most every :data:`TTL` seconds per process, so a key entered on the settings
page reaches the model picker and the workers without a restart; :func:`forget` drops the copy
at once (the page calls it after a save). (runtime/llm/stored_table.py).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction

from runtime.llm.stored_table import StoredTable

logger = logging.getLogger(__name__)

NAMES = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY")
TTL = 5.0


def _load() -> dict[str, str]:
    from runtime.models import ProviderCredential  # app loading: keeps runtime.llm importable before setup

    return {c.name: str(c.value or "") for c in ProviderCredential.objects.all()}


_table = StoredTable("credentials", _load, lambda: TTL)
stored = _table.get
forget = _table.forget


def credential(name: str) -> str:
    return getattr(settings, name, "") or stored().get(name, "")


def from_environment(name: str) -> bool:
    return bool(getattr(settings, name, ""))


@transaction.atomic
def credentials_save(*, values: dict[str, str | None]) -> None:
    """Store (a string) or delete (None) each named value; names outside :data:`NAMES` are refused."""
    from runtime.models import ProviderCredential  # app loading: keeps runtime.llm importable before setup

    for name, value in values.items():
        if name not in NAMES:
            raise ValueError(f"{name} is not a provider setting")
        if value is None:
            ProviderCredential.objects.filter(name=name).delete()
        else:
            ProviderCredential.objects.update_or_create(name=name, defaults={"value": value})
    forget()  # this process reads its own write at once,
    transaction.on_commit(forget)  # and again once it is visible to every connection
