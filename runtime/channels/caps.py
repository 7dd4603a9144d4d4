"""Caps per run set on a channel: the most steps, tokens and seconds one run may take.

Two channels set them: an agent's web widget (``WidgetChannel``, its Publish page) and its API
keys (``AgentBudget``, its API keys page). Both use the same bounds and messages
(:func:`run_caps_clean`) and put the caps in the run's ``metadata["run_caps"]``
(:func:`caps_apply`), which the runtime reads (``runtime.interfaces.run_caps``). A cap can
only tighten the agent's and the server's own limits; blank is no cap of the channel's own.
"""

from __future__ import annotations

from typing import Any

CAPS_KEY = "run_caps"

# Caps per run: (lowest, highest, what to write). Blank means the agent's and server's own caps.
RUN_CAPS = {
    "max_steps_per_run": (1, 50, "a whole number of steps from 1 to 50"),
    "max_tokens_per_run": (100, 1_000_000, "a whole number of tokens from 100 to 1,000,000"),
    "max_seconds_per_run": (5, 3600, "a whole number of seconds from 5 to 3,600"),
}


def whole_number(value: Any) -> int | None:
    """A whole number from a form or JSON value, or None (``True`` is not a number here)."""
    if isinstance(value, bool):
        return None
    try:
        return int(str(value).strip().replace(",", "")) if not isinstance(value, int) else value
    except ValueError:
        return None


def run_caps_clean(data: dict[str, Any], *, whose: str) -> tuple[dict[str, int | None], dict[str, list[str]]]:
    """The caps in ``data`` (only the keys of ``RUN_CAPS`` present), cleaned, and errors per
    field. Blank or None is no cap of ``whose`` own (None)."""
    cleaned: dict[str, int | None] = {}
    errors: dict[str, list[str]] = {}
    for name, (low, high, what) in RUN_CAPS.items():
        if name not in data:
            continue
        value = data[name]
        if value is None or (isinstance(value, str) and not value.strip()):
            cleaned[name] = None
            continue
        number = whole_number(value)
        if number is None or not low <= number <= high:
            errors[name] = [f"Use {what}, or leave it blank for no cap of {whose} own."]
        else:
            cleaned[name] = number
    return cleaned, errors


def run_caps(source: Any) -> dict[str, int]:
    """The caps a channel's settings row sets (``max_*_per_run``), by the names runs use."""
    if source is None:
        return {}
    caps = {
        "steps": source.max_steps_per_run,
        "tokens": source.max_tokens_per_run,
        "seconds": source.max_seconds_per_run,
    }
    return {name: value for name, value in caps.items() if value}


def caps_apply(metadata: dict[str, Any], source: Any) -> None:
    """Put ``source``'s caps in a new run's metadata, over anything the caller sent there."""
    caps = run_caps(source)
    if caps:
        metadata[CAPS_KEY] = caps
    else:
        metadata.pop(CAPS_KEY, None)
