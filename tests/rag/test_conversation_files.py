"""Files attached to a chat message (run API multipart, playground): their text reaches the model;
a file that cannot be used is a 4xx naming it and the reason, and nothing is created."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from builder.services import agent_create, agent_publish
from builder.services.playground import playground_send
from runtime.attachments import split_attachments
from runtime.engine.worker import Worker
from runtime.models import AgentConversation, AgentMessage, AgentRun
from tests.fakes.llm_servers import FakeOpenAIServer, Text
from tests.rag import files

PDF_PAGES = ["The lease starts on 1 March 2027.", "The deposit is 2,400 euros, paid by transfer."]


def work() -> None:
    asyncio.run(Worker(once=True, poll_interval=0.05).run())


@pytest.fixture(scope="module")
def _openai_server():
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def model(_openai_server, settings):
    _openai_server.script.clear()
    _openai_server.requests.clear()
    settings.OPENAI_API_KEY = "sk-test-key"
    settings.OPENAI_BASE_URL = _openai_server.openai_base_url
    settings.AGENT_LLM_MAX_RETRIES = 0
    yield _openai_server
    _openai_server.script.clear()


@pytest.fixture
def agent(owner):
    agent = agent_create(
        owner=owner,
        slug="lease-help",
        name="Lease help",
        config={"system_prompt": "Answer from the files.", "model": "openai:gpt-4o-mini"},
    )
    agent_publish(agent=agent, user=owner)
    return agent


@pytest.fixture
def api(owner) -> APIClient:
    client = APIClient()
    client.force_login(owner)
    return client


def form(text: str, *uploads, **extra) -> dict:
    # what the agent-frontend widget's AgentClient sends: the JSON keys, JSON as text, files parts
    return {
        "agent_key": "lease-help",
        "messages": json.dumps([{"role": "user", "content": text}]),
        "metadata": json.dumps({"journey_type": "general"}),
        "files": list(uploads),
        **extra,
    }


def nothing_created() -> bool:
    return not (
        AgentRun.objects.exists() or AgentConversation.objects.exists() or AgentMessage.objects.exists()
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["/api/agents/runs/", "/api/agent-runtime/runs/"])
def test_a_pdf_and_a_docx_sent_with_a_message_reach_the_model(api, agent, model, path):
    model.push(Text(["The deposit is 2,400 euros."]))
    created = api.post(
        path,
        form(
            "How much is the deposit?",
            files.upload("lease.pdf", files.pdf_bytes(PDF_PAGES)),
            files.upload("policy.docx", files.docx_bytes()),
        ),
        format="multipart",
    )
    assert created.status_code == 201, created.json()
    work()
    run = AgentRun.objects.get(pk=created.json()["id"])
    assert run.status == "succeeded", run.error
    sent = model.requests[-1].json["messages"]
    user = [m for m in sent if m["role"] == "user"][-1]["content"]
    assert user.startswith("How much is the deposit?\n\n")
    assert '<attached_file name="lease.pdf" type="pdf"' in user
    assert "[Page 2]\nThe deposit is 2,400 euros, paid by transfer." in user
    assert '<attached_file name="policy.docx" type="docx"' in user
    assert "Customers may return goods within 30 days for a full refund." in user
    assert "Europe | 3" in user  # the Word table's row

    # the next turn of the conversation still carries the files' text to the model
    model.push(Text(["On 1 March 2027."]))
    again = api.post(
        path,
        {"agent_key": "lease-help", "conversation_id": created.json()["conversation_id"],
         "messages": [{"role": "user", "content": "And when does it start?"}]},
        format="json",
    )  # fmt: skip
    assert again.status_code == 201, again.json()
    work()
    history = json.dumps(model.requests[-1].json["messages"])
    assert "The lease starts on 1 March 2027." in history and "And when does it start?" in history

    stored = AgentMessage.objects.filter(conversation_id=created.json()["conversation_id"], role="user")
    said = split_attachments(stored.order_by("seq").first().content)
    assert said.text == "How much is the deposit?"
    assert [(f.name, f.kind) for f in said.files] == [("lease.pdf", "pdf"), ("policy.docx", "docx")]


HOSTILE = [
    pytest.param(
        [("invoice.pdf", b"\x89PNG\r\n\x1a\n" + b"\0" * 64)], {}, ["invoice.pdf: this is a PNG image"],
        id="png-named-pdf",
    ),
    pytest.param(
        [("report.docx", files.pdf_bytes(["hello"]))], {},
        ["report.docx: the name says Word, but the content is PDF"], id="pdf-named-docx",
    ),
    pytest.param(
        [("bomb.docx", files.zip_bomb_docx())], {"RAG_MAX_UNZIPPED_BYTES": 1024 * 1024},
        ["bomb.docx: the file would unpack to 3 MB (a zip bomb?)"], id="zip-bomb",
    ),
    pytest.param(
        [("secret.pdf", files.encrypted_pdf_bytes())], {},
        ["secret.pdf: the PDF is password protected"], id="encrypted-pdf",
    ),
    pytest.param(
        [("big.txt", b"x" * 2048)], {"AGENT_ATTACHMENT_MAX_BYTES": 1024},
        ["big.txt: the file is 2 KB; attach files of at most 1 KB."], id="over-size",
    ),
    pytest.param(
        [(f"{n}.txt", b"x") for n in range(4)], {"AGENT_ATTACHMENT_MAX_FILES": 3},
        ["Attach at most 3 files to one message (4 were sent)."], id="over-count",
    ),
    pytest.param(
        [("a.txt", b"a" * 30), ("b.txt", b"b" * 30)], {"AGENT_ATTACHMENT_MAX_CHARS": 50},
        ["b.txt: its text is 30 characters; the files of one message may hold at most 50 in all."],
        id="over-text",
    ),
    pytest.param([("empty.txt", b"")], {}, ["empty.txt: the file is empty."], id="empty"),
    pytest.param(
        [("../../etc/passwd\x00.pdf", b"\x7fELF" + b"\0" * 32)], {}, ["passwd.pdf: this is a program"],
        id="path-and-nul-in-name",
    ),
    pytest.param(
        [("ok.txt", b"fine"), ("photo.pdf", b"\xff\xd8\xff\xe0"), ("secret.pdf", files.encrypted_pdf_bytes())],
        {}, ["photo.pdf: this is a JPEG image", "secret.pdf: the PDF is password protected"],
        id="each-bad-file-named",
    ),
]  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize(("uploads", "overrides", "says"), HOSTILE)
def test_a_file_that_cannot_be_used_is_a_400_naming_it_and_nothing_is_created(
    api, agent, settings, uploads, overrides, says
):
    for name, value in overrides.items():
        setattr(settings, name, value)
    refused = api.post(
        "/api/agents/runs/",
        form("Read this", *[files.upload(name, content) for name, content in uploads]),
        format="multipart",
    )
    assert refused.status_code == 400, refused.content
    error = refused.json()["error"]
    assert error["code"] == "invalid" and error["message"].startswith("files: ")
    assert len(error["fields"]["files"]) == len(says)
    for message, expected in zip(error["fields"]["files"], says, strict=True):
        assert message.startswith(expected), message
    assert nothing_created()


@pytest.mark.django_db
def test_a_parser_that_hangs_fails_the_upload_in_time_and_the_next_one_works(api, agent, settings):
    settings.AGENT_ATTACHMENT_TIMEOUT = 1
    # about 7 MB of nested HTML: BeautifulSoup needs far longer than a second for it
    heavy = "<html><body>" + "<div><p>word <b>bold</b> <i>it</i></p></div>" * 160_000 + "</body></html>"
    started = time.monotonic()
    refused = api.post(
        "/api/agents/runs/", form("Read this", files.upload("heavy.html", heavy)), format="multipart"
    )
    assert time.monotonic() - started < 15  # stopped at the deadline, not when the parse would end
    assert refused.status_code == 400, refused.content
    assert refused.json()["error"]["fields"]["files"][0].startswith(
        "heavy.html: reading the file took longer than"
    )
    assert nothing_created()

    settings.AGENT_ATTACHMENT_TIMEOUT = 30
    created = api.post(
        "/api/agents/runs/",
        form("Read this", files.upload("notes.md", "# Notes\nThe boiler is serviced in May.")),
        format="multipart",
    )
    assert created.status_code == 201, created.json()
    assert "The boiler is serviced in May." in AgentMessage.objects.get(role="user").content


@pytest.mark.django_db
def test_a_parser_that_runs_out_of_memory_fails_the_upload_with_the_reason(api, agent, settings):
    settings.RAG_PARSE_MEMORY_MB = 64
    settings.AGENT_ATTACHMENT_MAX_CHARS = 10_000_000
    refused = api.post(
        "/api/agents/runs/",
        form("Read this", files.upload("big.txt", "word " * 2_000_000)),
        format="multipart",
    )
    assert refused.status_code == 400, refused.content
    assert refused.json()["error"]["fields"]["files"][0].startswith(
        "big.txt: reading the file needed more than 64 MB of memory"
    )
    assert nothing_created()


@pytest.mark.django_db
def test_a_parser_that_cannot_start_is_a_400_saying_to_try_again(api, agent, monkeypatch):
    import rag.contain

    class NoProcesses:
        """What a process limit (or no memory to fork) looks like to the parent."""

        def __init__(self, real):
            self.real = real

        def __getattr__(self, name):
            return getattr(self.real, name)

        def Process(self, *args, **kwargs):  # noqa: N802 - multiprocessing's name
            process = self.real.Process(*args, **kwargs)

            def start():
                raise BlockingIOError(11, "Resource temporarily unavailable")

            process.start = start
            return process

    limited = NoProcesses(rag.contain._mp_context())
    monkeypatch.setattr(rag.contain, "_mp_context", lambda: limited)
    refused = api.post(
        "/api/agents/runs/", form("Read this", files.upload("notes.md", "# Notes")), format="multipart"
    )
    assert refused.status_code == 400, refused.content
    assert refused.json()["error"]["fields"]["files"] == [
        "notes.md: the file could not be read just now (the server could not start its reader); "
        "try again in a moment."
    ]
    assert nothing_created()


# --- the playground ---------------------------------------------------------------------------
@pytest.fixture
def browser(owner) -> Client:
    client = Client()
    client.force_login(owner)
    return client


@pytest.mark.django_db
def test_the_playground_sends_files_with_the_message_and_shows_them_after_a_reload(browser, agent):
    send = reverse("builder:agent-playground-send", args=[agent.public_id])
    answered = browser.post(
        send,
        {
            "message": "What does the lease say?",
            "files": [files.upload("lease.pdf", files.pdf_bytes(PDF_PAGES))],
        },
    )
    assert answered.status_code == 201, answered.content
    content = AgentMessage.objects.get(role="user").content
    assert content.startswith('What does the lease say?\n\n<attached_file name="lease.pdf"')
    assert "The deposit is 2,400 euros" in content

    page = browser.get(
        reverse("builder:agent-edit", args=[agent.public_id]),
        {"conversation": answered.json()["conversation_id"]},
    ).content.decode()
    assert '<div class="b-msg b-msg--user">What does the lease say?</div>' in page
    assert 'aria-label="Attached files"' in page and "lease.pdf" in page
    assert "The deposit is 2,400 euros" not in page  # the file's text is for the model, not the bubble
    turn = browser.get(reverse("builder:playground-turn", args=[answered.json()["run_id"]])).content.decode()
    assert "lease.pdf" in turn


@pytest.mark.django_db
def test_retrying_the_last_message_keeps_its_files(owner, agent):
    run = playground_send(
        user=owner,
        text="Summarise",
        agent=agent,
        files=[files.upload("notes.txt", "The roof was fixed in 2024.")],
    )
    playground_send(
        user=owner, text="Summarise briefly", agent=agent, conversation=run.conversation, replace_last=True
    )
    (last,) = AgentMessage.objects.filter(role="user")
    said = split_attachments(last.content)
    assert said.text == "Summarise briefly" and [f.name for f in said.files] == ["notes.txt"]
    assert "The roof was fixed in 2024." in last.content


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("secret.pdf", files.encrypted_pdf_bytes(), "secret.pdf: the PDF is password protected"),
        ("notes.pdf", b"\x89PNG\r\n\x1a\n", "notes.pdf: this is a PNG image"),
    ],
)
def test_the_playground_refuses_a_bad_file_with_its_reason_and_writes_nothing(
    browser, agent, name, content, says
):
    send = reverse("builder:agent-playground-send", args=[agent.public_id])
    refused = browser.post(send, {"message": "Read this", "files": [files.upload(name, content)]})
    assert refused.status_code == 422
    assert refused.json()["field"] == "files" and refused.json()["message"].startswith(says)
    assert nothing_created()


@pytest.mark.django_db
def test_a_stranger_cannot_send_files_to_someone_elses_agent(agent, other_staff):
    client = Client()
    client.force_login(other_staff)
    send = reverse("builder:agent-playground-send", args=[agent.public_id])
    refused = client.post(send, {"message": "hi", "files": [files.upload("a.txt", "x")]})
    assert refused.status_code == 404
    assert nothing_created()
