"""Browser tests: a live uvicorn server and a real ``runagent`` worker on the test database,
Debian's Chromium driven by Playwright, a local OpenAI-compatible fake model and a local HTTP API.

Tests use ``transactional_db`` so what they write is committed and visible to the server and
the worker. Screenshots go to ``artifacts/e2e/`` (git-ignored).
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from collections.abc import Iterator
from functools import partial
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.api.live import uvicorn_server
from tests.fakes.llm_servers import FakeOpenAIServer
from tests.processes import WorkerProcess, free_port

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts" / "e2e"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests last: Playwright's sync API keeps an event loop running in the main
    thread for the rest of the session, and pytest-django reorders tests by database use."""
    items.sort(key=lambda item: item.nodeid.startswith("e2e/"))


class _WeatherAPI(BaseHTTPRequestHandler):
    """The "real" web API an HTTP tool calls in these tests."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's API
        city = self.path.rsplit("/", 1)[-1]
        body = json.dumps({"city": city, "forecast": "sunny", "celsius": 21}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def weather_api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _WeatherAPI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def api_client_site(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """A second origin serving static files (``(url, directory)``), listed in the live server's
    ``API_CORS_ALLOWED_ORIGINS``: a page on it may call the general API from the browser."""
    root = tmp_path_factory.mktemp("api-client-site")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietFiles, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()


@pytest.fixture(scope="session")
def live(
    django_db_setup, django_db_blocker, tmp_path_factory, fake_openai, weather_api, api_client_site
) -> Iterator[str]:
    """The web server and one worker, sharing the test database, the fake model and the API allow-list."""
    from django.db import connection

    api_host = weather_api.removeprefix("http://")
    env = {
        "API_CORS_ALLOWED_ORIGINS": api_client_site[0],
        "SERVE_STATIC": "1",
        "OPENAI_API_KEY": "sk-e2e",
        "OPENAI_BASE_URL": fake_openai.openai_base_url,
        "AGENT_HTTP_ALLOWED_HOSTS": api_host,
        "AGENT_LLM_MAX_RETRIES": "0",
        # a price entered on the settings page prices the very next run in the worker
        "AGENT_MODEL_PRICES_CACHE_SECONDS": "0",
    }
    with django_db_blocker.unblock():
        settings_dict = dict(connection.settings_dict)
    tmp = tmp_path_factory.mktemp("live")
    with uvicorn_server(settings_dict, tmp, **env) as server:
        worker = WorkerProcess(**env).start()
        try:
            with django_db_blocker.unblock():
                _wait_for_the_worker()
            yield server.base_url
        finally:
            log = worker.stop()
            (tmp / "worker.log").write_text(log)


def _wait_for_the_worker() -> None:
    """One run of the test suite's ``noop`` agent, done, then removed. On a loaded machine the
    worker takes many seconds to start; without this the first test's first message waited for
    it within a 5 s expectation ("Thinking…" and nothing)."""
    from runtime.models import AgentConversation, AgentRun
    from runtime.services import run_create
    from tests.processes import wait_until

    run, _ = run_create(
        agent_key="noop", messages=[{"role": "user", "content": "warm up"}], channel_caller="e2e:warm-up"
    )
    try:
        wait_until(
            lambda: AgentRun.objects.filter(pk=run.pk, status="succeeded").exists(),
            "the worker to start",
            timeout=120,
            every=0.2,
        )
    finally:
        AgentRun.objects.filter(pk=run.pk).delete()
        AgentConversation.objects.filter(pk=run.conversation_id).delete()


@pytest.fixture(scope="session")
def browser(live):
    # After ``live``: the test database and servers are set up before Playwright starts its
    # event loop in this thread, and torn down after it stops.
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        missing = f"{CHROMIUM} is not installed (apt-get install -y chromium)"
        # .ci/run installs it, so in CI a missing browser is a failure, never a silent skip
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    # Playwright's sync API runs an event loop in this thread while it is open; the tests'
    # own ORM calls (and pytest-django's flushes) are plain sync code. Servers started
    # before this point (the uvicorn and worker under test) keep Django's async-safety checks.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def staff(transactional_db):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user(
        "builder", "builder@example.com", "pw-builder-123", is_staff=True
    )


@pytest.fixture
def page(browser, live, staff, fake_openai):
    """A signed-in browser page on the live site."""
    from playwright.sync_api import expect

    fake_openai.script.clear()
    context = browser.new_context(base_url=live, viewport={"width": 1440, "height": 1000})
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto("/")
    expect(page).to_have_url(f"{live}/admin/login/?next=/")
    page.get_by_label("Username").fill("builder")
    page.get_by_label("Password").fill("pw-builder-123")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#builder").get_by_role("heading", name="Agents")).to_be_visible()
    page.js_errors = errors  # type: ignore[attr-defined]
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def shot(page, name: str, *, full_page: bool = True) -> None:
    """Save a screenshot for people to look at. It is an artifact, not an assertion: on a
    loaded machine Chromium can wait longer than the default for a compositor frame, so a
    screenshot that times out is reported as a warning and the test goes on."""
    from playwright.sync_api import Error as PlaywrightError

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        page.screenshot(
            path=str(ARTIFACTS / f"{name}.png"),
            full_page=full_page,
            animations="disabled",
            caret="hide",
            timeout=45_000,
        )
    except PlaywrightError as exc:
        warnings.warn(f"screenshot {name} not taken: {exc.message.splitlines()[0]}", stacklevel=2)
