"""Small typed readers for environment variables.

Every setting that comes from the environment goes through one of these, so a
wrong value stops start-up with a message naming the variable and what it accepts.
"""

from __future__ import annotations

import json
import os
from urllib.parse import parse_qs, unquote, urlparse

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name}={raw!r} is not a boolean; use one of 1/0, true/false, yes/no, on/off."
    )


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number.") from None


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number.") from None


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_model_prices(name: str) -> dict[str, dict[str, float]]:
    """``{"model": {"input": 0.5, "output": 1.5, "cached_input": 0.1}}``, dollars per million tokens."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return {}
    example = '{"my-model": {"input": 0.5, "output": 1.5}}'
    try:
        value = json.loads(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} is not valid JSON; write it like {example}.") from None
    if not isinstance(value, dict):
        raise ImproperlyConfigured(f"{name} must be a JSON object like {example}.")
    keys = {"input", "output", "cached_input", "cache_write", "reasoning"}
    for model, entry in value.items():
        if not isinstance(entry, dict) or not {"input", "output"} <= entry.keys() or not entry.keys() <= keys:
            raise ImproperlyConfigured(
                f"{name}: the price of {model!r} needs 'input' and 'output' (dollars per million tokens), "
                f"optionally {', '.join(sorted(keys - {'input', 'output'}))}; like {example}."
            )
        for key, number in entry.items():
            if isinstance(number, bool) or not isinstance(number, int | float) or number < 0:
                raise ImproperlyConfigured(f"{name}: {model!r} {key} must be a number of dollars, 0 or more.")
    return value


def database_from_url(url: str) -> dict:
    """Turn ``postgres://user:pass@host:port/name?opt=..`` into a Django DATABASES entry."""
    parsed = urlparse(url)
    if parsed.scheme not in {"postgres", "postgresql", "pgsql"}:
        raise ImproperlyConfigured(
            f"DATABASE_URL must be a PostgreSQL URL (postgres://user:password@host:5432/name), got scheme {parsed.scheme!r}."
        )
    query = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
    host = query.pop("host", None) or unquote(parsed.hostname or "")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parsed.path.lstrip("/")) or "postgres",
        "USER": unquote(parsed.username or ""),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": host,
        "PORT": str(parsed.port or ""),
        "OPTIONS": query,
        # Seconds a connection is reused; the web process gains most (one connection per request otherwise).
        "CONN_MAX_AGE": env_int("DATABASE_CONN_MAX_AGE", 0),
        "CONN_HEALTH_CHECKS": True,
    }
