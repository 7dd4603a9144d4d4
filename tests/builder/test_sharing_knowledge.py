"""A shared knowledge base means the same role in the builder, the knowledge REST API and the admin
(through ``rag.access``, which the builder answers): viewers read and search, editors change its
documents, owners delete it."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from builder.services.sharing import share_add
from rag.models import Document, KnowledgeBase
from rag.services import knowledge_base_create
from tests.builder.test_sharing import client_for, staff

pytestmark = pytest.mark.django_db


def upload(client, base):
    return client.post(
        f"/api/knowledge/bases/{base.public_id}/documents/",
        {"files": [SimpleUploadedFile("a.txt", b"Refunds take five days.")]},
    )


def test_api_follows_the_role(owner, base):
    ana = staff("ana")
    client = client_for(ana)
    assert client.get(f"/api/knowledge/bases/{base.public_id}/").status_code == 404
    assert client.get("/api/knowledge/bases/").json() == []

    share_add(obj=base, actor=owner, role="viewer", user=ana)
    assert [b["name"] for b in client.get("/api/knowledge/bases/").json()] == ["Handbook"]
    assert (
        client.post(
            f"/api/knowledge/bases/{base.public_id}/search/",
            {"query": "refunds"},
            content_type="application/json",
        ).status_code
        == 200
    )
    refused = upload(client, base)
    assert refused.status_code == 403 and "editor role" in refused.content.decode()
    assert not Document.objects.exists()

    share_add(obj=base, actor=owner, role="editor", user=staff("bo"))
    assert upload(client_for(owner), base).status_code == 201
    assert client.delete(f"/api/knowledge/bases/{base.public_id}/").status_code == 403
    assert KnowledgeBase.objects.filter(pk=base.pk).exists()
    assert client_for(owner).delete(f"/api/knowledge/bases/{base.public_id}/").status_code == 204


def test_builder_pages_follow_the_role(owner, base):
    ana = staff("ana")
    share_add(obj=base, actor=owner, role="viewer", user=ana)
    client = client_for(ana)
    page = client.get(f"/knowledge/{base.public_id}/")
    assert page.status_code == 200 and b'id="sharing"' in page.content
    refused = client.post(f"/knowledge/{base.public_id}/upload/", {"text": "x"})
    assert refused.status_code == 403 and not Document.objects.exists()
    assert b"Handbook" in client.get("/knowledge/").content


def test_knowledge_list_shows_the_role_and_filters_shared(owner, base):
    ana = staff("ana")
    knowledge_base_create(owner=ana, name="Mine")
    share_add(obj=base, actor=owner, role="editor", user=ana)
    client = client_for(ana)
    everything = client.get("/knowledge/").content.decode()
    assert "Mine" in everything and "Handbook" in everything and 'data-role="editor"' in everything
    shared = client.get("/knowledge/?shared=1").content.decode()
    assert "Handbook" in shared and "Mine" not in shared


@pytest.mark.parametrize("where", ["api", "admin"])
def test_deleting_a_base_outside_the_builder_is_audited_and_removes_its_files(
    owner, base, where, django_capture_on_commit_callbacks
):
    from django.contrib.auth import get_user_model
    from django.core.files.storage import default_storage

    from builder.models import AuditEntry

    client = client_for(owner)
    assert upload(client, base).status_code == 201
    stored = Document.objects.get().file.name
    with django_capture_on_commit_callbacks(execute=True):
        if where == "api":
            response = client.delete(f"/api/knowledge/bases/{base.public_id}/")
            assert response.status_code == 204
        else:  # the admin's delete is for users with Django's delete permission: a superuser here
            actor = get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-123")
            response = client_for(actor).post(f"/admin/rag/knowledgebase/{base.pk}/delete/", {"post": "yes"})
            assert response.status_code == 302
    assert not KnowledgeBase.objects.exists() and not default_storage.exists(stored)
    entry = AuditEntry.objects.get(action="deleted")
    assert entry.actor == (owner if where == "api" else actor) and "Handbook" in str(entry)
