"""Security headers in a real browser: every builder and admin screen works under the
Content-Security-Policy with no violation, an injected inline script does not run, and a
locked-out sign-in shows a readable page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from e2e.conftest import shot
from runtime.models import AgentRun

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# Reported before any page script runs; Playwright's init scripts are exempt from the page's CSP.
WATCH_CSP = """
document.addEventListener('securitypolicyviolation', (e) => {
  console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || 'inline'} at ${e.sourceFile}:${e.lineNumber}`);
});
"""


@pytest.fixture
def superuser(transactional_db):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-secret-1")


@pytest.fixture
def watched(browser, live):
    """A browser context that records console errors (CSP violations among them) and page errors."""
    context = browser.new_context(base_url=live, viewport={"width": 1440, "height": 1000})
    context.set_default_timeout(15_000)
    context.add_init_script(WATCH_CSP)
    page = context.new_page()
    problems: list[str] = []

    def console(message) -> None:
        # a failed load is recorded with its address by on_response below
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            problems.append(f"{page.url}: {message.text}")

    def on_response(response) -> None:
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):
            problems.append(f"{response.status} {response.url}")

    page.on("console", console)
    page.on("response", on_response)
    page.on("pageerror", lambda exc: problems.append(f"{page.url}: {exc}"))
    page.problems = problems  # type: ignore[attr-defined]
    yield page
    context.close()


def _sign_in(page, username: str, password: str) -> None:
    page.goto("/admin/login/?next=/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def _policy(response) -> str:
    policy = response.headers.get("content-security-policy", "")
    assert "script-src 'self' 'unsafe-eval'" in policy, policy
    assert "'unsafe-inline'" not in policy.split("script-src", 1)[1].split(";", 1)[0]
    return policy


def test_builder_admin_and_api_docs_work_under_the_policy(watched, live, superuser, fake_openai):
    page = watched
    fake_openai.script.clear()
    _policy(page.goto("/admin/login/"))
    _sign_in(page, "root", "pw-root-secret-1")
    expect(page.locator("#builder").get_by_role("heading", name="Agents")).to_be_visible()

    # the builder: create an agent and chat with it (htmx swaps, the SSE stream, Alpine menus)
    page.get_by_role("link", name="New agent").click()
    page.get_by_label("Key").fill("csp-bot")
    page.get_by_label("Name").fill("CSP bot")
    page.get_by_role("button", name="Create agent").click()
    expect(page.locator("#builder").get_by_role("heading", name=re.compile("CSP bot"))).to_be_visible()
    page.get_by_label("Message").fill("Hello")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#pg-chat .b-turn").last.locator(".b-usage")).to_contain_text("succeeded")
    shot(page, "csp-01-playground")
    agent_url = page.url

    pages = [
        "/",
        "/agents/new/",
        agent_url,
        agent_url + "versions/",
        agent_url + "memory/",
        "/tools/",
        "/tools/new/",
        "/systems/",
        "/systems/new/",
        "/import/",
        "/admin/",
        "/admin/runtime/agentrun/",
        "/admin/runtime/agentconversation/",
        "/admin/builder/agent/",
        "/admin/auth/user/",
        "/admin/auth/user/add/",
        f"/admin/auth/user/{superuser.pk}/change/",
        f"/admin/auth/user/{superuser.pk}/password/",
        "/api/docs/",
    ]
    for path in pages:
        response = page.goto(path)
        assert response.status == 200, path
        _policy(response)
        page.wait_for_load_state("load")  # deferred scripts (htmx, Alpine, ours) have run
    # a run's page in the admin, with its events inline
    run = AgentRun.objects.get(agent_key="csp-bot")
    _policy(page.goto(f"/admin/runtime/agentrun/{run.pk}/change/"))
    expect(page.get_by_text("csp-bot").first).to_be_visible()
    shot(page, "csp-02-admin-run")
    page.goto("/api/docs/")
    expect(page.get_by_text("Agent runtime API").first).to_be_visible()
    shot(page, "csp-03-api-docs")

    assert not page.problems, "\n".join(page.problems)


def test_an_injected_inline_script_does_not_run(watched, live, superuser):
    page = watched
    _sign_in(page, "root", "pw-root-secret-1")
    expect(page.locator("#builder").get_by_role("heading", name="Agents")).to_be_visible()
    page.evaluate(
        """() => {
          const s = document.createElement('script'); s.textContent = 'window.__ran = true';
          document.body.appendChild(s);
          const b = document.createElement('button'); b.setAttribute('onclick', 'window.__clicked = true');
          document.body.appendChild(b); b.click();
        }"""
    )
    assert page.evaluate("() => [window.__ran === true, window.__clicked === true]") == [False, False]
    blocked = [p for p in page.problems if "CSP violation: script-src" in p]
    assert len(blocked) == 2, page.problems


def test_a_locked_out_sign_in_shows_a_readable_page(watched, live, superuser):
    page = watched
    for _ in range(4):
        _sign_in(page, "root", "wrong-password")
        expect(page.get_by_text("Please enter the correct username and password")).to_be_visible()
    _sign_in(page, "root", "wrong-password")
    expect(page.get_by_role("heading", name="Too many failed sign-ins")).to_be_visible()
    expect(page.get_by_text("Try again in 15 minutes.")).to_be_visible()
    shot(page, "csp-04-locked-out")
    _sign_in(page, "root", "pw-root-secret-1")  # the right password does not get in while locked
    expect(page.get_by_role("heading", name="Too many failed sign-ins")).to_be_visible()
    # the lockout's 429s are the only errors
    assert page.problems and all(p.startswith("429 ") for p in page.problems), page.problems
