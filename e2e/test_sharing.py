"""Sharing in a real browser: the owner shares an agent with a colleague as viewer; the colleague
finds it under "Shared with me", chats with its draft in the playground, cannot save it and is told
why; upgraded to editor they save; they never get to publish; a page left open after a demotion
is refused with the same words."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from e2e.conftest import shot

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def colleague(transactional_db):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user(
        "ana", "ana@example.com", "pw-ana-12345", is_staff=True, first_name="Ana", last_name="Lopez"
    )


def _sign_in(browser, live, username: str, password: str):
    context = browser.new_context(base_url=live, viewport={"width": 1440, "height": 1000})
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto("/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#builder").get_by_role("heading", name="Agents")).to_be_visible()
    page.js_errors = errors  # type: ignore[attr-defined]
    return context, page


def _row(page, who: str):
    return page.locator("#sharing tr", has_text=who)


def test_share_as_viewer_then_editor_never_publisher(page, browser, live, staff, colleague):
    from builder.models import Agent
    from builder.services import agent_create

    agent = agent_create(
        owner=staff, slug="support-bot", name="Support bot", config={"system_prompt": "Help."}
    )

    # the owner opens the agent: the sharing panel loads on its page
    page.goto(f"/agents/{agent.public_id}/")
    sharing = page.locator("#sharing")
    expect(sharing.get_by_role("heading", name="Sharing")).to_be_visible()
    expect(_row(page, "builder")).to_contain_text("(creator)")

    # a name typed but nobody picked: the message is next to the field, nothing shared
    page.get_by_label("Colleague to share with").fill("an")
    expect(page.get_by_label("Ana Lopez")).to_be_visible()
    page.get_by_role("button", name="Share", exact=True).click()
    expect(sharing.locator("#share-q-error")).to_contain_text("No colleague is called 'an'")
    shot(page, "sharing-01-nobody-picked")

    page.get_by_label("Colleague to share with").fill("lopez")
    page.get_by_label("Ana Lopez").check()
    page.get_by_label("Role", exact=True).select_option("viewer")
    page.get_by_role("button", name="Share", exact=True).click()
    expect(sharing.get_by_role("status")).to_contain_text(
        "Shared with Ana Lopez <ana@example.com> as viewer."
    )
    expect(sharing.locator(".b-activity")).to_contain_text("shared Ana Lopez")
    shot(page, "sharing-02-shared-as-viewer")

    # the colleague finds it under "Shared with me", with their role
    ana_context, ana = _sign_in(browser, live, "ana", "pw-ana-12345")
    try:
        ana.get_by_label("Shared with me").check()
        row = ana.locator("#agent-rows tr", has_text="Support bot")
        expect(row).to_contain_text("viewer")
        expect(ana.locator("#agent-rows tbody tr")).to_have_count(1)
        shot(ana, "sharing-03-shared-with-me")
        row.get_by_role("link", name=re.compile("Support bot")).click()

        # a viewer: told so, the form cannot be saved, no publish form, but the playground answers
        expect(ana.locator("#role-note")).to_contain_text("You are a viewer of this agent")
        expect(ana.get_by_role("button", name="Save draft")).to_be_disabled()
        expect(ana.locator("#publish-form")).to_have_count(0)
        ana.get_by_label("Message").fill("Hello from Ana")
        ana.get_by_role("button", name="Send").click()
        turn = ana.locator("#pg-chat .b-turn").last
        expect(turn.locator(".b-msg--assistant").first).to_contain_text(re.compile("demo", re.I))
        expect(turn.locator(".b-usage")).to_contain_text("succeeded")
        shot(ana, "sharing-04-viewer-playground")

        # the owner makes her an editor
        _row(page, "Ana Lopez").get_by_label("Role of Ana Lopez").select_option("editor")
        _row(page, "Ana Lopez").get_by_role("button", name="Change role").click()
        expect(sharing.get_by_role("status")).to_contain_text("Role changed to editor.")

        ana.reload()
        expect(ana.locator("#role-note")).to_have_count(0)
        ana.get_by_label("System prompt").fill("Help, kindly. (Ana)")
        ana.get_by_role("button", name="Save draft").click()
        expect(ana.get_by_text("Draft saved (revision 2)")).to_be_visible()
        expect(ana.locator("#publish-form")).to_have_count(0)  # editors do not publish
        token = ana.evaluate(
            "() => JSON.parse(document.getElementById('builder').getAttribute('hx-headers'))['X-CSRFToken']"
        )
        status = ana.evaluate(
            """async ([url, token]) => (await fetch(url, {method: 'POST', headers: {'X-CSRFToken': token}})).status""",
            [f"/agents/{agent.public_id}/publish/", token],
        )
        assert status == 403
        shot(ana, "sharing-05-editor-saved")

        # demoted while her page is open: her next save is refused, and the page says why
        _row(page, "Ana Lopez").get_by_label("Role of Ana Lopez").select_option("viewer")
        _row(page, "Ana Lopez").get_by_role("button", name="Change role").click()
        expect(sharing.get_by_role("status")).to_contain_text("Role changed to viewer.")
        ana.get_by_label("System prompt").fill("Sneaky change")
        ana.get_by_role("button", name="Save draft").click()
        notice = ana.locator("#b-notice")
        expect(notice).to_be_visible()
        expect(notice).to_contain_text(
            "You are a viewer of this agent: only editors and owners may change it."
        )
        shot(ana, "sharing-06-refused-after-demotion")
        assert Agent.objects.get(pk=agent.pk).draft.config["system_prompt"] == "Help, kindly. (Ana)"
        assert agent.versions.count() == 0

        # the last owner stays: the creator's row has no controls; the activity lists it all
        expect(_row(page, "builder").get_by_role("button")).to_have_count(0)
        expect(sharing.locator(".b-activity li")).to_have_count(3)
        shot(page, "sharing-07-owner-activity")
        assert not ana.js_errors, ana.js_errors
    finally:
        ana_context.close()


def test_invite_someone_without_an_account(page, browser, live, staff):
    """The owner invites by email; the invitee sets a password, lands on the agent, sees only it,
    edits it as editor and cannot publish; a mistyped password is explained on the form."""
    import time
    from pathlib import Path

    from django.conf import settings

    from builder.models import Agent
    from builder.services import agent_create

    agent = agent_create(owner=staff, slug="faq-bot", name="FAQ bot", config={"system_prompt": "Answer."})
    agent_create(owner=staff, slug="private-bot", name="Private bot", config={"system_prompt": "Secret."})
    mail_dir = Path(settings.BASE_DIR) / ".data" / "test-mail"
    sent_before = {p.name for p in mail_dir.glob("*")} if mail_dir.exists() else set()

    page.goto(f"/agents/{agent.public_id}/")
    sharing = page.locator("#sharing")
    page.get_by_label("Email", exact=True).fill("builder@example.com")  # has an account already
    page.get_by_role("button", name="Invite", exact=True).click()
    expect(sharing.locator("#invite-email-error")).to_contain_text("already has an account")
    page.get_by_label("Email", exact=True).fill("newbie@example.com")
    page.get_by_label("Their role").select_option("editor")
    page.get_by_role("button", name="Invite", exact=True).click()
    expect(sharing.get_by_role("status")).to_contain_text("Invited newbie@example.com as editor")
    shot(page, "invite-01-sent")

    # the email, as the file backend of the live server wrote it
    deadline = time.monotonic() + 10
    body = ""
    while not body and time.monotonic() < deadline:
        for path in mail_dir.glob("*"):
            if path.name not in sent_before and "newbie@example.com" in path.read_text():
                body = path.read_text()
        if not body:
            time.sleep(0.1)  # polling a file the server wrote, with a deadline
    link = re.search(r"https?://\S+/invitations/\S+/", body.replace("=\n", "")).group(0)
    path = "/" + link.split("/", 3)[3]

    context = browser.new_context(base_url=live, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    newbie = context.new_page()
    try:
        newbie.goto(path)
        expect(newbie.get_by_role("heading", name="Join FAQ bot")).to_be_visible()
        newbie.get_by_label("Username").fill("newbie")
        newbie.get_by_label("Password", exact=True).fill("a-long-enough-passphrase-42")
        newbie.get_by_label("Password again").fill("a-different-passphrase-42")
        newbie.get_by_role("button", name="Create my account").click()
        expect(newbie.locator("#inv-password2-error")).to_contain_text("The two passwords differ")
        shot(newbie, "invite-02-password-mismatch")
        newbie.get_by_label("Password", exact=True).fill("a-long-enough-passphrase-42")
        newbie.get_by_label("Password again").fill("a-long-enough-passphrase-42")
        newbie.get_by_role("button", name="Create my account").click()

        # signed in, on the agent, as editor
        expect(newbie.locator("#builder").get_by_role("heading", name=re.compile("FAQ bot"))).to_be_visible()
        expect(newbie.locator("#sharing")).to_contain_text("Your role: editor")
        newbie.get_by_label("Instructions (system prompt)").fill("Answer briefly.")
        newbie.get_by_role("button", name="Save draft").click()
        expect(newbie.get_by_text("Draft saved (revision 2)")).to_be_visible()
        expect(newbie.locator("#publish-form")).to_have_count(0)
        shot(newbie, "invite-03-editor-on-agent")
        newbie.get_by_role("link", name="Agents", exact=True).first.click()
        expect(newbie.locator("#agent-rows tbody tr")).to_have_count(1)
        expect(newbie.locator("#agent-rows")).not_to_contain_text("Private bot")

        # the link worked once
        newbie.goto(path)
        expect(newbie.get_by_role("alert")).to_contain_text("already used")
        assert Agent.objects.get(pk=agent.pk).draft.config["system_prompt"] == "Answer briefly."
        assert agent.versions.count() == 0
    finally:
        context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_sharing_and_teams_pages_have_no_serious_axe_violations(page, staff, colleague, scheme):
    from axe_playwright_python.sync_playwright import Axe
    from django.contrib.auth.models import Group, Permission

    from builder.services import agent_create
    from builder.services.sharing import share_add
    from e2e.test_accessibility import _serious

    staff.user_permissions.add(Permission.objects.get(codename="manage_teams"))
    team = Group.objects.create(name="Support")
    team.user_set.add(colleague)
    agent = agent_create(owner=staff, slug="axe-bot", name="Axe bot", config={"system_prompt": "Hi."})
    share_add(obj=agent, actor=staff, role="editor", user=colleague)
    share_add(obj=agent, actor=staff, role="viewer", group=team)
    axe = Axe()
    page.emulate_media(color_scheme=scheme)
    found = {}
    for url in (f"/agents/{agent.public_id}/sharing/", "/teams/", "/?shared=1", "/tools/?shared=1"):
        page.goto(url)
        expect(page.locator("#builder")).to_be_visible()
        if "sharing" in url:
            page.get_by_label("Colleague to share with").fill("lo")
            expect(page.locator("#people-results").get_by_label("Ana Lopez")).to_be_visible()
        serious = _serious(axe.run(page, context="#builder"))
        if serious:
            found[url] = serious
    shot(page, f"sharing-axe-{scheme}")
    assert not found, found


def test_a_team_is_made_in_the_builder_and_an_agent_shared_with_it(page, browser, live, staff, colleague):
    from django.contrib.auth.models import Permission

    from builder.services import agent_create

    staff.user_permissions.add(Permission.objects.get(codename="manage_teams"))
    agent = agent_create(owner=staff, slug="team-bot", name="Team bot", config={"system_prompt": "Hi."})

    page.goto("/")
    page.locator("#builder").get_by_role("link", name="Teams").click()
    page.get_by_role("button", name="Create team").click()
    expect(page.locator("#team-name-error")).to_contain_text("Give the team a name")
    page.get_by_label("Team name").fill("Support")
    page.get_by_role("button", name="Create team").click()
    expect(page.locator("#teams").get_by_role("status")).to_contain_text("Created the team Support")
    page.get_by_label("Add to Support (username or email)").fill("nobody")
    page.get_by_role("button", name="Add member").click()
    expect(page.locator("#teams").get_by_role("alert")).to_contain_text("No colleague is called 'nobody'")
    page.get_by_label("Add to Support (username or email)").fill("ana@example.com")
    page.get_by_role("button", name="Add member").click()
    expect(page.locator("#teams").get_by_role("status")).to_contain_text("Added ana to Support")
    shot(page, "teams-01-member-added")

    page.goto(f"/agents/{agent.public_id}/")
    page.get_by_label("Or a team").select_option(label="Support")
    page.get_by_label("Role", exact=True).select_option("editor")
    page.get_by_role("button", name="Share", exact=True).click()
    expect(page.locator("#sharing").get_by_role("status")).to_contain_text(
        "Shared with Team Support as editor."
    )

    ana_context, ana = _sign_in(browser, live, "ana", "pw-ana-12345")
    try:
        ana.get_by_label("Shared with me").check()
        expect(ana.locator("#agent-rows tr", has_text="Team bot")).to_contain_text("editor")
        shot(ana, "teams-02-shared-through-team")
    finally:
        ana_context.close()
