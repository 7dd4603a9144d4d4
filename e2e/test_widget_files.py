"""Files in the web widget, in Chromium, on a customer's page on another origin: attach with the
button (keyboard) or by dropping on the message box, remove a chip, send, see the agent's answer
use the file's text and the file named under the message, also after a reload; a file the server
refuses, or one too big for the widget, says why next to the message box and keeps what was typed.
The agent runs the offline demo model, which echoes what it received."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from e2e.conftest import shot
from e2e.test_widget import _channel, _published_agent, host_site, visitor_page  # noqa: F401 - fixtures
from tests.rag import files

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

LEASE = files.pdf_bytes(["The lease starts on 1 March 2027.", "The deposit is 2,400 euros."])

# what a browser hands the page when a file is dropped on the message box
DROP = """(box, [name, bytes]) => {
  const transfer = new DataTransfer();
  transfer.items.add(new File([new Uint8Array(bytes)], name, {type: 'text/markdown'}));
  for (const type of ['dragenter', 'dragover', 'drop']) {
    box.dispatchEvent(new DragEvent(type, {bubbles: true, composed: true, cancelable: true, dataTransfer: transfer}));
  }
}"""


def _intercept_file_choosers(page) -> None:
    """Have Playwright intercept file choosers for the whole page. ``expect_file_chooser`` alone
    turns interception on without waiting, and a key press is fast enough to open the chooser
    before it is on (the widget's click handler ran, with user activation; no chooser event came)."""
    page.on("filechooser", lambda chooser: None)


def _attach_with_the_keyboard(page, dialog, *uploads: dict) -> None:
    attach = dialog.get_by_role("button", name="Attach files")
    attach.focus()
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Enter")
    chooser.value.set_files(list(uploads))


def test_a_visitor_attaches_files_and_the_answer_uses_their_text(visitor_page, host_site, staff):  # noqa: F811
    from runtime.models import AgentRun

    agent = _published_agent(staff, slug="lease-desk", model="demo")
    channel = _channel(staff, agent, [host_site], attachments_enabled=True, attachment_max_mb="1")
    page = visitor_page
    _intercept_file_choosers(page)
    page.goto(f"{host_site}/?key={channel.publishable_key}")
    expect(page.locator("[data-agent-widget]")).to_have_attribute("data-state", "ready")
    page.get_by_role("button", name="Open chat").click()
    dialog = page.get_by_role("dialog", name="Acme help")
    message = dialog.get_by_label("Message")

    chips = dialog.get_by_role("list", name="Files to send")
    expect(chips).to_be_hidden()
    _attach_with_the_keyboard(
        page,
        dialog,
        {"name": "lease.pdf", "mimeType": "application/pdf", "buffer": LEASE},
        {"name": "old.txt", "mimeType": "text/plain", "buffer": b"An outdated note."},
    )
    message.evaluate(DROP, ["rules.md", list(b"# House rules\nNo pets in the flat.")])
    expect(chips.get_by_role("listitem")).to_have_count(3)
    expect(chips).to_contain_text("lease.pdf")
    expect(chips.get_by_role("listitem").last).to_have_text("rules.md 34 bytes×")
    shot(page, "75-widget-files-attached")

    # remove one with the keyboard: its × is a labelled button
    dialog.get_by_role("button", name="Remove old.txt").focus()
    page.keyboard.press("Enter")
    expect(chips.get_by_role("listitem")).to_have_count(2)
    expect(chips).not_to_contain_text("old.txt")

    message.fill("How much is the deposit?")
    message.press("Enter")
    expect(dialog.get_by_role("status")).to_have_text("Sending and reading 2 files…")
    # (the web process's first file starts its parser server: many seconds on a loaded machine)
    expect(dialog.locator(".msg.user")).to_have_text("How much is the deposit?", timeout=60_000)
    sent = dialog.get_by_role("list", name="Attached files")
    expect(sent.get_by_role("listitem")).to_have_count(2)
    expect(sent).to_contain_text("lease.pdf")
    expect(sent).to_contain_text("rules.md")
    expect(chips).to_be_hidden()
    expect(message).to_have_value("")
    # the demo model echoes what it received: the typed text and both files' text
    answer = dialog.locator(".msg.bot").last
    expect(answer).to_contain_text("The deposit is 2,400 euros.", timeout=30_000)
    expect(answer).to_contain_text("No pets in the flat.")
    expect(dialog.get_by_role("button", name="Helpful", exact=True)).to_be_visible()  # the run ended
    shot(page, "76-widget-files-answered")

    # after a reload the message still names its files (their text is not shown)
    page.reload()
    expect(page.locator("[data-agent-widget]")).to_have_attribute("data-state", "ready")
    page.get_by_role("button", name="Open chat").click()
    dialog = page.get_by_role("dialog", name="Acme help")
    expect(dialog.locator(".msg.user")).to_have_text("How much is the deposit?")
    expect(dialog.get_by_role("list", name="Attached files")).to_contain_text("lease.pdf")
    expect(dialog.locator(".msg.bot").last).to_contain_text("The deposit is 2,400 euros.")
    shot(page, "77-widget-files-restored")

    # a picture named .pdf: the server refuses it, saying why next to the message box; nothing
    # is sent, and the typed text and the chip stay for the visitor to fix
    runs = AgentRun.objects.count()
    message = dialog.get_by_label("Message")
    chips = dialog.get_by_role("list", name="Files to send")
    _attach_with_the_keyboard(
        page,
        dialog,
        {"name": "invoice.pdf", "mimeType": "application/pdf", "buffer": b"\x89PNG\r\n\x1a\n" + b"\0" * 64},
    )
    message.fill("And what is in this one?")
    dialog.get_by_role("button", name="Send").click()
    alert = dialog.get_by_role("alert")
    expect(alert).to_contain_text("invoice.pdf: this is a PNG image", timeout=30_000)
    expect(message).to_have_value("And what is in this one?")
    expect(chips).to_contain_text("invoice.pdf")
    expect(dialog.locator(".msg.user")).to_have_count(1)
    shot(page, "78-widget-file-refused")
    assert AgentRun.objects.count() == runs

    # too big for this widget (1 MB): said at once, before anything is sent
    dialog.get_by_role("button", name="Remove invoice.pdf").click()
    expect(alert).to_be_hidden()
    _attach_with_the_keyboard(
        page, dialog, {"name": "huge.txt", "mimeType": "text/plain", "buffer": b"x" * (1024 * 1024 + 300_000)}
    )
    expect(alert).to_have_text("huge.txt: the file is 1.3 MB; attach files of at most 1 MB.")
    expect(chips).to_be_hidden()
    expect(message).to_have_value("And what is in this one?")
    shot(page, "79-widget-file-too-big")
    assert AgentRun.objects.count() == runs


def test_on_a_phone_the_composer_fits_with_files(browser, host_site, staff):  # noqa: F811
    agent = _published_agent(staff, slug="phone-files", model="demo")
    channel = _channel(staff, agent, [host_site], attachments_enabled=True)
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        page = context.new_page()
        page.goto(f"{host_site}/?key={channel.publishable_key}")
        expect(page.locator("[data-agent-widget]")).to_have_attribute("data-state", "ready")
        page.get_by_role("button", name="Open chat").click()
        dialog = page.get_by_role("dialog", name="Acme help")
        with page.expect_file_chooser() as chooser:
            dialog.get_by_role("button", name="Attach files").click()
        chooser.value.set_files(
            [
                {"name": "a-very-long-file-name-for-the-quarterly-report-2026.txt", "mimeType": "text/plain",
                 "buffer": b"Quarterly revenue rose by 12 percent."},
                {"name": "notes.md", "mimeType": "text/markdown", "buffer": b"# Notes\nCall the bank."},
            ]
        )  # fmt: skip
        chips = dialog.get_by_role("list", name="Files to send")
        expect(chips.get_by_role("listitem")).to_have_count(2)
        for part in (
            dialog.get_by_role("button", name="Attach files"),
            dialog.get_by_label("Message"),
            dialog.get_by_role("button", name="Send"),
            chips,
            dialog.get_by_role("button", name="Remove notes.md"),
        ):
            box = part.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, box
        assert dialog.get_by_label("Message").bounding_box()["width"] >= 180
        shot(page, "80-widget-files-phone")
        dialog.get_by_label("Message").fill("Summarise")
        dialog.get_by_role("button", name="Send").click()
        expect(dialog.locator(".msg.bot").last).to_contain_text("Quarterly revenue rose", timeout=60_000)
        expect(dialog.get_by_role("list", name="Attached files")).to_contain_text("notes.md")
        shot(page, "81-widget-files-phone-answered")

        # the attach button, a chip waiting to be sent, a refusal and the sent files' list: axe-clean
        from axe_playwright_python.sync_playwright import Axe

        from e2e.test_accessibility import _serious

        dialog.get_by_label("Message").evaluate(DROP, ["empty.md", []])
        expect(dialog.get_by_role("alert")).to_have_text("empty.md: the file is empty.")
        dialog.get_by_label("Message").evaluate(DROP, ["later.md", list(b"Later.")])
        expect(chips.get_by_role("listitem")).to_have_count(1)
        serious = _serious(Axe().run(page, context="[data-agent-widget]"))
        assert not serious, serious
    finally:
        context.close()


def test_without_the_owners_consent_there_is_no_attach_button(visitor_page, host_site, staff):  # noqa: F811
    agent = _published_agent(staff, slug="no-files", model="demo")
    channel = _channel(staff, agent, [host_site])
    page = visitor_page
    page.goto(f"{host_site}/?key={channel.publishable_key}&mode=inline")
    expect(page.locator("#chat [data-agent-widget]")).to_have_attribute("data-state", "ready")
    expect(page.get_by_role("button", name="Send")).to_be_visible()
    expect(page.get_by_role("button", name="Attach files")).to_have_count(0)
    # a dropped file is not taken either
    page.get_by_label("Message").evaluate(DROP, ["rules.md", list(b"No pets.")])
    expect(page.get_by_role("list", name="Files to send")).to_have_count(0)


def test_the_owner_allows_files_on_the_publish_page_within_the_servers_caps(page, staff):
    agent = _published_agent(staff, slug="files-setup", model="demo")
    _channel(staff, agent, ["https://shop.example.com"])
    page.goto(f"/agents/{agent.public_id}/channels/")
    allow = page.get_by_label("Visitors may attach files")
    expect(allow).not_to_be_checked()  # off by default, and the help says why
    expect(page.get_by_text("Off by default: anyone who opens your site could send files")).to_be_visible()
    frame = page.frame_locator("#widget-preview")
    expect(frame.get_by_role("button", name="Send")).to_be_visible()
    expect(frame.get_by_role("button", name="Attach files")).to_have_count(0)

    allow.check()
    page.get_by_label("Most files per message").fill("9")
    page.get_by_label("Largest file (MB)").fill("a lot")
    page.get_by_role("button", name="Save widget settings").click()
    expect(page.get_by_text("Use a whole number from 1 to 5 (the server's limit)")).to_be_visible()
    expect(page.get_by_text("Use a size in MB from 0.01 to 10 (the server's limit)")).to_be_visible()
    page.get_by_label("Most files per message").scroll_into_view_if_needed()
    shot(page, "82-publish-page-files-errors")
    from runtime.channels.models import WidgetChannel

    assert WidgetChannel.objects.get(agent_key="files-setup").attachments_enabled is False

    page.get_by_label("Most files per message").fill("2")
    page.get_by_label("Largest file (MB)").fill("0.5")
    page.get_by_role("button", name="Save widget settings").click()
    expect(page.get_by_text("Widget settings saved.")).to_be_visible()
    saved = WidgetChannel.objects.get(agent_key="files-setup")
    assert (saved.attachments_enabled, saved.attachment_max_files, str(saved.attachment_max_mb)) == (
        True,
        2,
        "0.50",
    )
    # the preview reloads with the new settings: its chat now has the attach button
    expect(frame.get_by_role("button", name="Attach files")).to_be_visible()
    shot(page, "83-publish-page-files-allowed")
