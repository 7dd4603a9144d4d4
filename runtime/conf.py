"""The runtime's settings, every one read here and checked at start-up.

``settings.DJANGO_AGENT_RUNTIME`` is checked against a schema: every key of the
original django-agent-runtime's configuration reference is accepted with its
default (:func:`get`). The runtime's own top-level settings (``AGENT_*``, and the
provider base URLs) are in ``SETTINGS`` and read with :func:`setting`. An unknown
key or a value of the wrong type stops start-up (``RuntimeConfig.ready`` calls
:func:`validate` and :func:`validate_settings`) with a message that names the
setting and what it accepts.

Debug mode (``DJANGO_AGENT_RUNTIME_DEBUG=1``, ``SWALLOW_EXCEPTIONS=False`` or
``configure(debug=True)``) makes runtime errors propagate instead of being
retried, registry import errors raise, and completion-hook errors propagate.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULT_EVENT_VISIBILITY: dict[str, str] = {
    "run.started": "internal",
    "run.succeeded": "internal",
    "run.failed": "user",
    "run.cancelled": "user",
    "run.timed_out": "user",
    "run.retrying": "user",
    "run.heartbeat": "internal",
    "tool.call": "debug",
    "tool.result": "debug",
    "assistant.message": "user",
    "assistant.delta": "user",
    "state.checkpoint": "internal",
    "sub_agent.start": "debug",
    "sub_agent.end": "debug",
    "usage": "debug",
    "debug.exception": "debug",
    "error": "user",
}
VISIBILITY_LEVELS = ("internal", "debug", "user")


@dataclass(frozen=True)
class Option:
    type: type | tuple[type, ...]
    default: Any
    choices: tuple[Any, ...] | None = None
    nullable: bool = False


OPTIONS: dict[str, Option] = {
    "QUEUE_BACKEND": Option(str, "postgres", ("postgres", "redis_streams")),
    "EVENT_BUS_BACKEND": Option(str, "db", ("db", "redis")),
    "REDIS_URL": Option(str, None, nullable=True),
    "MODEL_PROVIDER": Option(str, "openai", ("openai", "anthropic", "litellm", "demo")),
    "DEFAULT_MODEL": Option(str, "gpt-4o"),
    "LEASE_TTL_SECONDS": Option(int, 30),
    "RUN_TIMEOUT_SECONDS": Option(int, 900),
    "MAX_RETRIES": Option(int, 3),
    "RUNTIME_REGISTRY": Option(list, []),
    "ANONYMOUS_SESSION_MODEL": Option(str, None, nullable=True),
    "EVENT_VISIBILITY": Option(dict, DEFAULT_EVENT_VISIBILITY),
    "DEBUG_MODE": Option(bool, False),
    "SWALLOW_EXCEPTIONS": Option(bool, True),
    "LANGFUSE_ENABLED": Option(bool, False),
}

_overrides: dict[str, bool] = {}


def _raw() -> dict[str, Any]:
    value = getattr(settings, "DJANGO_AGENT_RUNTIME", {}) or {}
    if not isinstance(value, dict):
        raise ImproperlyConfigured("DJANGO_AGENT_RUNTIME must be a dict of settings.")
    return value


def validate(raw: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return the full configuration, or raise ImproperlyConfigured naming the bad key."""
    raw = _raw() if raw is None else raw
    unknown = sorted(set(raw) - set(OPTIONS))
    if unknown:
        raise ImproperlyConfigured(
            f"DJANGO_AGENT_RUNTIME has unknown key(s) {', '.join(unknown)}; accepted keys are "
            f"{', '.join(sorted(OPTIONS))}."
        )
    config: dict[str, Any] = {}
    for key, option in OPTIONS.items():
        value = raw.get(key, option.default)
        if value is None and option.nullable:
            config[key] = None
            continue
        # bool is an int subclass; refuse True where a number is expected
        if not isinstance(value, option.type) or (option.type is int and isinstance(value, bool)):
            expected = option.type.__name__ if isinstance(option.type, type) else str(option.type)
            raise ImproperlyConfigured(
                f"DJANGO_AGENT_RUNTIME[{key!r}] must be a {expected}, got {type(value).__name__} {value!r}."
            )
        if option.choices and value not in option.choices:
            raise ImproperlyConfigured(
                f"DJANGO_AGENT_RUNTIME[{key!r}]={value!r} is not accepted; use one of "
                f"{', '.join(repr(c) for c in option.choices)}."
            )
        if option.type is int and value < (1 if key != "MAX_RETRIES" else 0):
            raise ImproperlyConfigured(f"DJANGO_AGENT_RUNTIME[{key!r}] must be positive, got {value}.")
        config[key] = value
    for entry in config["RUNTIME_REGISTRY"]:
        if not isinstance(entry, str) or not entry.strip():
            raise ImproperlyConfigured(
                "DJANGO_AGENT_RUNTIME['RUNTIME_REGISTRY'] entries must be strings like 'myapp.agents:register_agents'."
            )
    visibility = {**DEFAULT_EVENT_VISIBILITY, **config["EVENT_VISIBILITY"]}
    for event_type, level in visibility.items():
        if level not in VISIBILITY_LEVELS:
            raise ImproperlyConfigured(
                f"DJANGO_AGENT_RUNTIME['EVENT_VISIBILITY'][{event_type!r}]={level!r}; use one of "
                f"{', '.join(VISIBILITY_LEVELS)}."
            )
    config["EVENT_VISIBILITY"] = visibility
    if (config["QUEUE_BACKEND"] == "redis_streams" or config["EVENT_BUS_BACKEND"] == "redis") and not config[
        "REDIS_URL"
    ]:
        raise ImproperlyConfigured(
            "DJANGO_AGENT_RUNTIME['REDIS_URL'] must be set (or the REDIS_URL environment variable) to use the "
            "redis_streams queue or the redis event bus."
        )
    return config


_cache: tuple[Any, dict[str, Any]] | None = None


def runtime_settings() -> dict[str, Any]:
    """The validated configuration, re-checked whenever the settings object changes."""
    global _cache
    raw = _raw()
    if _cache is None or _cache[0] is not raw:
        _cache = (raw, validate(raw))
    return _cache[1]


def get(key: str) -> Any:
    return runtime_settings()[key]


def configure(*, debug: bool | None = None, swallow_exceptions: bool | None = None) -> None:
    """Switch debug mode in code: ``configure(debug=True)``.

    Debug mode implies not swallowing exceptions unless ``swallow_exceptions`` says otherwise.
    """
    if debug is not None:
        _overrides["debug"] = debug
        if swallow_exceptions is None:
            _overrides["swallow_exceptions"] = not debug
    if swallow_exceptions is not None:
        _overrides["swallow_exceptions"] = swallow_exceptions


def reset() -> None:
    """Forget ``configure()`` overrides (tests)."""
    _overrides.clear()


def _env_debug() -> bool | None:
    raw = os.environ.get("DJANGO_AGENT_RUNTIME_DEBUG")
    if raw is None or raw == "":
        return None
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def is_debug() -> bool:
    if "debug" in _overrides:
        return _overrides["debug"]
    env = _env_debug()
    if env is not None:
        return env
    return not _raw().get("SWALLOW_EXCEPTIONS", True)


def should_swallow_exceptions() -> bool:
    if "swallow_exceptions" in _overrides:
        return _overrides["swallow_exceptions"]
    env = _env_debug()
    if env is not None:
        return not env
    return bool(_raw().get("SWALLOW_EXCEPTIONS", True))


def visibility_of(event_type: str) -> str:
    return runtime_settings()["EVENT_VISIBILITY"].get(event_type, "user")


# --- top-level settings -----------------------------------------------------------------------
@dataclass(frozen=True)
class Setting:
    """A top-level setting: its type (values are converted to it), default and smallest value."""

    type: type
    default: Any
    minimum: float | None = None
    positive: bool = False  # numbers: strictly above ``minimum``


SETTINGS: dict[str, Setting] = {
    # seconds between keep-alive comments on a quiet event stream
    "AGENT_SSE_KEEPALIVE_SECONDS": Setting(float, 15.0, 0, positive=True),
    # an API token or anonymous session seen this recently is not looked up again (0: always)
    "AGENT_API_AUTH_CACHE_SECONDS": Setting(float, 5.0, 0),
    # threads (so database connections) of the web process for /api/ (None: the environment, else 8)
    "AGENT_API_THREADS": Setting(int, None, 1),
    # first retry delay of a failed run, doubled per attempt, with jitter
    "AGENT_RETRY_BACKOFF_BASE": Setting(float, 1.0, 0),
    # how deep agents may call agents
    "AGENT_MAX_DEPTH": Setting(int, 5, 1),
    # LLM providers: longest wait for a read, retries before any text streamed, backoff
    "AGENT_LLM_TIMEOUT": Setting(float, 60.0, 0, positive=True),
    "AGENT_LLM_MAX_RETRIES": Setting(int, 3, 0),
    "AGENT_LLM_RETRY_BASE_DELAY": Setting(float, 0.5, 0),
    "AGENT_LLM_RETRY_MAX_WAIT": Setting(float, 30.0, 0),
    # extra model ids to offer (``litellm:ollama/llama3``) and the operator's prices
    "AGENT_LLM_MODELS": Setting(list, ()),
    "AGENT_MODEL_PRICES": Setting(dict, {}),
    # prices entered on the settings page are read again after this long (0: on every lookup)
    "AGENT_MODEL_PRICES_CACHE_SECONDS": Setting(float, 5.0, 0),
    # hosts or CIDRs HTTP tools may reach although they are not global addresses
    "AGENT_HTTP_ALLOWED_HOSTS": Setting(list, ()),
    # Fernet keys for secrets at rest, newest first (empty: derived from SECRET_KEY)
    "AGENT_SECRET_KEYS": Setting(list, ()),
    # channels (runtime/channels/): a widget visitor token's life, how many one address may mint,
    # and the least a run reserves of its agent's daily budget until its cost is known (dollars,
    # tokens)
    "WIDGET_VISITOR_TOKEN_TTL_SECONDS": Setting(int, 3600, 60),
    "WIDGET_SESSION_MINT_RATE": Setting(str, "30/min"),
    "AGENT_BUDGET_MIN_RESERVE_USD": Setting(str, "0.01"),
    "AGENT_BUDGET_MIN_RESERVE_TOKENS": Setting(int, 1000, 1),
    # files attached to a chat message (runtime/attachments.py): how many, how large each, how
    # much extracted text in all (it becomes part of the message), seconds to read them all
    "AGENT_ATTACHMENT_MAX_FILES": Setting(int, 5, 1),
    "AGENT_ATTACHMENT_MAX_BYTES": Setting(int, 10 * 1024 * 1024, 1),
    "AGENT_ATTACHMENT_MAX_CHARS": Setting(int, 100_000, 1),
    "AGENT_ATTACHMENT_TIMEOUT": Setting(float, 30.0, 0, positive=True),
    "ANTHROPIC_BASE_URL": Setting(str, ""),
    "LITELLM_API_BASE": Setting(str, ""),
    "LITELLM_API_KEY": Setting(str, ""),
}


def setting(name: str) -> Any:
    """The value of the top-level setting ``name`` (``SETTINGS``), converted to its type.

    Unset (or None, or an empty list or dict) gives the default; lists and dicts come back
    as fresh copies.
    """
    spec = SETTINGS[name]
    raw = getattr(settings, name, None)
    if raw is None or (spec.type in (list, dict) and not raw):
        return spec.type(spec.default) if spec.type in (list, dict) else spec.default
    if spec.type is str:
        return str(raw)
    return spec.type(raw)


def validate_settings() -> None:
    """Raise ImproperlyConfigured naming the first top-level setting that cannot be used."""
    for name, spec in SETTINGS.items():
        raw = getattr(settings, name, None)
        try:
            if spec.type in (list, dict) and raw and not isinstance(raw, list | tuple | dict):
                raise TypeError
            if spec.type in (int, float) and isinstance(raw, bool):
                raise TypeError
            value = setting(name)
        except (TypeError, ValueError):
            what = {float: "a number", int: "a whole number", list: "a list", dict: "a dict", str: "text"}
            raise ImproperlyConfigured(f"{name} must be {what[spec.type]}, got {raw!r}.") from None
        if spec.minimum is None or value is None:
            continue
        if value < spec.minimum or (spec.positive and value <= spec.minimum):
            bound = "above" if spec.positive else "at least"
            raise ImproperlyConfigured(f"{name} must be {bound} {spec.minimum:g}, got {raw!r}.")


def sse_keepalive_seconds() -> float:
    return setting("AGENT_SSE_KEEPALIVE_SECONDS")
