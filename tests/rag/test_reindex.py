"""Changing a base's embedding model, passage size or overlap indexes every document again; a
name or description change does not; bad settings change nothing."""

from __future__ import annotations

import pytest
from django.urls import reverse

from rag.models import Chunk, DocumentStatus, KnowledgeBase
from rag.search import search
from rag.services import KnowledgeInputError, document_upload, knowledge_base_update
from runtime.models import AgentRun
from tests.rag import files
from tests.rag.conftest import ingest

pytestmark = pytest.mark.django_db


@pytest.fixture
def indexed(base, owner):
    texts = {
        "refunds.md": "Refunds are paid within 14 days of receiving the return.",
        "shipping.md": "Orders ship from Rotterdam; delivery to Germany takes two days.",
    }
    for name, text in texts.items():
        ingest(document_upload(knowledge_base=base, upload=files.upload(name, text), user=owner))
    return base


def _settings(base: KnowledgeBase, **changes) -> dict:
    values = {
        k: getattr(base, k) for k in ("name", "description", "embedding_model", "chunk_size", "chunk_overlap")
    }
    return {**values, **changes}


def test_a_new_model_indexes_every_document_again_and_search_uses_it(indexed, owner):
    assert set(Chunk.objects.values_list("embedding_model", flat=True)) == {"hash"}
    requeued = knowledge_base_update(
        knowledge_base=indexed, user=owner, **_settings(indexed, embedding_model="local")
    )
    assert requeued == 2
    documents = list(indexed.documents.all())
    assert {d.status for d in documents} == {DocumentStatus.STORED}
    # until a document is done, its old passages (another model's vectors) are not searched
    assert search(knowledge_bases=[indexed], query="refunds", top_k=3).hits == []
    for document in documents:
        ingest(document)
    assert set(Chunk.objects.values_list("embedding_model", flat=True)) == {"local"}
    assert Chunk.objects.count() == 2  # replaced, not added
    hits = search(
        knowledge_bases=[KnowledgeBase.objects.get(pk=indexed.pk)], query="when are refunds paid"
    ).hits
    assert hits[0].document_name == "refunds.md"


def test_a_new_passage_size_indexes_again_but_a_new_name_does_not(indexed, owner):
    runs = AgentRun.objects.count()
    assert (
        knowledge_base_update(knowledge_base=indexed, user=owner, **_settings(indexed, name="Renamed")) == 0
    )
    assert AgentRun.objects.count() == runs and KnowledgeBase.objects.get(pk=indexed.pk).name == "Renamed"
    assert (
        knowledge_base_update(knowledge_base=indexed, user=owner, **_settings(indexed, chunk_size=100)) == 2
    )
    assert AgentRun.objects.count() == runs + 2


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"embedding_model": "no-such-model"}, "embedding_model"),
        ({"chunk_size": 10}, "chunk_size"),
        ({"chunk_overlap": 999}, "chunk_overlap"),
        ({"name": " "}, "name"),
    ],
)
def test_bad_settings_change_nothing(indexed, owner, change, field):
    before = _settings(KnowledgeBase.objects.get(pk=indexed.pk))
    runs = AgentRun.objects.count()
    with pytest.raises(KnowledgeInputError) as caught:
        knowledge_base_update(knowledge_base=indexed, user=owner, **_settings(indexed, **change))
    assert caught.value.field == field
    assert _settings(KnowledgeBase.objects.get(pk=indexed.pk)) == before and AgentRun.objects.count() == runs


def test_settings_page_saves_or_shows_the_error_next_to_the_field(client, indexed, owner):
    client.force_login(owner)
    url = reverse("builder:knowledge-settings", args=[indexed.public_id])
    page = client.get(url)
    assert page.status_code == 200 and "indexes all 2 documents again" in page.content.decode()
    form = _settings(indexed, chunk_size=10)
    refused = client.post(url, form)
    assert (
        refused.status_code == 422
        and "Ensure this value is greater than or equal to 32" in refused.content.decode()
    )
    saved = client.post(url, _settings(indexed, embedding_model="local"), follow=True)
    assert "Indexing 2 documents again." in saved.content.decode()


def test_settings_page_is_for_those_who_may_edit(client, indexed, django_user_model):
    stranger = django_user_model.objects.create_user("stranger", is_staff=True)
    client.force_login(stranger)
    response = client.post(
        reverse("builder:knowledge-settings", args=[indexed.public_id]), _settings(indexed, name="x")
    )
    assert response.status_code == 404
    assert KnowledgeBase.objects.get(pk=indexed.pk).name == indexed.name


def test_api_patch(client, indexed, owner):
    client.force_login(owner)
    url = f"/api/knowledge/bases/{indexed.public_id}/"
    changed = client.patch(url, {"embedding_model": "local"}, content_type="application/json")
    assert changed.status_code == 200 and changed.json()["embedding_model"] == "local"
    assert {d.status for d in indexed.documents.all()} == {DocumentStatus.STORED}
    refused = client.patch(url, {"chunk_overlap": 5000}, content_type="application/json")
    assert refused.status_code == 400 and "chunk_overlap" in refused.json()["error"]["fields"]
