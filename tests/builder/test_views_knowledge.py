"""Knowledge pages as each persona: create, upload (several files, bad ones named), live list, actions, search."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from builder.models import AgentKnowledge, SystemKnowledge
from rag.models import Document, DocumentStatus, KnowledgeBase
from rag.services import knowledge_base_create
from tests.rag.conftest import ingest

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def _upload(client, base, *files, **extra):
    return client.post(
        reverse("builder:knowledge-upload", args=[base.public_id]), {"files": list(files)}, **extra
    )


def test_create_a_knowledge_base(owner_client):
    response = owner_client.post(
        reverse("builder:knowledge-create"),
        {"name": "Policies", "embedding_model": "hash", "chunk_size": 200, "chunk_overlap": 20},
    )
    base = KnowledgeBase.objects.get(name="Policies")
    assert response.status_code == 302 and response.url == reverse(
        "builder:knowledge-detail", args=[base.public_id]
    )


def test_create_with_bad_overlap_names_the_field(owner_client):
    response = owner_client.post(
        reverse("builder:knowledge-create"),
        {"name": "P", "embedding_model": "hash", "chunk_size": 100, "chunk_overlap": 90},
    )
    assert response.status_code == 422
    assert "Overlap must be between 0 and half the chunk size." in response.content.decode()
    assert not KnowledgeBase.objects.exists()


def test_upload_several_files_one_bad_one_good(owner_client, base):
    good = SimpleUploadedFile("a.txt", b"Opening hours are nine to five.")
    bad = SimpleUploadedFile("empty.md", b"")
    response = _upload(owner_client, base, good, bad, **HTMX)
    body = response.content.decode()
    assert response.status_code == 200
    assert "Uploaded a.txt" in body and "empty.md: the file is empty." in body
    # the document list is swapped in out of band and polls while a.txt is not indexed
    assert 'id="documents"' in body and 'hx-trigger="every 1s"' in body
    assert list(Document.objects.values_list("name", flat=True)) == ["a.txt"]


def test_upload_nothing_is_a_422(owner_client, base):
    response = _upload(owner_client, base, **HTMX)
    assert (
        response.status_code == 422
        and "choose one or more files to upload, paste some text, or give a web page"
        in response.content.decode()
    )


def test_the_list_stops_polling_when_every_document_is_done(owner_client, owner, base):
    _upload(owner_client, base, SimpleUploadedFile("a.txt", b"Opening hours are nine to five."))
    ingest(Document.objects.get())
    response = owner_client.get(reverse("builder:knowledge-detail", args=[base.public_id]), **HTMX)
    body = response.content.decode()
    assert "Ready" in body and "every 1s" not in body and "<html" not in body


def test_retry_a_failed_document(owner_client, base):
    _upload(owner_client, base, SimpleUploadedFile("bad.pdf", b"%PDF-1.4 broken"))
    document = ingest(Document.objects.get())
    assert document.status == DocumentStatus.FAILED
    url = reverse("builder:document-retry", args=[base.public_id, document.public_id])
    response = owner_client.post(url, **HTMX)
    document.refresh_from_db()
    assert response.status_code == 200 and document.status == DocumentStatus.STORED


def test_delete_a_document_removes_its_file(owner_client, base, django_capture_on_commit_callbacks):
    _upload(owner_client, base, SimpleUploadedFile("a.txt", b"hello there"))
    document = Document.objects.get()
    storage, name = document.file.storage, document.file.name
    assert storage.exists(name)
    with django_capture_on_commit_callbacks(execute=True):
        owner_client.post(reverse("builder:document-delete", args=[base.public_id, document.public_id]))
    assert not Document.objects.exists() and not storage.exists(name)


def test_search_page_shows_ranked_passages_with_scores(owner_client, base):
    _upload(owner_client, base, SimpleUploadedFile("hours.txt", b"The shop opens at nine."))
    ingest(Document.objects.get())
    response = owner_client.get(
        reverse("builder:knowledge-search", args=[base.public_id]), {"q": "when does the shop open"}
    )
    body = response.content.decode()
    assert "hours.txt" in body and "fused" in body and " ms " in body


def test_attach_knowledge_to_an_agent(owner_client, agent, base):
    url = reverse("builder:agent-knowledge", args=[agent.public_id])
    response = owner_client.post(
        url, {"knowledge_bases": [base.pk], "mode": "tool", "top_k": 6, "score_threshold": 0.2}
    )
    assert response.status_code == 302
    assert list(
        AgentKnowledge.objects.values_list("knowledge_base_id", "mode", "top_k", "score_threshold")
    ) == [(base.pk, "tool", 6, 0.2)]


def test_cannot_attach_someone_elses_knowledge_base(owner_client, agent, other_staff):
    theirs = knowledge_base_create(owner=other_staff, name="Theirs")
    response = owner_client.post(
        reverse("builder:agent-knowledge", args=[agent.public_id]),
        {"knowledge_bases": [theirs.pk], "mode": "auto", "top_k": 4, "score_threshold": 0},
    )
    assert response.status_code == 422 and not AgentKnowledge.objects.exists()


@pytest.mark.parametrize("name", ["knowledge-detail", "knowledge-search"])
def test_other_staff_and_strangers_get_404_or_login(name, base, staff_client, stranger_client):
    url = reverse(f"builder:{name}", args=[base.public_id])
    assert staff_client.get(url).status_code == 404
    assert stranger_client.get(url).status_code == 302


def test_other_staff_cannot_upload_or_delete(staff_client, base):
    assert _upload(staff_client, base, SimpleUploadedFile("a.txt", b"x")).status_code == 404
    assert staff_client.post(reverse("builder:knowledge-delete", args=[base.public_id])).status_code == 404
    assert KnowledgeBase.objects.filter(pk=base.pk).exists() and not Document.objects.exists()


def test_list_shows_only_my_bases(owner_client, base, other_staff):
    knowledge_base_create(owner=other_staff, name="Secret base")
    body = owner_client.get(reverse("builder:knowledge-list")).content.decode()
    assert "Handbook" in body and "Secret base" not in body


def test_paste_text_becomes_a_document(owner_client, base):
    url = reverse("builder:knowledge-upload", args=[base.public_id])
    response = owner_client.post(url, {"title": "FAQ", "text": "Opening hours: nine to five."}, **HTMX)
    assert response.status_code == 200 and "Uploaded FAQ.txt" in response.content.decode()
    assert Document.objects.get().kind == "txt"


# -- knowledge bases of a system ------------------------------------------------------------------


@pytest.fixture
def system(owner, agent):
    from builder.services.systems import system_save

    return system_save(owner=owner, slug="desk", name="Desk", entry_agent=agent, members={})


def _attach(client, system, **data):
    body = {"mode": "auto", "top_k": 4, "score_threshold": 0, **data}
    return client.post(reverse("builder:system-knowledge", args=[system.public_id]), body)


def test_attach_knowledge_bases_to_a_system(owner_client, system, base):
    response = _attach(
        owner_client, system, knowledge_bases=[base.pk], mode="both", top_k=7, score_threshold=0.3
    )
    assert response.status_code == 302
    link = SystemKnowledge.objects.get()
    assert (link.system, link.knowledge_base, link.mode, link.top_k, link.score_threshold) == (
        system,
        base,
        "both",
        7,
        0.3,
    )
    page = owner_client.get(reverse("builder:system-knowledge", args=[system.public_id])).content.decode()
    assert f'value="{base.pk}"' in page and "checked" in page and 'value="7"' in page
    editor = owner_client.get(reverse("builder:system-edit", args=[system.public_id])).content.decode()
    assert "1 knowledge base shared by every member." in editor
    assert 'name="knowledge"' not in editor  # the old text box is gone
    assert _attach(owner_client, system).status_code == 302  # untick: detached
    assert not SystemKnowledge.objects.exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("top_k", 0, "Passages per question must be a whole number from 1 to 20."),
        ("top_k", 21, "Passages per question must be a whole number from 1 to 20."),
        ("score_threshold", 1.5, "The minimum similarity must be between 0"),
        ("mode", "sometimes", "Select a valid choice"),
    ],
)
def test_wrong_settings_are_named_next_to_the_field_and_save_nothing(
    owner_client, system, base, field, value, message
):
    response = _attach(owner_client, system, knowledge_bases=[base.pk], **{field: value})
    body = response.content.decode()
    assert response.status_code == 422
    assert f'id="id_{field}-error"' in body and message in body
    assert not SystemKnowledge.objects.exists()


def test_a_system_editor_cannot_attach_a_base_they_cannot_see(owner, other_staff, staff_client, system, base):
    from builder.services.sharing import share_add

    share_add(obj=system, actor=owner, role="editor", user=other_staff)
    SystemKnowledge.objects.create(system=system, knowledge_base=base)  # the owner's, hidden from the editor
    mine = knowledge_base_create(owner=other_staff, name="Mine")
    response = _attach(staff_client, system, knowledge_bases=[base.pk, mine.pk])
    body = response.content.decode()
    assert response.status_code == 422 and 'id="id_knowledge_bases-error"' in body
    assert "ask its owner to share it" in body and "Handbook" not in body
    assert list(SystemKnowledge.objects.values_list("knowledge_base", flat=True)) == [base.pk]
    # their own base attaches; the one they cannot see stays attached, untouched
    page = staff_client.get(reverse("builder:system-knowledge", args=[system.public_id])).content.decode()
    assert "1 more knowledge base that you cannot see stays attached." in page
    assert _attach(staff_client, system, knowledge_bases=[mine.pk]).status_code == 302
    assert set(SystemKnowledge.objects.values_list("knowledge_base", flat=True)) == {base.pk, mine.pk}


def test_the_service_refuses_a_base_the_user_cannot_see(other_staff, system, base):
    from builder.schema import ConfigError
    from builder.services.knowledge import knowledge_attach

    with pytest.raises(ConfigError) as caught:
        knowledge_attach(target=system, user=other_staff, knowledge_bases=[base])
    assert "cannot see the knowledge base 'Handbook'" in caught.value.errors["knowledge_bases"]
    assert not SystemKnowledge.objects.exists()


def test_system_knowledge_as_stranger_viewer_and_anonymous(
    owner, other_staff, staff_client, stranger_client, client, system, base
):
    from builder.services.sharing import share_add

    url = reverse("builder:system-knowledge", args=[system.public_id])
    assert staff_client.get(url).status_code == 404
    assert _attach(staff_client, system, knowledge_bases=[base.pk]).status_code == 404
    share_add(obj=system, actor=owner, role="viewer", user=other_staff)
    assert staff_client.get(url).status_code == 200
    refused = _attach(staff_client, system, knowledge_bases=[])
    assert refused.status_code == 403 and "only editors and owners may change it" in refused.content.decode()
    assert stranger_client.get(url).status_code == 302  # not staff: sent to sign in
    assert client.get(url).status_code == 302
    assert not SystemKnowledge.objects.exists()
