"""The knowledge API: create a base, upload (multipart, bad files named), status, search, delete; access rules."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from rag.models import Document, KnowledgeBase
from rag.services import knowledge_base_create
from tests.rag.conftest import ingest

pytestmark = pytest.mark.django_db


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_create_upload_status_search_delete(owner):
    client = _client(owner)
    created = client.post("/api/knowledge/bases/", {"name": "Docs", "embedding_model": "hash"}, format="json")
    assert created.status_code == 201
    base_id = created.json()["id"]
    response = client.post(
        f"/api/knowledge/bases/{base_id}/documents/",
        {"files": [SimpleUploadedFile("a.md", b"# Hours\nOpen at nine."), SimpleUploadedFile("e.txt", b"")]},
        format="multipart",
    )
    assert response.status_code == 201
    assert response.json()["errors"] == ["e.txt: the file is empty."]
    document_id = response.json()["documents"][0]["id"]
    assert client.get(f"/api/knowledge/bases/{base_id}/documents/{document_id}/").json()["status"] == "stored"
    ingest(Document.objects.get(public_id=document_id))
    assert client.get(f"/api/knowledge/bases/{base_id}/documents/{document_id}/").json()["status"] == "ready"
    hits = client.post(
        f"/api/knowledge/bases/{base_id}/search/", {"query": "when open"}, format="json"
    ).json()["hits"]
    assert hits[0]["document"] == "a.md" and hits[0]["text"] == "# Hours\nOpen at nine."
    assert client.delete(f"/api/knowledge/bases/{base_id}/documents/{document_id}/").status_code == 204
    assert client.delete(f"/api/knowledge/bases/{base_id}/").status_code == 204
    assert not KnowledgeBase.objects.exists()


def test_all_files_refused_is_a_400_naming_each(owner):
    base = knowledge_base_create(owner=owner, name="B")
    response = _client(owner).post(
        f"/api/knowledge/bases/{base.public_id}/documents/",
        {"files": [SimpleUploadedFile("x.pdf", b"\x89PNG\r\n\x1a\nxx")]},
        format="multipart",
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["files"] == [
        "x.pdf: this is a PNG image, which holds no text to index."
    ]


def test_bad_chunk_overlap_names_the_field(owner):
    response = _client(owner).post(
        "/api/knowledge/bases/", {"name": "B", "chunk_size": 100, "chunk_overlap": 90}, format="json"
    )
    assert response.status_code == 400 and "chunk_overlap" in response.json()["error"]["fields"]


def test_other_people_get_404_and_non_staff_403(owner, other_staff, stranger):
    base = knowledge_base_create(owner=owner, name="Mine")
    assert _client(other_staff).get(f"/api/knowledge/bases/{base.public_id}/").status_code == 404
    assert _client(other_staff).get("/api/knowledge/bases/").json() == []
    assert _client(stranger).get("/api/knowledge/bases/").status_code == 403
    assert APIClient().get("/api/knowledge/bases/").status_code in (401, 403)
