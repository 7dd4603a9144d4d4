"""Knowledge bases attached to a system: every member retrieves from them when run in the system.

Through the real worker loop and the demo model, like ``test_through_worker.py``."""

from __future__ import annotations

import asyncio

import pytest

from builder.models import AgentKnowledge, SystemKnowledge
from builder.runtime_adapter import _knowledge
from builder.services import agent_create
from builder.services.playground import playground_send
from builder.services.systems import system_publish, system_save
from rag.agents import retrieve
from rag.models import Chunk
from rag.services import document_upload, knowledge_base_create
from runtime.engine.worker import Worker
from runtime.models import AgentEvent, AgentRun
from tests.rag import files
from tests.rag.conftest import ingest


def work() -> None:
    asyncio.run(Worker(once=True, poll_interval=0.05).run())


def _desk(owner):
    """A router delegating to billing, both members of the system "desk"."""
    agent_create(owner=owner, slug="billing", name="Billing", config={"system_prompt": "Answer billing."})
    router = agent_create(
        owner=owner,
        slug="router",
        name="Router",
        config={"system_prompt": "Route.", "sub_agents": [{"agent_key": "billing", "mode": "delegate"}]},
    )
    return system_save(
        owner=owner, slug="desk", name="Desk", entry_agent=router, members={"billing": "money"}
    )


@pytest.mark.django_db(transaction=True)
def test_a_member_answers_with_a_citation_from_the_systems_knowledge_base(owner):
    shared = knowledge_base_create(owner=owner, name="Desk policies")
    document = document_upload(
        knowledge_base=shared,
        upload=files.upload("refunds.pdf", files.pdf_bytes(["Refunds are paid within 14 days of a return."])),
        user=owner,
    )
    work()
    system = _desk(owner)
    SystemKnowledge.objects.create(system=system, knowledge_base=shared)
    # billing also attaches the same base itself: it is searched once, not twice
    billing = system.members.get(agent__slug="billing").agent
    AgentKnowledge.objects.create(agent=billing, knowledge_base=shared, top_k=2)

    # the demo model calls the tool the message names: the router delegates to billing
    root = playground_send(user=owner, system=system, text="billing when are refunds paid")
    work()
    root.refresh_from_db()
    assert root.status == "succeeded", root.error
    child = AgentRun.objects.get(parent_run=root, agent_key="billing")
    assert child.status == "succeeded", child.error
    chunk = Chunk.objects.get(document=document)
    (event,) = AgentEvent.objects.filter(run=child, event_type="retrieval")
    assert event.payload["chunk_ids"] == [chunk.pk]
    citation = event.payload["citations"][0]
    assert citation["document"] == "refunds.pdf" and citation["page"] == 1
    assert citation["knowledge_base_id"] == str(shared.public_id)
    # the entry agent is a member too
    entry_event = AgentEvent.objects.get(run=root, event_type="retrieval")
    assert entry_event.payload["chunk_ids"] == [chunk.pk]

    # published, the system's runs pin member versions; the attachment still applies
    system_publish(system=system, user=owner)
    published, _ = _run_published(owner, "desk", "billing when are refunds paid")
    work()
    child = AgentRun.objects.get(parent_run=published, agent_key="billing")
    assert child.agent_version.startswith("version:")
    assert AgentEvent.objects.get(run=child, event_type="retrieval").payload["chunk_ids"] == [chunk.pk]

    # run on its own (not in the system), billing does not see the system's bases
    AgentKnowledge.objects.filter(agent=billing).delete()
    alone = playground_send(user=owner, agent=billing, text="when are refunds paid")
    work()
    assert not AgentEvent.objects.filter(run=alone, event_type="retrieval").exists()


def _run_published(owner, key: str, text: str):
    from runtime.services import run_create

    return run_create(agent_key=key, messages=[{"role": "user", "content": text}], user=owner)


@pytest.mark.django_db
def test_a_base_attached_to_agent_and_system_is_searched_once_with_the_wider_settings(owner):
    system = _desk(owner)
    billing = system.members.get(agent__slug="billing").agent
    both = knowledge_base_create(owner=owner, name="Both")
    own = knowledge_base_create(owner=owner, name="Own")
    shared = knowledge_base_create(owner=owner, name="Shared")
    AgentKnowledge.objects.create(
        agent=billing, knowledge_base=both, mode="tool", top_k=3, score_threshold=0.5
    )
    AgentKnowledge.objects.create(agent=billing, knowledge_base=own, mode="auto", top_k=2)
    SystemKnowledge.objects.create(
        system=system, knowledge_base=both, mode="auto", top_k=6, score_threshold=0.2
    )
    SystemKnowledge.objects.create(system=system, knowledge_base=shared, mode="tool", top_k=1)

    use = _knowledge(billing, system)
    assert use.auto_ids == sorted([both.pk, own.pk])
    assert use.tool_ids == sorted([both.pk, shared.pk])
    assert use.top_k == 6
    assert use.thresholds[both.pk] == 0.2
    # outside the system: its own attachments only
    alone = _knowledge(billing, None)
    assert (alone.auto_ids, alone.tool_ids, alone.top_k) == ([own.pk], [both.pk], 3)


@pytest.mark.django_db
def test_a_score_threshold_leaves_out_passages_less_similar_than_it(owner):
    base = knowledge_base_create(owner=owner, name="Mixed", chunk_size=40, chunk_overlap=0)
    ingest(
        document_upload(
            knowledge_base=base,
            upload=files.upload(
                "a.md", "# Refunds\nRefunds are paid within 14 days.\n\n# Parking\nParking is free."
            ),
            user=owner,
        )
    )
    query = "refunds paid within days"
    hits, _, _ = retrieve(knowledge_base_ids=[base.pk], query=query, top_k=5)
    assert len(hits) == 2 and all(h.vector_score is not None for h in hits)
    best, worst = max(h.vector_score for h in hits), min(h.vector_score for h in hits)
    assert best > worst
    floor = (best + worst) / 2
    kept, _, _ = retrieve(knowledge_base_ids=[base.pk], query=query, top_k=5, thresholds={base.pk: floor})
    assert [h.section for h in kept] == ["Refunds"]


@pytest.mark.django_db(transaction=True)
def test_after_a_hand_off_the_member_keeps_the_systems_knowledge(owner):
    shared = knowledge_base_create(owner=owner, name="Desk policies")
    document = document_upload(
        knowledge_base=shared,
        upload=files.upload("refunds.txt", "Refunds are paid within 14 days."),
        user=owner,
    )
    work()
    agent_create(owner=owner, slug="billing", name="Billing", config={"system_prompt": "Answer billing."})
    router = agent_create(
        owner=owner,
        slug="router",
        name="Router",
        config={"system_prompt": "Route.", "sub_agents": [{"agent_key": "billing", "mode": "handoff"}]},
    )
    system = system_save(owner=owner, slug="desk", name="Desk", entry_agent=router, members={"billing": ""})
    SystemKnowledge.objects.create(system=system, knowledge_base=shared)
    first = playground_send(user=owner, system=system, text="billing I need a refund")
    work()
    first.refresh_from_db()
    assert first.status == "succeeded", first.error
    first.conversation.refresh_from_db()
    assert first.conversation.active_agent_key == "billing"
    # the next message goes to billing itself, not as a child run: it still runs in the system
    second = playground_send(
        user=owner, system=system, text="when are refunds paid", conversation=first.conversation
    )
    work()
    second.refresh_from_db()
    assert second.agent_key == "billing" and second.status == "succeeded", second.error
    chunk = Chunk.objects.get(document=document)
    assert AgentEvent.objects.get(run=second, event_type="retrieval").payload["chunk_ids"] == [chunk.pk]
