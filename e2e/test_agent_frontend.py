"""The agent-frontend widget (npm ``@makemore/agent-frontend``), unchanged and with its defaults,
against this server, in Chromium, from a page on another origin.

The package is installed from the npm registry when the tests start, into a temporary
directory (never committed). Its ``dist/`` files and a host page are served by
``api_client_site``, the second origin the live server lists in ``API_CORS_ALLOWED_ORIGINS``.
The page configures only what the package's README asks for: ``backendUrl`` and ``agentKey``.
Everything else (the anonymous session at ``/api/accounts/anonymous-session/``, the
``/api/agent-runtime/`` routes, ``?token=`` on the event stream) is the widget's default. On
the server, the agent's owner has created its web widget and listed the host page's site:
anonymous sessions run an agent only through its widget, within its limits.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import expect

from e2e.conftest import _QuietFiles, shot
from tests.fakes.llm_servers import Text

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
PACKAGE = "@makemore/agent-frontend@2.16.1"
NPM_TIMEOUT = 240


@pytest.fixture(scope="session")
def agent_frontend_dist(tmp_path_factory) -> Path:
    """The package's ``dist/`` as npm installs it. In CI (where the registry is reachable) a
    failed install fails the tests; elsewhere it skips them."""
    prefix = tmp_path_factory.mktemp("agent-frontend")
    npm = shutil.which("npm")
    problem = None
    if npm is None:
        problem = "npm is not installed"
    else:
        try:
            done = subprocess.run(
                [npm, "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(prefix), PACKAGE],
                capture_output=True,
                text=True,
                timeout=NPM_TIMEOUT,
            )
            if done.returncode != 0:
                problem = f"npm install {PACKAGE} failed:\n{done.stderr[-2000:]}"
        except subprocess.TimeoutExpired:
            problem = f"npm install {PACKAGE} took over {NPM_TIMEOUT} s (is the npm registry reachable?)"
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
    return prefix / "node_modules" / "@makemore" / "agent-frontend" / "dist"


HOST_PAGE = """<!doctype html><html lang=en><head><meta charset=utf-8><title>Acme shop</title>
<link rel=stylesheet href="chat-widget.css"></head>
<body><h1>Acme shop</h1><p>Our products are great.</p>
<script src="chat-widget.js"></script>
<script>ChatWidget.init(CONFIG);</script>
</body></html>
"""


def write_site(root: Path, dist: Path, backend: str, name: str = "index.html", **config) -> str:
    """Copy the widget's files into the site and write a host page; return its path."""
    for file in ("chat-widget.js", "chat-widget.css", "chat-widget-markdown.js"):
        shutil.copyfile(dist / file, root / file)
    page = HOST_PAGE.replace("CONFIG", json.dumps({"backendUrl": backend, **config}))
    (root / name).write_text(page)
    return f"/{name}"


@pytest.fixture
def visitor(browser) -> Iterator:
    """A fresh browser (empty storage) visiting the customer's site."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the host page: {errors}"


def published_agent(staff, slug: str, site: str | None = None):
    """A published agent; with ``site``, also its web widget listing that site, which anonymous
    sessions (the agent-frontend widget's) need to run it (docs/publishing.md)."""
    from builder.services import agent_create, agent_publish
    from runtime.channels.services import widget_channel_create

    agent = agent_create(
        owner=staff,
        slug=slug,
        name="Shop help",
        config={"system_prompt": "Help shoppers.", "model": "openai:gpt-4o-mini"},
    )
    agent_publish(agent=agent, user=staff)
    if site:
        widget_channel_create(agent_key=slug, user=staff, allowed_origins=[site])
    return agent


def wait_for_run_to_finish(agent_key: str, deadline_s: float = 30) -> None:
    from runtime.models import AgentRun, RunStatus

    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if not AgentRun.objects.filter(agent_key=agent_key).exclude(status=RunStatus.SUCCEEDED).exists():
            return
        time.sleep(0.1)  # polling the database with a deadline, not waiting for a guess
    raise AssertionError("the run did not finish")


def test_agent_frontend_mints_chats_streams_and_restores(
    visitor, live, api_client_site, agent_frontend_dist, staff, fake_openai
):
    site, root = api_client_site
    published_agent(staff, "shop-help", site)
    path = write_site(root, agent_frontend_dist, live, agentKey="shop-help", title="Acme help")
    page = visitor
    fake_openai.script.clear()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(f"{r.method} {r.url.split('?')[0]}"))
    page.goto(f"{site}{path}")
    page.locator(".cw-fab").click()
    widget = page.locator(".cw-widget")
    expect(widget.get_by_text("Acme help")).to_be_visible()

    fake_openai.push(Text(["Your order ", "ships ", "**tomorrow** ", "by courier."], delay=0.5))
    widget.locator("textarea.cw-input").fill("When does my order ship?")
    widget.locator("textarea.cw-input").press("Enter")
    expect(widget.locator(".cw-message-user")).to_have_text("When does my order ship?")
    answer = widget.locator(".cw-message:not(.cw-message-user)").last
    # tokens arrive one by one: part of the answer shows before the whole of it
    expect(answer).to_contain_text("Your order", timeout=30_000)
    assert "by courier" not in answer.inner_text()
    shot(page, "80-agent-frontend-streaming")
    expect(answer).to_have_text("Your order ships tomorrow by courier.", timeout=30_000)
    expect(answer.locator("strong")).to_have_text("tomorrow")
    # the input comes back once run.succeeded has arrived (the stored answer commits with it)
    expect(widget.locator("textarea.cw-input")).to_be_enabled()
    shot(page, "81-agent-frontend-answered")
    assert f"POST {live}/api/accounts/anonymous-session/" in requests
    assert f"POST {live}/api/agent-runtime/runs/" in requests
    assert any(
        r.startswith(f"GET {live}/api/agent-runtime/runs/") and r.endswith("/events/") for r in requests
    )

    from runtime.models import AgentConversation, AgentRun

    run = AgentRun.objects.get(agent_key="shop-help")
    assert run.user_id is None and run.anonymous_session_id and run.agent_version.startswith("version:")
    conversation = AgentConversation.objects.get(agent_key="shop-help")

    # a reload restores the conversation from the server (the widget kept its id and token)
    page.reload()
    page.locator(".cw-fab").click()
    widget = page.locator(".cw-widget")
    expect(widget.locator(".cw-message-user")).to_have_text("When does my order ship?")
    expect(widget.locator(".cw-message:not(.cw-message-user)").last).to_have_text(
        "Your order ships tomorrow by courier."
    )
    assert page.evaluate("localStorage.getItem('chat_widget_conversation_id')") == str(conversation.pk)
    shot(page, "82-agent-frontend-restored")

    # the conversation list (its sidebar) shows it
    page.locator(".cw-hamburger").click()
    expect(page.locator(".cw-conversation-item")).to_have_count(1)
    expect(page.locator(".cw-conversation-title")).to_have_text("When does my order ship?")
    page.locator(".cw-sidebar-close").click()

    # a second question continues the same conversation
    fake_openai.push(Text(["Yes, ", "free."]))
    widget.locator("textarea.cw-input").fill("Is shipping free?")
    widget.locator("textarea.cw-input").press("Enter")
    expect(widget.locator(".cw-message:not(.cw-message-user)").last).to_have_text(
        "Yes, free.", timeout=30_000
    )
    assert AgentConversation.objects.filter(agent_key="shop-help").count() == 1
    assert AgentRun.objects.filter(agent_key="shop-help", conversation=conversation).count() == 2


# What AgentClient.buildFormDataInit sends when files are attached (its snake_case field names,
# JSON text for messages and metadata, one "files" part per file).
MULTIPART_FETCH = """async ([backend, agentKey, fileName, fileType, fileBytes]) => {
  const form = new FormData();
  form.append('agent_key', agentKey);
  form.append('messages', JSON.stringify([{role: 'user', content: 'What is in my order?'}]));
  form.append('metadata', JSON.stringify({journeyType: 'general'}));
  form.append('files', new File([new Uint8Array(fileBytes)], fileName, {type: fileType}));
  const token = localStorage.getItem('chat_widget_anonymous_token');
  const response = await fetch(backend + '/api/agent-runtime/runs/', {
    method: 'POST', headers: {'X-Anonymous-Token': token}, body: form});
  return {status: response.status, body: await response.json()};
}"""


def test_agent_frontend_attachments_travel_as_its_multipart_form(
    visitor, live, api_client_site, agent_frontend_dist, staff, fake_openai
):
    """Version 2.16.1's chat box shows attached files but sends only the text (its handleSend
    drops them), so the form its AgentClient builds for files is sent here from the host page,
    cross-origin, with the token the widget minted."""
    site, root = api_client_site
    published_agent(staff, "file-help", site)
    path = write_site(root, agent_frontend_dist, live, "files.html", agentKey="file-help")
    page = visitor
    fake_openai.script.clear()
    page.goto(f"{site}{path}")
    page.locator(".cw-fab").click()
    widget = page.locator(".cw-widget")
    widget.locator("input[type=file]").set_input_files(
        files=[{"name": "order.txt", "mimeType": "text/plain", "buffer": b"Order 42: two red mugs."}]
    )
    expect(widget.locator(".cw-file-chip-name")).to_have_text("order.txt")
    fake_openai.push(Text(["Hello."]))
    with page.expect_request("**/api/agent-runtime/runs/") as sent:
        widget.locator("textarea.cw-input").fill("Hello")
        widget.locator("textarea.cw-input").press("Enter")
    assert sent.value.headers["content-type"] == "application/json"  # the file was left behind
    expect(widget.locator(".cw-message:not(.cw-message-user)").last).to_have_text("Hello.", timeout=30_000)

    fake_openai.push(Text(["Two ", "red mugs."]))
    created = page.evaluate(
        MULTIPART_FETCH, [live, "file-help", "order.txt", "text/plain", list(b"Order 42: two red mugs.")]
    )
    assert created["status"] == 201, created
    from runtime.models import AgentMessage, AgentRun

    stored = AgentMessage.objects.get(conversation_id=created["body"]["conversation_id"], role="user")
    assert (
        '<attached_file name="order.txt" type="txt" size="23">\nOrder 42: two red mugs.\n' in stored.content
    )
    wait_for_run_to_finish("file-help")
    assert "Order 42: two red mugs." in json.dumps(fake_openai.requests[-1].json)

    refused = page.evaluate(
        MULTIPART_FETCH, [live, "file-help", "photo.png", "image/png", list(b"\x89PNG\r\n\x1a\n\xff")]
    )
    assert refused["status"] == 400 and "photo.png: this is a PNG image" in refused["body"]["error"]
    assert AgentRun.objects.filter(agent_key="file-help").count() == 2


def test_agent_frontend_after_a_cut_stream_the_answer_is_restored_on_reload(
    visitor, live, api_client_site, agent_frontend_dist, staff, fake_openai
):
    """The widget closes its EventSource on the first error (it does not reconnect with
    Last-Event-ID), so a cut stream leaves the answer unshown; the run carries on in the worker
    and a reload shows the whole answer from the server."""
    site, root = api_client_site
    published_agent(staff, "cut-help", site)
    path = write_site(root, agent_frontend_dist, live, "cut.html", agentKey="cut-help")
    page = visitor
    fake_openai.script.clear()
    page.route("**/api/agent-runtime/runs/*/events/**", lambda route: route.abort("connectionreset"))
    page.goto(f"{site}{path}")
    page.locator(".cw-fab").click()
    widget = page.locator(".cw-widget")
    fake_openai.push(Text(["Still ", "here ", "after the cut."]))
    widget.locator("textarea.cw-input").fill("Are you there?")
    widget.locator("textarea.cw-input").press("Enter")
    expect(widget.locator(".cw-message-user")).to_have_text("Are you there?")
    expect(widget.locator("textarea.cw-input")).to_be_enabled()  # the widget gave up on the stream
    wait_for_run_to_finish("cut-help")
    page.unroute("**/api/agent-runtime/runs/*/events/**")
    page.reload()
    page.locator(".cw-fab").click()
    widget = page.locator(".cw-widget")
    expect(widget.locator(".cw-message:not(.cw-message-user)").last).to_have_text("Still here after the cut.")
    shot(page, "84-agent-frontend-restored-after-cut")


def test_agent_frontend_is_refused_for_an_unpublished_agent_and_on_an_unlisted_origin(
    visitor, live, api_client_site, agent_frontend_dist, staff
):
    from builder.services import agent_create
    from runtime.models import AgentRun

    site, root = api_client_site
    agent_create(owner=staff, slug="draft-help", name="Draft", config={"system_prompt": "Hi."})
    path = write_site(root, agent_frontend_dist, live, "draft.html", agentKey="draft-help")
    page = visitor
    page.goto(f"{site}{path}")
    page.locator(".cw-fab").click()
    widget = page.locator(".cw-widget")
    widget.locator("textarea.cw-input").fill("Hello?")
    widget.locator("textarea.cw-input").press("Enter")
    expect(widget.locator(".cw-error-bar")).to_contain_text("draft-help")
    shot(page, "85-agent-frontend-unpublished-refused")
    assert not AgentRun.objects.exists()

    # published, but its owner made no web widget: closed to visitors without an account
    published_agent(staff, "no-widget-help")
    path = write_site(root, agent_frontend_dist, live, "no-widget.html", agentKey="no-widget-help")
    page.goto(f"{site}{path}")
    page.locator(".cw-fab").click()
    widget = page.locator(".cw-widget")
    widget.locator("textarea.cw-input").fill("Hello?")
    widget.locator("textarea.cw-input").press("Enter")
    expect(widget.locator(".cw-error-bar")).to_contain_text("has not added a web widget")
    shot(page, "85b-agent-frontend-no-widget-refused")
    assert not AgentRun.objects.exists()

    # the same page served from an origin the server does not list: the browser blocks every call
    from accounts.models import AnonymousSession

    sessions_before = AnonymousSession.objects.count()
    elsewhere = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietFiles, directory=str(root)))
    threading.Thread(target=elsewhere.serve_forever, daemon=True).start()
    try:
        write_site(root, agent_frontend_dist, live, "elsewhere.html", agentKey="shop-help")
        page.goto(f"http://127.0.0.1:{elsewhere.server_address[1]}/elsewhere.html")
        page.locator(".cw-fab").click()
        widget = page.locator(".cw-widget")
        widget.locator("textarea.cw-input").fill("Hello?")
        widget.locator("textarea.cw-input").press("Enter")
        expect(widget.locator(".cw-error-bar")).to_be_visible()
        shot(page, "86-agent-frontend-unlisted-origin")
    finally:
        elsewhere.shutdown()
    assert not AgentRun.objects.exists()
    # the mint's JSON content type needs a preflight, which fails: no session was minted there
    assert AnonymousSession.objects.count() == sessions_before


def test_agent_frontend_with_an_api_token_shows_the_models_list_and_runs_the_chosen_model(
    visitor, live, api_client_site, agent_frontend_dist, staff
):
    """``showModelSelector`` (off by default) reads ``models/`` when the page loads, before an
    anonymous session exists, so it is for signed-in callers: here the widget's ``authToken``
    (a DRF token, ``Authorization: Token``) of an editor, who may choose the model. A visitor
    may not (tests/api/test_agent_frontend_compat.py)."""
    from rest_framework.authtoken.models import Token

    from runtime.models import AgentRun

    site, root = api_client_site
    published_agent(staff, "model-help", site)
    token = Token.objects.create(user=staff).key
    path = write_site(
        root,
        agent_frontend_dist,
        live,
        "models.html",
        agentKey="model-help",
        authToken=token,
        # the widget's plain fetches (models, conversation list) send the bare token unless told
        # the prefix; its runs and streams use "Token" either way
        authTokenPrefix="Token",
        showModelSelector=True,
    )
    page = visitor
    page.goto(f"{site}{path}")
    page.locator(".cw-fab").click()
    widget = page.locator(".cw-widget")
    expect(widget.locator(".cw-model-name")).to_have_text(
        "Demo (offline, no key needed)"
    )  # models[].name of default
    shot(page, "87-agent-frontend-model-selector")
    widget.locator("textarea.cw-input").fill("Hello?")
    widget.locator("textarea.cw-input").press("Enter")
    expect(widget.locator(".cw-message:not(.cw-message-user)").last).not_to_be_empty(timeout=30_000)
    expect(widget.locator("textarea.cw-input")).to_be_enabled()
    run = AgentRun.objects.get(agent_key="model-help")
    assert run.model == "demo" and run.user_id == staff.pk and run.status == "succeeded"


def test_agent_frontend_renders_a_hostile_reply_inert(
    visitor, live, api_client_site, agent_frontend_dist, staff, fake_openai
):
    site, root = api_client_site
    published_agent(staff, "hostile-help", site)
    path = write_site(root, agent_frontend_dist, live, "hostile.html", agentKey="hostile-help")
    page = visitor
    fake_openai.script.clear()
    page.goto(f"{site}{path}")
    page.locator(".cw-fab").click()
    widget = page.locator(".cw-widget")
    fake_openai.push(
        Text(
            [
                '<img src=x onerror="window.pwned=1"> <script>window.pwned=2</script> [click me](javascript:window.pwned=3)'
            ]
        )
    )
    widget.locator("textarea.cw-input").fill("Say something nasty")
    widget.locator("textarea.cw-input").press("Enter")
    answer = widget.locator(".cw-message:not(.cw-message-user)").last
    expect(answer).to_contain_text("click me", timeout=30_000)
    expect(widget.locator("textarea.cw-input")).to_be_enabled()
    assert answer.locator("img, script").count() == 0
    assert page.evaluate("window.pwned") is None


def test_agent_frontend_shows_why_a_run_failed(
    visitor, live, api_client_site, agent_frontend_dist, staff, fake_openai
):
    from tests.fakes.llm_servers import Status

    site, root = api_client_site
    published_agent(staff, "failing-help", site)
    path = write_site(root, agent_frontend_dist, live, "failing.html", agentKey="failing-help")
    page = visitor
    fake_openai.script.clear()
    fake_openai.push(Status(400, "bad request"))
    page.goto(f"{site}{path}")
    page.locator(".cw-fab").click()
    widget = page.locator(".cw-widget")
    widget.locator("textarea.cw-input").fill("Hello?")
    widget.locator("textarea.cw-input").press("Enter")
    expect(widget.locator(".cw-error-bar")).to_contain_text(
        "The openai provider rejected the request", timeout=30_000
    )
    shot(page, "88-agent-frontend-run-failed")
