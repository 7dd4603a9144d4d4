"""builder 0008: a system's old knowledge text becomes a knowledge base attached to it (and back).

Run with Django's migration executor: migrate to before, write rows with the historical models,
migrate forward, assert; then backward."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from rag.models import Document, KnowledgeBase
from runtime.models import AgentRun
from tests.rag.conftest import ingest

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("builder", "0007_system_knowledge")]
AFTER = [("builder", "0009_remove_agentsystem_knowledge")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def at_0007():
    apps = _migrate(BEFORE)
    yield apps
    _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def test_knowledge_text_becomes_an_indexed_knowledge_base_and_comes_back_on_reverse(at_0007):
    User = get_user_model()
    ana = User.objects.create_user("ana", "ana@example.com", "pw-ana-12345", is_staff=True)
    Agent = at_0007.get_model("builder", "Agent")
    AgentSystem = at_0007.get_model("builder", "AgentSystem")
    entry = Agent.objects.create(slug="router", name="Router", owner_id=ana.pk)
    with_text = AgentSystem.objects.create(
        slug="desk",
        name="Help desk",
        owner_id=ana.pk,
        entry_agent=entry,
        knowledge=["We open at 9.", "  ", "No refunds after 30 days."],
    )
    AgentSystem.objects.create(slug="quiet", name="Quiet", owner_id=ana.pk, entry_agent=entry, knowledge=[])

    apps = _migrate(AFTER)

    SystemKnowledge = apps.get_model("builder", "SystemKnowledge")
    (link,) = SystemKnowledge.objects.all()
    assert link.system_id == with_text.pk and link.mode == "auto"
    base = KnowledgeBase.objects.get(pk=link.knowledge_base_id)
    assert (base.name, base.owner_id) == ("Help desk", ana.pk)
    document = Document.objects.get(knowledge_base=base)
    assert document.name == "Shared knowledge.txt" and document.kind == "txt"
    assert document.file.read().decode() == "We open at 9.\n---\nNo refunds after 30 days."
    # queued exactly like a pasted text: a rag.ingest run the workers pick up
    run = AgentRun.objects.get(pk=document.ingest_run_id)
    assert run.agent_key == "rag.ingest" and run.status == "queued" and run.user_id == ana.pk
    assert ingest(document).status == "ready"
    assert KnowledgeBase.objects.count() == 1  # the system without text got nothing
    assert "knowledge" not in {f.name for f in apps.get_model("builder", "AgentSystem")._meta.fields}

    apps = _migrate(BEFORE)

    restored = apps.get_model("builder", "AgentSystem").objects.get(slug="desk")
    assert restored.knowledge == ["We open at 9.", "No refunds after 30 days."]
    assert (
        not KnowledgeBase.objects.exists()
        and not apps.get_model("builder", "SystemKnowledge").objects.exists()
    )
