"""A web page added by its address: fetched through the SSRF-safe client, then indexed like a file;
every refusal names the address and the reason and leaves nothing behind."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.urls import reverse

from rag.models import Chunk, Document
from rag.services import KnowledgeInputError, document_from_url
from runtime.models import AgentRun
from tests.rag.conftest import ingest

pytestmark = pytest.mark.django_db

PAGE = (
    b"<html><head><title>Returns</title></head><body><h1>Returns</h1>"
    b"<p>Customers may return a product within 30 days for a full refund.</p></body></html>"
)


class _Site(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's API
        if self.path == "/help/returns":
            body, status, kind = PAGE, 200, "text/html; charset=utf-8"
        elif self.path == "/big":
            body, status, kind = b"x" * 4096, 200, "text/plain"
        else:
            body, status, kind = b"not here", 404, "text/plain"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def site(settings) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    settings.AGENT_HTTP_ALLOWED_HOSTS = [f"127.0.0.1:{port}"]
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    server.server_close()


def _refused(base, owner, url: str) -> str:
    runs = AgentRun.objects.count()
    with pytest.raises(KnowledgeInputError) as caught:
        document_from_url(knowledge_base=base, url=url, user=owner)
    assert caught.value.field == "url"
    assert not Document.objects.exists() and AgentRun.objects.count() == runs
    return caught.value.message


def test_a_page_is_fetched_named_and_indexed(base, owner, site):
    document = ingest(document_from_url(knowledge_base=base, url=f"{site}/help/returns", user=owner))
    assert (document.name, document.kind, document.status) == ("127.0.0.1-returns.html", "html", "ready")
    text = " ".join(Chunk.objects.filter(document=document).values_list("text", flat=True))
    assert "return a product within 30 days" in text and "<p>" not in text


def test_a_private_address_is_refused_with_how_to_open_it(base, owner, site, settings):
    settings.AGENT_HTTP_ALLOWED_HOSTS = []
    message = _refused(base, owner, f"{site}/help/returns")
    assert "Refused to contact 127.0.0.1" in message and "AGENT_HTTP_ALLOWED_HOSTS" in message


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/missing", "the site answered HTTP 404."), ("/big", "larger than the 0 MB limit")],
)
def test_missing_and_oversized_pages(base, owner, site, settings, path, expected):
    settings.RAG_MAX_FILE_BYTES = 1024
    assert expected in _refused(base, owner, f"{site}{path}")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("", "Give the address of a web page"),
        ("ftp://example.com/file.txt", "only http:// and https:// addresses can be fetched"),
        ("https://" + "a" * 2000 + ".com", "longer than 2,000 characters"),
    ],
)
def test_unusable_addresses(base, owner, url, expected):
    assert expected in _refused(base, owner, url)


def test_the_same_page_twice_is_recognised(base, owner, site):
    document_from_url(knowledge_base=base, url=f"{site}/help/returns", user=owner)
    with pytest.raises(KnowledgeInputError, match="the same content is already in this knowledge base"):
        document_from_url(knowledge_base=base, url=f"{site}/help/returns", user=owner)


def test_builder_form_adds_a_page_or_says_why_not(client, base, owner, site, settings):
    client.force_login(owner)
    url = reverse("builder:knowledge-upload", args=[base.public_id])
    added = client.post(url, {"url": f"{site}/help/returns"}, headers={"HX-Request": "true"})
    assert added.status_code == 200 and "Uploaded 127.0.0.1-returns.html" in added.content.decode()
    settings.AGENT_HTTP_ALLOWED_HOSTS = []
    refused = client.post(url, {"url": f"{site}/other"}, headers={"HX-Request": "true"})
    assert refused.status_code == 422 and "Refused to contact 127.0.0.1" in refused.content.decode()
    assert Document.objects.count() == 1


def test_api_adds_a_page(client, base, owner, site):
    client.force_login(owner)
    url = f"/api/knowledge/bases/{base.public_id}/documents/"
    created = client.post(url, {"url": f"{site}/help/returns"})
    assert created.status_code == 201, created.content
    assert created.json()["documents"][0]["name"] == "127.0.0.1-returns.html"
    refused = client.post(url, {"url": "ftp://example.com/x"})
    assert refused.status_code == 400 and "only http://" in refused.json()["error"]["fields"]["url"][0]
