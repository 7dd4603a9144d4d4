"""The web widget in Chromium, embedded in a page on another origin (a second local server).

The widget mints a visitor token, streams an answer from the fake model, restores the
conversation after a reload, is refused on an origin that is not listed (and says so), and
renders a hostile reply inert. The owner's Publish page shows its errors and a live preview.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from e2e.conftest import shot
from tests.fakes.llm_servers import Text
from tests.processes import free_port

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


class _HostSite(BaseHTTPRequestHandler):
    """A customer's website: one page with the snippet (``/?key=pk_...&mode=inline``)."""

    widget_src = ""

    def do_GET(self) -> None:  # noqa: N802 - http.server's API
        query = parse_qs(urlsplit(self.path).query)
        key = html.escape(query.get("key", [""])[0])
        inline = query.get("mode", [""])[0] == "inline"
        extra = ' data-mode="inline" data-target="#chat"' if inline else ""
        if query.get("user_token"):
            extra += f' data-user-token="{html.escape(query["user_token"][0])}"'
        body = (
            "<!doctype html><html lang=en><head><meta charset=utf-8><title>Acme shop</title>"
            '<meta name=viewport content="width=device-width,initial-scale=1">'
            f"{'' if query.get('csp') else '<style>body{font-family:serif;margin:40px} button{background:red}</style>'}"
            "</head><body>"
            "<h1>Acme shop</h1><p>Our products are great.</p>"
            f"{'<div id=chat style=height:520px;width:420px></div>' if inline else ''}"
            f'<script src="{self.widget_src}" data-key="{key}"{extra} async></script>'
            "</body></html>"
        ).encode()
        self.send_response(200)
        if query.get("csp"):
            # a strict host page: scripts and connections only from the widget's server, no inline styles
            server = self.widget_src.split("/static/")[0]
            self.send_header(
                "Content-Security-Policy",
                f"default-src 'none'; script-src {server}; connect-src {server}; style-src 'self'",
            )
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def host_site(live) -> Iterator[str]:
    handler = type("HostSite", (_HostSite,), {"widget_src": f"{live}/static/widget/widget.js"})
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def visitor_page(browser, fake_openai):
    """A fresh browser (no sign-in, empty storage), as a visitor of the customer's site."""
    fake_openai.script.clear()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors  # type: ignore[attr-defined]
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the host page: {errors}"


def _published_agent(staff, slug: str = "shop-help", **config):
    from builder.services import agent_create, agent_publish

    agent = agent_create(
        owner=staff,
        slug=slug,
        name="Shop help",
        config={"system_prompt": "Help shoppers.", "model": "openai:gpt-4o-mini", **config},
    )
    agent_publish(agent=agent, user=staff)
    return agent


def _channel(staff, agent, origins: list[str], **values):
    from runtime.channels.services import widget_channel_create

    return widget_channel_create(
        agent_key=agent.slug,
        user=staff,
        allowed_origins=origins,
        title="Acme help",
        colour="#0f766e",
        **values,
    )


def test_the_widget_chats_streams_and_restores_on_another_origin(visitor_page, host_site, staff, fake_openai):
    agent = _published_agent(staff)
    channel = _channel(
        staff,
        agent,
        [host_site],
        greeting="Hello! Ask about your order.",
        suggested_questions=["Where is my order?"],
    )
    page = visitor_page
    page.goto(f"{host_site}/?key={channel.publishable_key}")
    widget = page.locator("[data-agent-widget]")
    expect(widget).to_have_attribute("data-state", "ready")
    launcher = page.get_by_role("button", name="Open chat")
    launcher.click()
    dialog = page.get_by_role("dialog", name="Acme help")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_text("Hello! Ask about your order.")).to_be_visible()
    expect(dialog.get_by_role("button", name="Where is my order?")).to_be_visible()
    message = dialog.get_by_label("Message")
    expect(message).to_be_focused()
    shot(page, "60-widget-open-on-host-site")

    fake_openai.push(Text(["Your order ", "ships ", "**tomorrow** ", "by courier."], delay=0.5))
    message.fill("When does my order ship?")
    message.press("Enter")
    expect(dialog.locator(".msg.user")).to_have_text("When does my order ship?")
    streaming = dialog.locator(".msg.bot.streaming")
    # tokens arrive before the answer is complete (a loaded machine's worker may take a while to start)
    expect(streaming).to_contain_text("Your order", timeout=30_000)
    shot(page, "61-widget-streaming")
    answer = dialog.locator(".msg.bot").last
    expect(answer.locator("strong")).to_have_text("tomorrow", timeout=30_000)
    expect(answer).to_have_text("Your order ships tomorrow by courier.")
    expect(dialog.get_by_role("button", name="Where is my order?")).to_have_count(0)
    shot(page, "62-widget-answered")

    # the answer is rated, and the rating survives the reload
    dialog.get_by_role("button", name="Helpful", exact=True).click()
    expect(dialog.get_by_role("button", name="Helpful", exact=True)).to_have_attribute("aria-pressed", "true")

    page.reload()
    expect(page.locator("[data-agent-widget]")).to_have_attribute("data-state", "ready")
    page.get_by_role("button", name="Open chat").click()
    dialog = page.get_by_role("dialog", name="Acme help")
    expect(dialog.locator(".msg.user")).to_have_text("When does my order ship?")
    expect(dialog.locator(".msg.bot").last).to_have_text("Your order ships tomorrow by courier.")
    expect(dialog.get_by_role("button", name="Helpful", exact=True)).to_have_attribute("aria-pressed", "true")
    shot(page, "63-widget-restored-after-reload")

    # a second question continues the same conversation
    fake_openai.push(Text(["Yes, ", "free."]))
    dialog.get_by_label("Message").fill("Is shipping free?")
    dialog.get_by_role("button", name="Send").click()
    expect(dialog.locator(".msg.bot").last).to_have_text("Yes, free.", timeout=30_000)
    from runtime.models import AgentConversation, AgentRun

    assert AgentConversation.objects.filter(agent_key="shop-help").count() == 1
    runs = AgentRun.objects.filter(agent_key="shop-help")
    assert runs.count() == 2 and all(run.agent_version.startswith("version:") for run in runs)
    assert all(run.user_id is None and run.anonymous_session_id for run in runs)

    # keyboard: Escape closes the panel and gives focus back to the launcher
    dialog.get_by_label("Message").press("Escape")
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("button", name="Open chat")).to_be_focused()


def test_an_unlisted_origin_is_refused_with_a_visible_message(visitor_page, host_site, staff):
    agent = _published_agent(staff, slug="elsewhere")
    channel = _channel(staff, agent, ["https://shop.example.com"])
    page = visitor_page
    page.goto(f"{host_site}/?key={channel.publishable_key}")
    expect(page.locator("[data-agent-widget]")).to_have_attribute("data-state", "refused")
    page.get_by_role("button", name="Open chat").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("alert")).to_contain_text(
        f"This website ({host_site}) is not allowed to use this chat"
    )
    expect(dialog.get_by_label("Message")).to_be_disabled()
    shot(page, "64-widget-origin-refused")
    from accounts.models import AnonymousSession

    assert not AnonymousSession.objects.exists()


def test_a_hostile_reply_is_inert(visitor_page, host_site, staff, fake_openai):
    agent = _published_agent(staff, slug="hostile")
    channel = _channel(staff, agent, [host_site])
    page = visitor_page
    page.goto(f"{host_site}/?key={channel.publishable_key}&mode=inline")
    region = page.locator("#chat [data-agent-widget]")
    expect(region).to_have_attribute("data-state", "ready")
    payload = (
        '<img src=x onerror="window.pwned=1"> <script>window.pwned=2</script> '
        "[click me](javascript:window.pwned=3) and [docs](https://example.com/docs) "
        '<a href="javascript:window.pwned=4">bad link</a>'
    )
    fake_openai.push(Text([payload]))
    message = page.get_by_label("Message")
    message.fill("Say something nasty")
    page.get_by_role("button", name="Send").click()
    answer = page.locator("#chat .msg.bot").last
    expect(answer).to_contain_text("click me", timeout=30_000)
    expect(answer).to_contain_text('<img src=x onerror="window.pwned=1">')  # shown as text
    expect(answer).to_contain_text('<a href="javascript:window.pwned=4">bad link</a>')
    # the finished answer is rendered once more as markdown when the run ends: wait for its link
    expect(answer.get_by_role("link")).to_have_count(1)
    expect(answer.locator("img, script")).to_have_count(0)
    expect(answer.get_by_role("link", name="docs")).to_have_attribute("href", "https://example.com/docs")
    assert page.evaluate("window.pwned") is None
    shot(page, "65-widget-inline-hostile-reply-inert")
    page.reload()
    expect(page.locator("#chat .msg.bot").last).to_contain_text("click me")
    assert page.locator("#chat .msg.bot").last.locator("img, script").count() == 0
    assert page.evaluate("window.pwned") is None


def test_the_owner_sets_up_the_widget_on_the_publish_page(page, staff, fake_openai):
    agent = _published_agent(staff, slug="set-up", opening_message="Welcome to the preview!")
    page.goto(f"/agents/{agent.public_id}/")
    page.get_by_role("link", name="Web widget", exact=True).click()
    page.get_by_role("button", name="Create web widget").click()
    expect(page.get_by_text("Web widget created.")).to_be_visible()
    expect(page.get_by_text("No website may show the widget yet")).to_be_visible()

    origins = page.get_by_label("Allowed websites (origins)")
    origins.fill("https://shop.example.com/checkout")
    page.get_by_label("Colour").fill("teal")
    page.get_by_label("Most steps per answer").fill("99")
    page.get_by_role("button", name="Save widget settings").click()
    expect(page.get_by_text("has a path; an origin is only")).to_be_visible()
    expect(page.get_by_text("is not a colour; use a hex value like #2563eb.")).to_be_visible()
    expect(page.get_by_text("Use a whole number of steps from 1 to 50")).to_be_visible()
    shot(page, "66-publish-page-errors")

    origins.fill("https://shop.example.com")
    page.get_by_label("Colour").fill("#0f766e")
    page.get_by_label("Most steps per answer").fill("4")
    page.get_by_label("Messages per visitor per minute").fill("6")
    page.get_by_label("Most seconds per answer").fill("120")
    page.get_by_role("button", name="Save widget settings").click()
    expect(page.get_by_text("Widget settings saved.")).to_be_visible()
    expect(page.get_by_label("Most steps per answer")).to_have_value("4")
    shot(page, "66b-publish-page-limits-saved")
    from runtime.channels.models import WidgetChannel

    saved = WidgetChannel.objects.get(agent_key="set-up")
    assert (saved.max_steps_per_run, saved.requests_per_minute_per_visitor) == (4, 6)
    assert (saved.max_seconds_per_run, saved.max_tokens_per_run) == (120, None)

    snippet = page.get_by_label("Snippet")
    assert 'data-key="pk_' in snippet.input_value() and "/static/widget/widget.js" in snippet.input_value()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Copy snippet").click()
    expect(page.get_by_text("Copied.")).to_be_visible()

    # the live preview: the widget on a sample page served by us, answering with the published version
    page.locator("#widget-preview").scroll_into_view_if_needed()
    frame = page.frame_locator("#widget-preview")
    dialog = frame.get_by_role("dialog")
    expect(dialog.get_by_text("Welcome to the preview!")).to_be_visible()
    fake_openai.push(Text(["Preview ", "works."]))
    dialog.get_by_label("Message").fill("hello")
    dialog.get_by_role("button", name="Send").click()
    expect(dialog.locator(".msg.bot").last).to_have_text("Preview works.", timeout=30_000)
    shot(page, "67-publish-page-preview")

    # a new key: asked twice, then the snippet changes
    old_snippet = snippet.input_value()
    page.get_by_text("Make a new key…").click()
    page.get_by_role("button", name="Yes, make a new key").click()
    expect(page.get_by_text("New key made.")).to_be_visible()
    assert page.get_by_label("Snippet").input_value() != old_snippet
    page.get_by_text("Identified visitors (optional, for a developer)").click()
    secret = page.get_by_label("Identity secret").input_value()
    page.get_by_text("Make a new identity secret…").click()
    page.get_by_role("button", name="Yes, make a new identity secret").click()
    expect(page.get_by_text("New identity secret made.")).to_be_visible()
    page.get_by_text("Identified visitors (optional, for a developer)").click()
    assert page.get_by_label("Identity secret").input_value() != secret

    page.get_by_role("button", name="Turn widget off").click()
    expect(page.get_by_text("The widget is off")).to_be_visible()
    expect(frame.get_by_role("dialog").get_by_role("alert")).to_contain_text("switched off")
    shot(page, "68-publish-page-widget-off")


def test_on_a_phone_in_dark_mode_the_panel_fills_the_screen(browser, host_site, staff):
    agent = _published_agent(staff, slug="phone")
    channel = _channel(staff, agent, [host_site], greeting="Hi from your phone.")
    context = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme="dark", is_mobile=True)
    try:
        page = context.new_page()
        page.goto(f"{host_site}/?key={channel.publishable_key}")
        expect(page.locator("[data-agent-widget]")).to_have_attribute("data-state", "ready")
        page.get_by_role("button", name="Open chat").click()
        dialog = page.get_by_role("dialog", name="Acme help")
        expect(dialog.get_by_text("Hi from your phone.")).to_be_visible()
        box = dialog.bounding_box()
        assert box is not None and (box["x"], box["y"], box["width"], box["height"]) == (0, 0, 390, 844)
        background = dialog.evaluate("node => getComputedStyle(node).backgroundColor")
        assert background == "rgb(17, 24, 39)"  # the dark palette
        shot(page, "69-widget-phone-dark")
        dialog.get_by_role("button", name="Close chat").click()
        expect(dialog).to_be_hidden()
        expect(page.get_by_role("button", name="Open chat")).to_be_focused()
    finally:
        context.close()


def test_the_widget_reconnects_after_the_stream_is_refused(visitor_page, host_site, staff, fake_openai):
    """A 503 on the stream (the database restarting) closes an EventSource for good; the widget
    opens a new one from the last event it saw and the answer still arrives whole."""
    agent = _published_agent(staff, slug="patient-widget")
    channel = _channel(staff, agent, [host_site])
    page = visitor_page
    seen: list[str] = []

    def unavailable_twice(route):
        seen.append(route.request.url)
        if len(seen) <= 2:
            route.fulfill(
                status=503,
                headers={
                    "Retry-After": "1",
                    "Content-Type": "application/json",
                    "Access-Control-Allow-Origin": host_site,
                },
                body='{"error": {"code": "database_unavailable", "message": "Try again in a few seconds."}}',
            )
        else:
            route.continue_()

    page.route("**/api/widget/runs/*/stream/**", unavailable_twice)
    page.goto(f"{host_site}/?key={channel.publishable_key}&mode=inline")
    expect(page.locator("#chat [data-agent-widget]")).to_have_attribute("data-state", "ready")
    fake_openai.push(Text(["one ", "two ", "three."], delay=0.3))
    page.get_by_label("Message").fill("count to three")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#chat [role=status]")).to_have_text("Connection lost; reconnecting…")
    expect(page.locator("#chat .msg.bot").last).to_have_text("one two three.", timeout=30_000)
    assert len(seen) >= 3, "the widget did not open a new stream after the 503s"
    shot(page, "70-widget-reconnected")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_open_widget_has_no_serious_axe_violations(visitor_page, host_site, staff, fake_openai, scheme):
    from axe_playwright_python.sync_playwright import Axe

    from e2e.test_accessibility import _serious

    agent = _published_agent(staff, slug=f"axe-{scheme}")
    channel = _channel(
        staff, agent, [host_site], greeting="Hello.", suggested_questions=["What do you sell?"]
    )
    page = visitor_page
    page.emulate_media(color_scheme=scheme)
    page.goto(f"{host_site}/?key={channel.publishable_key}")
    expect(page.locator("[data-agent-widget]")).to_have_attribute("data-state", "ready")
    page.get_by_role("button", name="Open chat").click()
    fake_openai.push(Text(["We sell **shoes**, see [the shop](https://example.com)."]))
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Message").fill("What do you sell?")
    dialog.get_by_label("Message").press("Enter")
    expect(dialog.get_by_role("button", name="Helpful", exact=True)).to_be_visible(timeout=30_000)
    results = Axe().run(page, context="[data-agent-widget]")
    # axe reached into the shadow root: a node there has a target of [host, inner] selectors
    assert any(
        isinstance(node["target"][0], list) or len(node["target"]) > 1
        for rule in results.response["passes"]
        for node in rule["nodes"]
    ), "axe did not look inside the widget's shadow root"
    serious = _serious(results)
    assert not serious, serious


def test_a_strict_csp_host_page_still_gets_a_styled_widget(visitor_page, host_site, staff):
    agent = _published_agent(staff, slug="strict")
    channel = _channel(staff, agent, [host_site], greeting="Styled.")
    page = visitor_page
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(f"{host_site}/?key={channel.publishable_key}&csp=1")
    expect(page.locator("[data-agent-widget]")).to_have_attribute("data-state", "ready")
    launcher = page.get_by_role("button", name="Open chat")
    assert launcher.evaluate("node => getComputedStyle(node).position") == "fixed"
    assert (
        launcher.evaluate("node => getComputedStyle(node).backgroundColor") == "rgb(15, 118, 110)"
    )  # #0f766e
    launcher.click()
    expect(page.get_by_role("dialog").get_by_text("Styled.")).to_be_visible()
    assert not [v for v in violations if "style" in v.lower()], violations
    shot(page, "71-widget-strict-csp-host")


def test_an_answer_still_being_written_is_streamed_after_a_reload(
    visitor_page, host_site, staff, fake_openai
):
    agent = _published_agent(staff, slug="slow-writer")
    channel = _channel(staff, agent, [host_site])
    page = visitor_page
    page.goto(f"{host_site}/?key={channel.publishable_key}&mode=inline")
    expect(page.locator("#chat [data-agent-widget]")).to_have_attribute("data-state", "ready")
    fake_openai.push(Text(["first ", "second ", "third ", "fourth ", "fifth."], delay=0.8))
    page.get_by_label("Message").fill("take your time")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#chat .msg.bot.streaming")).to_contain_text("first", timeout=30_000)
    page.reload()
    expect(page.locator("#chat .msg.user")).to_have_text("take your time")
    expect(page.locator("#chat .msg.bot").last).to_have_text(
        "first second third fourth fifth.", timeout=30_000
    )
    expect(page.locator("#chat .msg.bot")).to_have_count(1)


def test_an_identified_visitor_continues_on_another_device(browser, host_site, staff, fake_openai):
    import time

    import jwt

    agent = _published_agent(staff, slug="known-visitors")
    channel = _channel(staff, agent, [host_site])
    signed = jwt.encode(
        {"sub": "customer-17", "exp": int(time.time()) + 600}, channel.identity_secret, "HS256"
    )
    fake_openai.script.clear()
    laptop = browser.new_context()
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        page = laptop.new_page()
        page.goto(f"{host_site}/?key={channel.publishable_key}&mode=inline&user_token={signed}")
        expect(page.locator("#chat [data-agent-widget]")).to_have_attribute("data-state", "ready")
        fake_openai.push(Text(["Noted ", "on your account."]))
        page.get_by_label("Message").fill("Remember my size is 42")
        page.get_by_role("button", name="Send").click()
        expect(page.locator("#chat .msg.bot").last).to_have_text("Noted on your account.", timeout=30_000)

        other = phone.new_page()
        other.goto(f"{host_site}/?key={channel.publishable_key}&user_token={signed}")
        expect(other.locator("[data-agent-widget]")).to_have_attribute("data-state", "ready")
        other.get_by_role("button", name="Open chat").click()
        dialog = other.get_by_role("dialog")
        expect(dialog.locator(".msg.user")).to_have_text("Remember my size is 42")
        expect(dialog.locator(".msg.bot").last).to_have_text("Noted on your account.")
        shot(other, "72-widget-identified-visitor-on-phone")

        # a token signed with another secret is refused, visibly
        forged = jwt.encode({"sub": "customer-17", "exp": int(time.time()) + 600}, "x" * 40, "HS256")
        stranger = laptop.browser.new_context().new_page()
        stranger.goto(f"{host_site}/?key={channel.publishable_key}&mode=inline&user_token={forged}")
        expect(stranger.locator("#chat [role=alert]")).to_contain_text("identity token was refused")
        stranger.context.close()
    finally:
        laptop.close()
        phone.close()


def test_a_spent_daily_budget_is_a_polite_message_in_the_widget(visitor_page, host_site, staff):
    from decimal import Decimal

    from runtime.channels.api_key_models import AgentBudget

    agent = _published_agent(staff, slug="thrifty")
    channel = _channel(staff, agent, [host_site])
    AgentBudget.objects.create(agent_key=agent.slug, daily_budget_usd=Decimal("0.00"))
    page = visitor_page
    page.goto(f"{host_site}/?key={channel.publishable_key}")
    expect(page.locator("[data-agent-widget]")).to_have_attribute("data-state", "ready")
    page.get_by_role("button", name="Open chat").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Message").fill("Hello?")
    dialog.get_by_label("Message").press("Enter")
    expect(dialog.get_by_role("alert")).to_contain_text("answered all it can for today", timeout=20_000)
    shot(page, "73-widget-budget-spent")
    from runtime.models import AgentRun

    assert not AgentRun.objects.filter(agent_key=agent.slug).exists()


def test_a_token_budget_holds_for_a_model_without_a_price_in_the_widget(
    visitor_page, host_site, staff, fake_openai
):
    """No source knows the model's price: the day's budget in tokens lets the first question be
    answered, counts its real tokens, and then tells the visitor politely that the day is done."""
    from runtime.channels.api_key_models import AgentBudget, AgentDailySpend
    from runtime.models import AgentRun

    agent = _published_agent(staff, slug="house-model", model="openai:our-house-model")
    channel = _channel(staff, agent, [host_site])
    AgentBudget.objects.create(agent_key=agent.slug, daily_budget_tokens=1500)
    fake_openai.push(Text(["Opening hours ", "are 9 to 5."], prompt_tokens=1200))
    page = visitor_page
    page.goto(f"{host_site}/?key={channel.publishable_key}")
    expect(page.locator("[data-agent-widget]")).to_have_attribute("data-state", "ready")
    page.get_by_role("button", name="Open chat").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Message").fill("When are you open?")
    dialog.get_by_label("Message").press("Enter")
    expect(dialog.locator(".msg.bot").last).to_have_text("Opening hours are 9 to 5.", timeout=30_000)
    expect(dialog.get_by_role("button", name="Helpful", exact=True)).to_be_visible()  # the run has ended
    # 1,202 tokens spent; the next run is estimated at the day's average (1,202): over 1,500
    dialog.get_by_label("Message").fill("And on Sundays?")
    dialog.get_by_label("Message").press("Enter")
    expect(dialog.get_by_role("alert")).to_contain_text("answered all it can for today", timeout=20_000)
    shot(page, "74-widget-token-budget-spent")
    assert AgentRun.objects.filter(agent_key=agent.slug).count() == 1
    spend = AgentDailySpend.objects.get(agent_key=agent.slug)
    assert spend.spent_tokens == spend.unpriced_tokens > 1200 and spend.spent_usd == 0
