"""What changed between two versions of an agent (or the draft and the live version), field by field.

The prompt is compared word by word; the model and settings as before/after; tools and
sub-agents as added/removed. The result is plain data for the template.
"""

from __future__ import annotations

import difflib
import json
import re
from typing import Any

LIST_FIELDS = {"http_tools": "HTTP tools", "python_tools": "Python tools", "sub_agents": "Sub-agents"}
VALUE_FIELDS = {
    "name": "Name",
    "description": "Description",
    "model": "Model",
    "temperature": "Temperature",
    "max_tokens": "Max tokens per reply",
    "memory": "Shared memory",
}
_WORDS = re.compile(r"\s+|[^\s]+")


def word_diff(old: str, new: str) -> list[tuple[str, str]]:
    """(kind, text) runs: ``same``, ``del`` or ``add``; whitespace is kept, so lines survive."""
    a, b = _WORDS.findall(old or ""), _WORDS.findall(new or "")
    runs: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            runs.append(("same", "".join(a[i1:i2])))
            continue
        if i2 > i1:
            runs.append(("del", "".join(a[i1:i2])))
        if j2 > j1:
            runs.append(("add", "".join(b[j1:j2])))
    return _merge(runs)


def _merge(runs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Fold a space between two changes into them: "-You help. +Changed prompt." reads as one
    replacement, not four fragments."""
    merged: list[tuple[str, str]] = []
    i = 0
    while i < len(runs):
        kind, text = runs[i]
        if kind != "same":
            removed, added = [], []
            while i < len(runs):
                kind, text = runs[i]
                if kind == "del":
                    removed.append(text)
                elif kind == "add":
                    added.append(text)
                elif text.isspace() and i + 1 < len(runs) and runs[i + 1][0] != "same":
                    removed.append(text)
                    added.append(text)
                else:
                    break
                i += 1
            if removed and "".join(removed).strip():
                merged.append(("del", "".join(removed)))
            if added and "".join(added).strip():
                merged.append(("add", "".join(added)))
            continue
        merged.append((kind, text))
        i += 1
    return merged


def _shown(value: Any) -> str:
    if value in (None, "", [], {}):
        return "(not set)"
    if isinstance(value, dict) and set(value) <= {"enabled", "scope"}:
        return f"on, {value.get('scope', 'conversation')} scope" if value.get("enabled") else "off"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _names(field: str, value: Any) -> list[str]:
    items = value or []
    if field == "sub_agents":
        return [
            f"{i.get('agent_key')} ({i.get('mode', 'delegate')})" if isinstance(i, dict) else str(i)
            for i in items
        ]
    return [str(i) for i in items]


def agent_changes(*, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``old``/``new``: ``{"name", "description", "config"}``. Returns the prompt's word diff (or
    None when equal), changed values, and added/removed list items."""
    old_config, new_config = old.get("config") or {}, new.get("config") or {}
    flat_old = {**old_config, "name": old.get("name", ""), "description": old.get("description", "")}
    flat_new = {**new_config, "name": new.get("name", ""), "description": new.get("description", "")}
    prompt_old, prompt_new = old_config.get("system_prompt", ""), new_config.get("system_prompt", "")
    values = [
        {"label": label, "before": _shown(flat_old.get(key)), "after": _shown(flat_new.get(key))}
        for key, label in VALUE_FIELDS.items()
        if flat_old.get(key) != flat_new.get(key) and _shown(flat_old.get(key)) != _shown(flat_new.get(key))
    ]
    known = {"system_prompt", *VALUE_FIELDS, *LIST_FIELDS}
    for key in sorted((set(old_config) | set(new_config)) - known):
        if old_config.get(key) != new_config.get(key):
            values.append(
                {"label": key, "before": _shown(old_config.get(key)), "after": _shown(new_config.get(key))}
            )
    lists = []
    for key, label in LIST_FIELDS.items():
        before, after = _names(key, old_config.get(key)), _names(key, new_config.get(key))
        added, removed = [n for n in after if n not in before], [n for n in before if n not in after]
        if added or removed:
            lists.append({"label": label, "added": added, "removed": removed})
    prompt = word_diff(prompt_old, prompt_new) if prompt_old != prompt_new else None
    return {"prompt": prompt, "values": values, "lists": lists, "same": not (prompt or values or lists)}
