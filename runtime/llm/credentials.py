"""Provider keys: the environment first, then the ones an operator entered in the UI.

``credential("OPENAI_API_KEY")`` is the setting when it is set (environment variables win),
otherwise the value stored encrypted in :class:`runtime.models.ProviderCredential`. Stored
values are read at most every :data:`TTL` seconds per process, so a key entered on the settings
page reaches the model picker and the workers without a restart; :func:`forget` drops the copy
at once (the page calls it after a save). Reads from async code go through one helper thread,
since the ORM is sync-only.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import close_old_connections, transaction

logger = logging.getLogger(__name__)

NAMES = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY")
TTL = 5.0

_lock = threading.Lock()
_cache: dict[str, object] = {"at": float("-inf"), "values": {}}
_reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="credentials")


def _load(own_thread: bool = False) -> dict[str, str]:
    from runtime.models import ProviderCredential  # app loading: keeps runtime.llm importable before setup

    try:
        if own_thread:  # the helper thread's connection lives on between reads
            close_old_connections()
        return {c.name: str(c.value or "") for c in ProviderCredential.objects.all()}
    except Exception:  # no table yet, the database away, or no database here: environment only
        logger.debug("stored provider credentials cannot be read", exc_info=True)
        return {}


def stored() -> dict[str, str]:
    with _lock:
        if time.monotonic() - _cache["at"] < TTL:  # type: ignore[operator]
            return dict(_cache["values"])  # type: ignore[arg-type]
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        values = _load()
    else:
        values = _reader.submit(_load, True).result(timeout=10)
    with _lock:
        _cache.update(at=time.monotonic(), values=values)
    return dict(values)


def forget() -> None:
    with _lock:
        _cache["at"] = float("-inf")


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
