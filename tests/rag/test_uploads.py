"""Hostile and broken uploads: each gets a message naming the file and leaves nothing behind."""

from __future__ import annotations

import pytest
from django.core.files.storage import default_storage

from rag.models import Document, DocumentStatus
from rag.services import KnowledgeInputError, clean_name, document_upload
from runtime.models import AgentRun
from tests.rag import files
from tests.rag.conftest import ingest

pytestmark = pytest.mark.django_db


def _rejected(base, owner, name, content) -> str:
    runs = AgentRun.objects.count()
    with pytest.raises(KnowledgeInputError) as caught:
        document_upload(knowledge_base=base, upload=files.upload(name, content), user=owner)
    assert not Document.objects.exists() and AgentRun.objects.count() == runs
    assert not default_storage.exists(f"rag/{base.public_id}")
    return caught.value.message


def test_empty_file(base, owner):
    assert _rejected(base, owner, "empty.txt", b"") == "empty.txt: the file is empty."


def test_oversize_file(base, owner, settings):
    settings.RAG_MAX_FILE_BYTES = 1024
    message = _rejected(base, owner, "big.txt", b"a" * 2048)
    assert message.startswith("big.txt: the file is 0.0 MB; the limit is")


def test_image_disguised_as_pdf(base, owner):
    message = _rejected(base, owner, "scan.pdf", b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    assert message == "scan.pdf: this is a PNG image, which holds no text to index."


def test_text_disguised_as_word(base, owner):
    message = _rejected(base, owner, "report.docx", "just some text")
    assert "the name says Word, but the content is TXT" in message


def test_binary_junk_named_txt(base, owner):
    assert "not text nor a supported document" in _rejected(base, owner, "x.txt", b"\x00\x01\x02binary")


def test_zip_that_is_not_office(base, owner):
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("a.txt", "hi")
    assert "not a Word, Excel or PowerPoint file" in _rejected(base, owner, "files.zip", out.getvalue())


def test_zip_bomb_office_file(base, owner, settings):
    settings.RAG_MAX_UNZIPPED_BYTES = 1024 * 1024
    assert "zip bomb" in _rejected(base, owner, "bomb.docx", files.zip_bomb_docx())


def test_old_office_format(base, owner):
    assert "old-format Office file" in _rejected(base, owner, "old.doc", b"\xd0\xcf\x11\xe0" + b"\0" * 600)


def test_duplicate_content_is_named(base, owner):
    document_upload(knowledge_base=base, upload=files.upload("a.txt", "same words"), user=owner)
    with pytest.raises(KnowledgeInputError) as caught:
        document_upload(knowledge_base=base, upload=files.upload("b.txt", "same words"), user=owner)
    assert caught.value.message == "b.txt: the same content is already in this knowledge base as a.txt."
    assert Document.objects.count() == 1


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("../../etc/passwd.txt", "passwd.txt"),
        ("C:\\Users\\me\\notes.md", "notes.md"),
        ("evil\x00name.txt", "evilname.txt"),
        ("x" * 500 + ".pdf", "x" * 196 + ".pdf"),
    ],
)
def test_names_lose_folders_control_characters_and_length(raw, clean):
    assert clean_name(raw) == clean


def test_path_separators_never_reach_storage(base, owner):
    document = document_upload(
        knowledge_base=base, upload=files.upload("../../../evil.txt", "hello"), user=owner
    )
    assert document.name == "evil.txt"
    assert document.file.name == f"rag/{base.public_id}/{document.public_id}/evil.txt"


def test_a_name_of_only_folders_is_rejected():
    with pytest.raises(KnowledgeInputError, match="the file name is empty once folders are removed"):
        clean_name("../..")


def test_encrypted_pdf_fails_with_a_reason(base, owner):
    document = document_upload(
        knowledge_base=base, upload=files.upload("locked.pdf", files.encrypted_pdf_bytes()), user=owner
    )
    document = ingest(document)
    assert document.status == DocumentStatus.FAILED and "password protected" in document.error


def test_corrupt_pdf_fails_with_a_reason(base, owner):
    document = document_upload(
        knowledge_base=base, upload=files.upload("broken.pdf", b"%PDF-1.4\n garbage"), user=owner
    )
    document = ingest(document)
    assert document.status == DocumentStatus.FAILED and "broken.pdf: the PDF is damaged" in document.error


def test_pdf_without_text(base, owner):
    document = document_upload(
        knowledge_base=base, upload=files.upload("scan.pdf", files.pdf_bytes([""])), user=owner
    )
    document = ingest(document)
    assert (
        document.error
        == "scan.pdf: no text was found in the file (a scanned PDF? text recognition is not supported)."
    )


def test_upload_queues_one_ingestion_run(base, owner):
    document = document_upload(knowledge_base=base, upload=files.upload("a.txt", "hello"), user=owner)
    run = AgentRun.objects.get(pk=document.ingest_run_id)
    assert run.agent_key == "rag.ingest" and run.status == "queued"
    assert run.metadata["rag_document"] == str(document.public_id)


def test_quota_per_knowledge_base(base, owner, settings):
    settings.RAG_MAX_BASE_BYTES = 10
    document_upload(knowledge_base=base, upload=files.upload("a.txt", "123456"), user=owner)
    with pytest.raises(KnowledgeInputError) as caught:
        document_upload(knowledge_base=base, upload=files.upload("b.txt", "7890123"), user=owner)
    assert caught.value.message.startswith("b.txt: Handbook would hold 0.0 MB; its quota is 0 MB.")
    assert Document.objects.count() == 1


def test_a_new_version_of_a_file_replaces_its_chunks_atomically(
    base, owner, django_capture_on_commit_callbacks
):
    from rag.models import Chunk
    from rag.search import search

    first = ingest(
        document_upload(knowledge_base=base, upload=files.upload("faq.md", "Opening at nine."), user=owner)
    )
    old_file = first.file.name
    with django_capture_on_commit_callbacks(execute=True):
        second = document_upload(
            knowledge_base=base, upload=files.upload("faq.md", "Opening at ten."), user=owner
        )
    assert second.pk == first.pk and second.status == DocumentStatus.STORED
    assert not default_storage.exists(old_file) and default_storage.exists(second.file.name)
    # until the new version is indexed, the old passages still answer
    assert [h.text for h in search(knowledge_bases=[base], query="opening", top_k=5).hits] == [
        "Opening at nine."
    ]
    ingest(second)
    assert list(Chunk.objects.filter(document=second).values_list("text", flat=True)) == ["Opening at ten."]
