"""Files a widget visitor attaches to a message (/api/widget/messages/ as a multipart form).

The owner turns attachments on (off by default) and may tighten the server's caps; the files
are read through the runtime's one seam (type sniffed, text extracted in a contained process),
only for a visitor the widget would admit (origin, limits, budget), and a file that cannot be
used is a 4xx naming it and the reason that leaves nothing behind."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from django.core.files.storage import default_storage
from rest_framework.test import APIClient

from rag.models import Document
from runtime import attachments
from runtime.channels.models import WidgetChannel
from runtime.channels.services import widget_channel_create, widget_channel_update, widget_settings_clean
from runtime.engine.worker import Worker
from runtime.models import AgentConversation, AgentMessage, AgentRun
from tests.rag import files

pytestmark = pytest.mark.django_db
SITE = "https://shop.example.com"
W = "/api/widget"
LEASE = ["The lease starts on 1 March 2027.", "The deposit is 2,400 euros, paid by transfer."]


@pytest.fixture
def channel(published, owner) -> WidgetChannel:
    return widget_channel_create(
        agent_key="support", user=owner, allowed_origins=[SITE], attachments_enabled=True
    )


@pytest.fixture
def reads(monkeypatch) -> list[str]:
    """The names of the files the server read (parsed), through the registered reader."""
    seen: list[str] = []
    reader = attachments.file_reader()

    def recording(*, name, **kwargs):
        seen.append(name)
        return reader(name=name, **kwargs)

    monkeypatch.setattr(attachments, "_reader", recording)
    return seen


def visitor(channel: WidgetChannel, origin: str = SITE) -> APIClient:
    minted = APIClient().post(
        f"{W}/session/", {"key": channel.publishable_key}, format="json", HTTP_ORIGIN=SITE
    )
    assert minted.status_code == 201, minted.content
    client = APIClient()
    client.credentials(HTTP_X_ANONYMOUS_TOKEN=minted.json()["token"], HTTP_ORIGIN=origin)
    return client


def send(client: APIClient, text: str, *uploads, **extra):
    return client.post(
        f"{W}/messages/", {"message": text, "files": list(uploads), **extra}, format="multipart"
    )


def nothing_created() -> bool:
    return not (
        AgentRun.objects.exists()
        or AgentConversation.objects.exists()
        or AgentMessage.objects.exists()
        or Document.objects.exists()
    )


def stored_files() -> list[str]:
    try:
        folders, names = default_storage.listdir("")
    except FileNotFoundError:
        return []
    return folders + names


@pytest.mark.django_db(transaction=True)
def test_a_visitors_pdf_reaches_the_model_and_the_conversation_names_it(channel):
    client = visitor(channel)
    before = stored_files()
    sent = send(client, "How much is the deposit?", files.upload("lease.pdf", files.pdf_bytes(LEASE)))
    assert sent.status_code == 201, sent.content
    run = AgentRun.objects.get(pk=sent.json()["run_id"])
    content = run.input["messages"][0]["content"]
    assert content.startswith('How much is the deposit?\n\n<attached_file name="lease.pdf" type="pdf"')
    assert "[Page 2]\nThe deposit is 2,400 euros, paid by transfer." in content
    assert run.metadata["widget_channel"] == str(channel.pk)  # admitted like any visitor's message
    assert stored_files() == before  # the file's text is in the message; no file is kept

    # the (demo) model echoes what it received: the file's text reached it
    asyncio.run(Worker(once=True, poll_interval=0.05).run())
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    answer = AgentMessage.objects.get(run=run, role="assistant").content
    assert "The deposit is 2,400 euros, paid by transfer." in answer

    # the widget shows what was typed and the file's name, not its text
    shown = client.get(f"{W}/conversations/{sent.json()['conversation_id']}/").json()["messages"]
    assert shown[0]["role"] == "user" and shown[0]["content"] == "How much is the deposit?"
    assert shown[0]["files"] == [{"name": "lease.pdf", "size": len(files.pdf_bytes(LEASE))}]
    assert shown[1]["role"] == "assistant" and shown[1]["files"] == []


def test_files_alone_may_be_sent_and_a_path_in_a_name_is_dropped(channel):
    client = visitor(channel)
    sent = send(client, "", files.upload("../../etc/notes.txt", "The boiler is serviced in May."))
    assert sent.status_code == 201, sent.content
    content = AgentMessage.objects.get(role="user").content
    assert content.startswith('<attached_file name="notes.txt" type="txt"') and "../" not in content
    shown = client.get(f"{W}/conversations/{sent.json()['conversation_id']}/").json()["messages"]
    assert shown[0]["content"] == "" and [f["name"] for f in shown[0]["files"]] == ["notes.txt"]


def test_the_session_tells_the_widget_what_it_may_attach(channel, owner, settings):
    settings.AGENT_ATTACHMENT_MAX_FILES = 5
    settings.AGENT_ATTACHMENT_MAX_BYTES = 10 * 1024 * 1024

    def mint():
        minted = APIClient().post(
            f"{W}/session/", {"key": channel.publishable_key}, format="json", HTTP_ORIGIN=SITE
        )
        return minted.json()["config"]["attachments"]

    assert mint() == {"max_files": 5, "max_bytes": 10 * 1024 * 1024, "max_size": "10 MB"}
    widget_channel_update(channel=channel, user=owner, attachment_max_files=2, attachment_max_mb="1.5")
    assert mint() == {"max_files": 2, "max_bytes": 1572864, "max_size": "1.5 MB"}
    # the server's caps lowered later still win over the channel's
    settings.AGENT_ATTACHMENT_MAX_FILES = 1
    assert mint()["max_files"] == 1
    widget_channel_update(channel=channel, user=owner, attachments_enabled=False)
    assert mint() is None


HOSTILE = [
    pytest.param(
        [("invoice.pdf", b"\x89PNG\r\n\x1a\n" + b"\0" * 64)], {}, ["invoice.pdf: this is a PNG image"],
        id="disguised-type",
    ),
    pytest.param(
        [("big.txt", b"x" * 20 * 1024)], {"attachment_max_mb": "0.01"},
        ["big.txt: the file is 20 KB; attach files of at most 10 KB."], id="too-big-for-the-widget",
    ),
    pytest.param(
        [(f"{n}.txt", b"x") for n in range(3)], {"attachment_max_files": 2},
        ["Attach at most 2 files to one message (3 were sent)."], id="too-many-for-the-widget",
    ),
    pytest.param([("empty.txt", b"")], {}, ["empty.txt: the file is empty."], id="empty"),
    pytest.param(
        [("..\\..\\windows\\run.pdf", b"\x7fELF" + b"\0" * 32)], {}, ["run.pdf: this is a program"],
        id="path-separators-in-name",
    ),
    pytest.param(
        [("ok.txt", b"fine"), ("photo.pdf", b"\xff\xd8\xff\xe0"), ("secret.pdf", files.encrypted_pdf_bytes())],
        {}, ["photo.pdf: this is a JPEG image", "secret.pdf: the PDF is password protected"],
        id="each-bad-file-named",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("uploads", "caps", "says"), HOSTILE)
def test_a_file_that_cannot_be_used_is_a_400_naming_it_and_nothing_is_created(
    channel, owner, uploads, caps, says
):
    if caps:
        widget_channel_update(channel=channel, user=owner, **caps)
    before = stored_files()
    refused = send(visitor(channel), "Read this", *[files.upload(name, content) for name, content in uploads])
    assert refused.status_code == 400, refused.content
    error = refused.json()["error"]
    assert error["code"] == "invalid_files"
    assert len(error["fields"]["files"]) == len(says)
    for message, expected in zip(error["fields"]["files"], says, strict=True):
        assert message.startswith(expected), message
    assert error["message"].startswith(says[0])
    assert nothing_created() and stored_files() == before


def test_a_widget_without_attachments_refuses_files_unread(published, owner, reads):
    channel = widget_channel_create(agent_key="support", user=owner, allowed_origins=[SITE])
    assert channel.attachments_enabled is False  # off unless the owner turns it on
    refused = send(visitor(channel), "Read this", files.upload("notes.txt", "hello"))
    assert refused.status_code == 403, refused.content
    error = refused.json()["error"]
    assert error["code"] == "attachments_disabled" and "notes.txt" in error["message"]
    assert error["fields"]["files"] == [error["message"]]
    assert reads == [] and nothing_created()
    # the same visitor's message without files still goes
    assert send(visitor(channel), "Just text").status_code == 201


def test_files_from_an_origin_the_widget_does_not_allow_are_refused_unread(channel, reads):
    refused = send(visitor(channel, origin="https://evil.example.net"), "hi", files.upload("a.txt", "x"))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "origin_not_allowed"
    assert reads == [] and nothing_created()


def test_a_visitor_over_the_daily_limit_gets_a_429_and_no_file_is_read(channel, owner, reads):
    widget_channel_update(channel=channel, user=owner, messages_per_visitor_per_day=1)
    client = visitor(channel)
    assert send(client, "first", files.upload("a.txt", "one")).status_code == 201
    assert reads == ["a.txt"]
    refused = send(client, "second", files.upload("b.txt", "two"))
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "daily_limit"
    assert int(refused["Retry-After"]) > 0
    assert reads == ["a.txt"] and AgentRun.objects.count() == 1


def test_a_spent_budget_refuses_files_unread_and_reserves_nothing(channel, reads, settings):
    from runtime.channels.api_key_models import AgentBudget, AgentDailySpend, SpendReservation

    settings.AGENT_BUDGET_MIN_RESERVE_USD = "0.01"
    AgentBudget.objects.create(agent_key="support", daily_budget_usd=Decimal("0.01"))
    client = visitor(channel)
    assert send(client, "first", files.upload("a.txt", "one")).status_code == 201
    refused = send(client, "second", files.upload("b.txt", "two"))
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "budget_exhausted"
    assert reads == ["a.txt"]
    # the check before reading kept nothing: one run, one reservation
    assert AgentRun.objects.count() == 1 and SpendReservation.objects.count() == 1
    assert AgentDailySpend.objects.get(agent_key="support").reserved_usd == Decimal("0.01")


def test_a_message_sent_again_gets_its_run_back_without_reading_its_files_again(channel, owner, reads):
    widget_channel_update(channel=channel, user=owner, messages_per_visitor_per_day=1)
    client = visitor(channel)
    first = send(client, "once", files.upload("a.txt", "one"), idempotency_key="k-1")
    # the answer was lost; the widget sends the same message again: same run, not a 429
    again = send(client, "once", files.upload("a.txt", "one"), idempotency_key="k-1")
    assert first.status_code == 201 and again.status_code == 201, again.content
    assert again.json()["run_id"] == first.json()["run_id"]
    assert reads == ["a.txt"] and AgentRun.objects.count() == 1


def test_a_body_larger_than_the_widget_takes_is_a_413_before_it_is_read(channel, owner, reads):
    widget_channel_update(channel=channel, user=owner, attachment_max_files=1, attachment_max_mb="0.01")
    refused = send(visitor(channel), "big", files.upload("big.txt", b"x" * 400 * 1024))
    assert refused.status_code == 413, refused.content
    error = refused.json()["error"]
    assert error["code"] == "request_too_large"
    assert error["message"].endswith("this chat takes at most 1 files of 10 KB each.")
    assert reads == [] and nothing_created()


def test_a_file_under_another_part_name_is_refused(channel):
    refused = visitor(channel).post(
        f"{W}/messages/", {"message": "hi", "file": files.upload("a.txt", "x")}, format="multipart"
    )
    assert refused.status_code == 400 and "file" in refused.json()["error"]["fields"]
    assert nothing_created()


def test_a_json_message_is_unchanged(channel):
    sent = visitor(channel).post(f"{W}/messages/", {"message": "Where is my order?"}, format="json")
    assert sent.status_code == 201
    assert AgentMessage.objects.get(role="user").content == "Where is my order?"


def test_the_owners_caps_may_only_tighten_the_servers(settings):
    settings.AGENT_ATTACHMENT_MAX_FILES = 5
    settings.AGENT_ATTACHMENT_MAX_BYTES = 10 * 1024 * 1024
    cleaned, errors = widget_settings_clean(
        {"attachments_enabled": True, "attachment_max_files": "6", "attachment_max_mb": "11"}
    )
    assert errors == {
        "attachment_max_files": [
            "Use a whole number from 1 to 5 (the server's limit), or leave it blank for the server's limit."
        ],
        "attachment_max_mb": [
            "Use a size in MB from 0.01 to 10 (the server's limit), or leave it blank for the server's limit."
        ],
    }
    for bad in ("0", "-1", "lots", "NaN", "1e9", "0.001"):
        assert "attachment_max_mb" in widget_settings_clean({"attachment_max_mb": bad})[1], bad
    cleaned, errors = widget_settings_clean({"attachment_max_files": "2", "attachment_max_mb": "2.5"})
    assert errors == {} and cleaned == {"attachment_max_files": 2, "attachment_max_mb": Decimal("2.50")}
    cleaned, errors = widget_settings_clean({"attachment_max_files": "", "attachment_max_mb": None})
    assert errors == {} and cleaned == {"attachment_max_files": None, "attachment_max_mb": None}
