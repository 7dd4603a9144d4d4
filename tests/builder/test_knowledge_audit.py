"""Attaching a knowledge base to an agent or a system, changing how it is used and detaching it are
recorded in the agent's or system's audit log (``builder/services/knowledge.py``), whichever way
they are made: the builder's Knowledge page or the REST API. A refused attempt records nothing."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils.html import escape

from builder.models import AuditAction
from builder.services.sharing import audit_for, person_name, share_add
from rag.services import knowledge_base_create
from tests.builder.conftest import kind_of
from tests.builder.test_sharing import client_for, staff

pytestmark = pytest.mark.django_db
JSON = "application/json"


def entries(target) -> list[tuple]:
    """The target's audit log, oldest first, as (actor, action, kind, public id, subject, detail)."""
    rows = audit_for(target).order_by("created_at", "pk")
    return [(e.actor, e.action, e.target_kind, e.target_id, e.subject, e.detail) for e in rows]


def entry(actor, action, target, detail="", subject="Handbook") -> tuple:
    return (actor, action, kind_of(target), target.public_id, subject, detail)


def page_post(client, target, *bases, **settings):
    """The builder's Knowledge page: the ticked bases, one setting for all of them."""
    body = {"knowledge_bases": [b.pk for b in bases], "mode": "auto", "top_k": 4, "score_threshold": 0}
    return client.post(
        reverse(f"builder:{kind_of(target)}-knowledge", args=[target.public_id]), body | settings
    )


def api_url(target, base=None) -> str:
    kind = kind_of(target)
    if base is None:
        return reverse(f"builder-api:{kind}-knowledge", args=[target.public_id])
    return reverse(f"builder-api:{kind}-knowledge-base", args=[target.public_id, base.public_id])


def api_attach(client, target, base, **settings):
    return client.post(
        api_url(target), {"knowledge_base": str(base.public_id), **settings}, content_type=JSON
    )


def activity(client, target) -> str:
    return client.get(reverse(f"builder:{kind_of(target)}-sharing", args=[target.public_id])).content.decode()


# -- the builder's Knowledge page -----------------------------------------------------------------


def test_the_page_records_attach_change_and_detach_once_each(owner, target, base):
    client = client_for(owner)
    assert page_post(client, target, base, mode="tool", top_k=6, score_threshold=0.2).status_code == 302
    attached = entry(owner, AuditAction.KNOWLEDGE_ATTACHED, target, "mode tool, top_k 6, score_threshold 0.2")
    assert entries(target) == [attached]

    assert page_post(client, target, base, mode="tool", top_k=8, score_threshold=0.2).status_code == 302
    changed = entry(owner, AuditAction.KNOWLEDGE_CHANGED, target, "top_k 6 → 8")
    assert entries(target) == [attached, changed]

    # saving the page unchanged changes nothing, so records nothing
    assert page_post(client, target, base, mode="tool", top_k=8, score_threshold=0.2).status_code == 302
    assert entries(target) == [attached, changed]

    assert page_post(client, target).status_code == 302  # untick: detached
    detached = entry(owner, AuditAction.KNOWLEDGE_DETACHED, target)
    assert entries(target) == [attached, changed, detached]

    # the sharing panel's activity says it in words
    page = activity(client, target)
    who = escape(person_name(owner))
    assert f"{who} attached knowledge base Handbook (mode tool, top_k 6, score_threshold 0.2)" in page
    assert f"{who} changed knowledge base Handbook (top_k 6 → 8)" in page
    assert f"{who} detached knowledge base Handbook</li>" in page


def test_one_save_of_the_page_records_each_base_it_changed(owner, target, base):
    client = client_for(owner)
    policies = knowledge_base_create(owner=owner, name="Policies")
    page_post(client, target, base)
    page_post(client, target, policies, mode="both")  # Handbook unticked, Policies ticked
    assert entries(target)[1:] == [
        entry(owner, AuditAction.KNOWLEDGE_DETACHED, target),
        entry(
            owner,
            AuditAction.KNOWLEDGE_ATTACHED,
            target,
            "mode both, top_k 4, score_threshold 0.0",
            subject="Policies",
        ),
    ]


def test_an_editor_saving_the_page_records_nothing_about_a_base_they_cannot_see(owner, target, base):
    page_post(client_for(owner), target, base)  # the owner's base, hidden from the editor
    editor = staff("ed")
    share_add(obj=target, actor=owner, role="editor", user=editor)
    mine = knowledge_base_create(owner=editor, name="Mine")
    before = entries(target)
    assert page_post(client_for(editor), target, mine).status_code == 302
    assert entries(target) == [
        *before,
        entry(
            editor, AuditAction.KNOWLEDGE_ATTACHED, target, "mode auto, top_k 4, score_threshold 0.0", "Mine"
        ),
    ]


@pytest.mark.parametrize(
    "bad",
    [{"top_k": 0}, {"top_k": 21}, {"score_threshold": 1.5}, {"mode": "sometimes"}],
)
def test_a_refused_save_of_the_page_records_nothing(owner, target, base, bad):
    response = page_post(client_for(owner), target, base, **bad)
    assert response.status_code == 422
    assert entries(target) == []


def test_the_page_refusing_a_base_the_editor_cannot_see_records_nothing(owner, target, base):
    editor = staff("ed")
    share_add(obj=target, actor=owner, role="editor", user=editor)
    assert page_post(client_for(editor), target, base).status_code == 422
    viewer = staff("vi")
    share_add(obj=target, actor=owner, role="viewer", user=viewer)
    share_add(obj=base, actor=owner, role="viewer", user=viewer)
    assert page_post(client_for(viewer), target, base).status_code == 403  # a viewer may not change it
    assert [e for e in entries(target) if e[1].startswith("knowledge")] == []


# -- the REST API ---------------------------------------------------------------------------------


def test_the_api_records_attach_change_and_detach_once_each(owner, target, base):
    editor = staff("ed")
    share_add(obj=target, actor=owner, role="editor", user=editor)
    share_add(obj=base, actor=owner, role="viewer", user=editor)
    client = client_for(editor)
    shares = entries(target)

    assert api_attach(client, target, base, mode="tool", top_k=5).status_code == 201
    attached = entry(
        editor, AuditAction.KNOWLEDGE_ATTACHED, target, "mode tool, top_k 5, score_threshold 0.0"
    )
    assert entries(target) == [*shares, attached]

    assert client.patch(api_url(target, base), {"top_k": 8}, content_type=JSON).status_code == 200
    changed = entry(editor, AuditAction.KNOWLEDGE_CHANGED, target, "top_k 5 → 8")
    assert entries(target) == [*shares, attached, changed]

    both = {"mode": "both", "score_threshold": 0.25}
    assert client.patch(api_url(target, base), both, content_type=JSON).status_code == 200
    changed_two = entry(
        editor, AuditAction.KNOWLEDGE_CHANGED, target, "mode tool → both, score_threshold 0.0 → 0.25"
    )
    assert entries(target) == [*shares, attached, changed, changed_two]

    # a change to the values it already has is no change
    assert client.patch(api_url(target, base), {"top_k": 8}, content_type=JSON).status_code == 200
    assert len(entries(target)) == len(shares) + 3

    assert client.delete(api_url(target, base)).status_code == 204
    detached = entry(editor, AuditAction.KNOWLEDGE_DETACHED, target)
    assert entries(target) == [*shares, attached, changed, changed_two, detached]
    assert f"{escape(person_name(editor))} detached knowledge base Handbook" in activity(
        client_for(owner), target
    )


def test_refused_api_calls_record_nothing(owner, other_staff, target, base):
    client = client_for(owner)
    theirs = knowledge_base_create(owner=other_staff, name="Secret plans")
    assert api_attach(client, target, theirs).status_code == 400  # a base they cannot see
    assert api_attach(client, target, base, top_k=0).status_code == 400
    assert api_attach(client, target, base, mode="sometimes").status_code == 400
    assert entries(target) == []

    assert api_attach(client, target, base).status_code == 201
    recorded = entries(target)
    assert api_attach(client, target, base, top_k=6).status_code == 400  # already attached
    assert client.patch(api_url(target, base), {"top_k": 21}, content_type=JSON).status_code == 400
    viewer = staff("vi")
    share_add(obj=target, actor=owner, role="viewer", user=viewer)
    share_add(obj=base, actor=owner, role="viewer", user=viewer)
    as_viewer = client_for(viewer)
    assert as_viewer.patch(api_url(target, base), {"top_k": 9}, content_type=JSON).status_code == 403
    assert as_viewer.delete(api_url(target, base)).status_code == 403
    knowledge = [e for e in entries(target) if e[1].startswith("knowledge")]
    assert knowledge == [e for e in recorded if e[1].startswith("knowledge")]
    assert len(knowledge) == 1
