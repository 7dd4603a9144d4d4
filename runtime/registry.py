"""Where agent runtimes are found by key.

Code agents are registered with :func:`register_runtime` (usually from a
function listed in ``RUNTIME_REGISTRY``). Database-defined agents come from
resolvers (the builder registers one): a resolver is asked for a key, and for
the exact version a run pins, every time a run starts, so no process serves a
stale definition. A resolver registered with ``exists=`` answers "is there an
agent with this key?" without building one (run creation asks that on every run).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from django.core.exceptions import ImproperlyConfigured

from runtime import conf

if TYPE_CHECKING:
    from runtime.interfaces import AgentRuntime
    from runtime.models import AgentRun

logger = logging.getLogger(__name__)

# resolver(agent_key, run) -> AgentRuntime | None ; run is None for existence checks
Resolver = Callable[[str, "AgentRun | None"], "AgentRuntime | None"]

_runtimes: dict[str, AgentRuntime] = {}
_resolvers: list[Resolver] = []
# resolver -> its cheap existence check (agent_key -> bool), for resolvers registered with one
_exists: dict[Resolver, Callable[[str], bool]] = {}
_discovered = False


class UnknownAgent(LookupError):
    def __init__(self, agent_key: str) -> None:
        super().__init__(f"No agent is registered with the key {agent_key!r}.")
        self.agent_key = agent_key


def register_runtime(runtime: AgentRuntime) -> AgentRuntime:
    """Register a code agent under its ``key``; a later registration of the same key replaces it."""
    key = runtime.key
    if not isinstance(key, str) or not key:
        raise ValueError("An agent runtime needs a non-empty string key.")
    _runtimes[key] = runtime
    return runtime


def unregister_runtime(key: str) -> None:
    _runtimes.pop(key, None)


def register_resolver(resolver: Resolver, *, exists: Callable[[str], bool] | None = None) -> Resolver:
    """Ask ``resolver`` for keys no code agent has; ``exists(agent_key)``, if given, must answer
    exactly when ``resolver(agent_key, None)`` would return a runtime, without building it."""
    if resolver not in _resolvers:
        _resolvers.append(resolver)
    if exists is not None:
        _exists[resolver] = exists
    return resolver


def get_runtime(agent_key: str, run: AgentRun | None = None) -> AgentRuntime:
    """The runtime for ``agent_key``; code agents first, then resolvers (fresh each call)."""
    runtime = _runtimes.get(agent_key)
    if runtime is not None:
        return runtime
    for resolver in _resolvers:
        runtime = resolver(agent_key, run)
        if runtime is not None:
            _record_pin(run, getattr(runtime, "pin", ""))
            return runtime
    raise UnknownAgent(agent_key)


def _record_pin(run: AgentRun | None, pin: str) -> None:
    """A resolver says which definition it built (``runtime.pin``); an unpinned run records it, so
    a retry runs the same definition and the history says which. The runtime writes its own row."""
    if run is None or run.agent_version or not pin:
        return
    # app loading: the registry is the public entry point that agents' modules and apps modules
    # import, so it stays importable before the models are ready
    from runtime.models import AgentRun

    AgentRun.objects.filter(pk=run.pk, agent_version="").update(agent_version=pin)
    run.agent_version = pin


def agent_exists(agent_key: str) -> bool:
    """Is there an agent with this key? Builds none where its resolver has an existence check."""
    if agent_key in _runtimes:
        return True
    for resolver in _resolvers:
        exists = _exists.get(resolver)
        if exists(agent_key) if exists is not None else resolver(agent_key, None) is not None:
            return True
    return False


def is_code_agent(agent_key: str) -> bool:
    """True for an agent registered in code (resolving it needs no database)."""
    return agent_key in _runtimes


def list_runtimes() -> dict[str, AgentRuntime]:
    return dict(_runtimes)


def _load_entry(entry: str) -> Callable[[], object]:
    """Import ``module:function`` or ``module.function``."""
    if ":" in entry:
        module_path, _, attr = entry.partition(":")
    else:
        module_path, _, attr = entry.rpartition(".")
    if not module_path or not attr:
        raise ImproperlyConfigured(
            f"RUNTIME_REGISTRY entry {entry!r} must look like 'myapp.agents:register_agents' or "
            "'myapp.agents.register_agents'."
        )
    module = importlib.import_module(module_path)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ImproperlyConfigured(
            f"RUNTIME_REGISTRY entry {entry!r}: {module_path} has no {attr!r}."
        ) from None


def autodiscover(force: bool = False) -> None:
    """Call every ``RUNTIME_REGISTRY`` function once per process.

    In debug mode an entry that fails to import raises; otherwise it is logged
    and the other entries still load.
    """
    global _discovered
    if _discovered and not force:
        return
    _discovered = True
    for entry in conf.get("RUNTIME_REGISTRY"):
        try:
            _load_entry(entry)()
        except Exception:
            if not conf.should_swallow_exceptions():
                raise
            logger.exception("Could not load RUNTIME_REGISTRY entry %s", entry)
