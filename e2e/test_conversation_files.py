"""Files in a playground conversation, in a real browser: attach with the button (keyboard) or by
dropping on the message box, remove a chip, send, see the file's text reach the (demo) model and the
file named under the message, also after a reload; a file that cannot be read says why next to the
message box and keeps what was typed."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from e2e.conftest import shot
from runtime.models import AgentConversation, AgentRun
from tests.rag import files

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

LEASE = files.pdf_bytes(["The lease starts on 1 March 2027.", "The deposit is 2,400 euros."])

# what a browser hands the page when a file is dropped on it
DROP = """([name, bytes]) => {
  const transfer = new DataTransfer();
  transfer.items.add(new File([new Uint8Array(bytes)], name, {type: 'text/plain'}));
  const box = document.getElementById('pg-message');
  for (const type of ['dragenter', 'dragover', 'drop']) {
    box.dispatchEvent(new DragEvent(type, {bubbles: true, cancelable: true, dataTransfer: transfer}));
  }
}"""


def _attach(page, *uploads: dict) -> None:
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Attach files").click()
    chooser.value.set_files(list(uploads))


def test_attach_send_reload_and_a_file_that_cannot_be_read(page, live):
    page.get_by_role("link", name="New agent").click()
    page.get_by_label("Key").fill("lease-desk")
    page.get_by_label("Name", exact=True).fill("Lease desk")
    page.get_by_role("button", name="Create agent").click()
    expect(page.locator("#builder").get_by_role("heading", name=re.compile("Lease desk"))).to_be_visible()

    chips = page.get_by_role("list", name="Files to send")
    _attach(
        page,
        {"name": "lease.pdf", "mimeType": "application/pdf", "buffer": LEASE},
        {"name": "old.txt", "mimeType": "text/plain", "buffer": b"An outdated note."},
    )
    page.evaluate(DROP, ["rules.md", list(b"# House rules\nNo pets in the flat.")])
    expect(chips.get_by_role("listitem")).to_have_count(3)
    expect(chips).to_contain_text("lease.pdf")
    expect(chips).to_contain_text(re.compile(r"\d+ bytes|KB"))
    shot(page, "files-01-attached", full_page=False)

    # remove one with the keyboard: its × is a labelled button
    page.get_by_role("button", name="Remove old.txt").focus()
    page.keyboard.press("Enter")
    expect(chips.get_by_role("listitem")).to_have_count(2)
    expect(chips).not_to_contain_text("old.txt")

    page.get_by_label("Message").fill("How much is the deposit?")
    page.get_by_role("button", name="Send").click()
    turn = page.locator("#pg-chat .b-turn").last
    # the demo model echoes what it received: the typed text and both files' text
    reply = turn.locator(".b-msg--assistant").first
    # (the web process's first file starts its parser server: 10 s at a load of 12 here)
    expect(reply).to_contain_text("The deposit is 2,400 euros.", timeout=60_000)
    expect(reply).to_contain_text("No pets in the flat.")
    expect(turn.locator(".b-usage")).to_contain_text("succeeded")
    expect(turn.locator(".b-msg--user")).to_have_text("How much is the deposit?")
    sent = turn.get_by_role("list", name="Attached files")
    expect(sent.get_by_role("listitem")).to_have_count(2)
    expect(sent).to_contain_text("lease.pdf")
    expect(sent).to_contain_text("rules.md")
    expect(chips).to_be_hidden()
    expect(page.get_by_label("Message")).to_have_value("")
    shot(page, "files-02-sent", full_page=False)

    # the conversation, reopened, still shows which files went with the message
    conversation = AgentConversation.objects.get(agent_key="lease-desk")
    page.goto(f"{page.url.split('?')[0]}?conversation={conversation.pk}")
    reopened = page.locator("#pg-chat .b-turn").last
    expect(reopened.get_by_role("list", name="Attached files")).to_contain_text("lease.pdf")
    expect(reopened.locator(".b-msg--user")).to_have_text("How much is the deposit?")
    shot(page, "files-03-reloaded", full_page=False)

    # a password-protected PDF: refused with the reason next to the message box; nothing sent,
    # and the typed text and the chip stay for the user to fix
    runs = AgentRun.objects.count()
    _attach(
        page, {"name": "secret.pdf", "mimeType": "application/pdf", "buffer": files.encrypted_pdf_bytes()}
    )
    page.get_by_label("Message").fill("And what is in this one?")
    page.get_by_role("button", name="Send").click()
    status = page.locator("#pg-status")
    expect(status).to_contain_text("secret.pdf: the PDF is password protected")
    expect(page.get_by_label("Message")).to_have_value("And what is in this one?")
    expect(chips).to_contain_text("secret.pdf")
    shot(page, "files-04-refused", full_page=False)
    assert AgentRun.objects.count() == runs

    # too big for the limit: said at once, before anything is sent
    page.get_by_role("button", name="Remove secret.pdf").click()
    _attach(page, {"name": "huge.txt", "mimeType": "text/plain", "buffer": b"x" * (12 * 1024 * 1024 + 1)})
    expect(status).to_contain_text("huge.txt: the file is 12.0 MB; attach files of at most 10 MB.")
    expect(chips).to_be_hidden()
    shot(page, "files-05-too-big", full_page=False)
