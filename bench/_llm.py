"""Shared set-up for the ``llm_*`` benchmarks: Django without a database, percentiles."""

from __future__ import annotations

import os
import statistics


def setup_django() -> None:
    # these benchmarks never touch the database; a placeholder URL keeps settings from
    # starting the embedded server
    os.environ.setdefault("DATABASE_URL", "postgres://bench@127.0.0.1:1/unused")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def ms(value: float) -> str:
    return f"{value * 1000:.2f}"


def summary(name: str, values: list[float], **extra: str) -> dict[str, str]:
    return {
        "measure": name,
        "n": str(len(values)),
        "p50 ms": ms(pct(values, 50)),
        "p99 ms": ms(pct(values, 99)),
        "mean ms": ms(statistics.fmean(values)) if values else "nan",
        **extra,
    }
