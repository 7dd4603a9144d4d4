from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from rag.models import Document, DocumentStatus
from rag.services import document_upload, knowledge_base_create
from tests.rag import files
from tests.rag.conftest import ingest

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_staff_see_only_their_documents_and_can_index_again(owner, other_staff):
    for user in (owner, other_staff):
        user.user_permissions.add(*Permission.objects.filter(content_type__app_label="rag"))
    mine = knowledge_base_create(owner=owner, name="Mine")
    theirs = knowledge_base_create(owner=other_staff, name="Theirs")
    failed = ingest(
        document_upload(knowledge_base=mine, upload=files.upload("bad.pdf", b"%PDF-1 x"), user=owner)
    )
    document_upload(knowledge_base=theirs, upload=files.upload("secret.txt", "secret"), user=other_staff)
    client = _client(get_user_model().objects.get(pk=owner.pk))
    body = client.get("/admin/rag/document/").content.decode()
    assert "bad.pdf" in body and "secret.txt" not in body
    assert "Mine" in client.get("/admin/rag/knowledgebase/").content.decode()
    assert "Theirs" not in client.get("/admin/rag/knowledgebase/").content.decode()

    client.post("/admin/rag/document/", {"action": "retry_documents", "_selected_action": [failed.pk]})
    assert Document.objects.get(pk=failed.pk).status == DocumentStatus.STORED
