"""The version diff, field by field: prompt word by word, settings before/after, tools added/removed."""

from __future__ import annotations

import pytest

from builder.services import agent_publish, agent_update_draft
from builder.services.diff import agent_changes, word_diff
from tests.builder.conftest import make_agent

pytestmark = pytest.mark.django_db


def test_a_prompt_is_compared_word_by_word():
    assert word_diff("Answer in short sentences.", "Answer in long, friendly sentences.") == [
        ("same", "Answer in "),
        ("del", "short"),
        ("add", "long, friendly"),
        ("same", " sentences."),
    ]


def test_settings_are_before_and_after_and_tools_added_or_removed():
    old = {"name": "Bot", "config": {"model": "demo", "http_tools": ["a", "b"], "memory": {"enabled": False}}}
    new = {
        "name": "Bot",
        "config": {
            "model": "openai:gpt-4o",
            "temperature": 0.3,
            "http_tools": ["b", "c"],
            "memory": {"enabled": True, "scope": "user"},
        },
    }
    changes = agent_changes(old=old, new=new)
    assert changes["prompt"] is None
    assert {r["label"]: (r["before"], r["after"]) for r in changes["values"]} == {
        "Model": ("demo", "openai:gpt-4o"),
        "Temperature": ("(not set)", "0.3"),
        "Shared memory": ("off", "on, user scope"),
    }
    assert changes["lists"] == [{"label": "HTTP tools", "added": ["c"], "removed": ["a"]}]


def test_draft_versus_live_shows_unpublished_edits(owner_client, owner):
    agent = make_agent(owner, prompt="Be brief.")
    agent_publish(agent=agent, user=owner)
    agent_update_draft(
        agent=agent,
        user=owner,
        config={"system_prompt": "Be brief and kind.", "python_tools": ["calculator"]},
    )
    body = owner_client.get(f"/agents/{agent.public_id}/versions/diff/?b=draft").content.decode()
    assert "version 1 → the draft" in body
    assert (
        '<ins class="b-diff--add" aria-label="added: and kind.">' in body
        or "and kind." in body.split("b-diff--add")[1]
    )
    assert "Python tools" in body and '<ins class="b-diff--add">calculator</ins>' in body
    same = owner_client.get(f"/agents/{agent.public_id}/versions/diff/?a=1&b=1").content.decode()
    assert "are the same" in same
