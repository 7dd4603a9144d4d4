"""Documents stored in an S3-compatible bucket (a local moto server): upload, index from the
bucket, replace and delete with their objects; a storage that refuses is a message, not a 500."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest

from rag.models import Document, DocumentStatus
from rag.services import KnowledgeInputError, document_delete, document_upload
from tests.processes import free_port
from tests.rag import files
from tests.rag.conftest import ingest

pytestmark = pytest.mark.django_db
BUCKET = "knowledge"


@pytest.fixture
def s3(settings, monkeypatch) -> Iterator[object]:
    from moto.server import ThreadedMotoServer

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    # the configuration config/settings/base.py builds from AWS_STORAGE_BUCKET_NAME
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": endpoint,
                "location": "agent-builder",
                "default_acl": None,
                "file_overwrite": False,
            },
        },
    }
    try:
        yield client
    finally:
        server.stop()


def _keys(client) -> list[str]:
    return sorted(item["Key"] for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_upload_index_replace_and_delete_in_the_bucket(s3, base, owner, django_capture_on_commit_callbacks):
    document = document_upload(
        knowledge_base=base, upload=files.upload("refunds.md", "Refunds are paid within 14 days."), user=owner
    )
    (key,) = _keys(s3)
    assert key.startswith("agent-builder/") and key.endswith("refunds.md")
    assert ingest(document).status == DocumentStatus.READY  # the worker read it back from the bucket

    with django_capture_on_commit_callbacks(execute=True):
        replaced = document_upload(
            knowledge_base=base,
            upload=files.upload("refunds.md", "Refunds are paid within 30 days."),
            user=owner,
        )
    assert replaced.pk == document.pk and len(_keys(s3)) == 1 and _keys(s3) != [key]  # old object removed

    with django_capture_on_commit_callbacks(execute=True):
        document_delete(document=Document.objects.get(pk=document.pk))
    assert _keys(s3) == [] and not Document.objects.exists()


def test_a_bucket_that_refuses_is_a_message_and_leaves_nothing(s3, base, owner):
    s3.delete_bucket(Bucket=BUCKET)
    with pytest.raises(KnowledgeInputError) as caught:
        document_upload(knowledge_base=base, upload=files.upload("a.md", "Some text."), user=owner)
    assert caught.value.message.startswith("a.md: the file could not be stored (")
    assert "nothing was saved" in caught.value.message and not Document.objects.exists()
