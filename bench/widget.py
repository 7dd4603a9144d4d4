"""The web widget: script size, visitor-token mint time, and time from the script tag to ready.

- Size: ``widget.js`` raw and gzipped (level 9, what a server's gzip sends at most), next to the
  builder's own scripts as peers. Target: at most 30 KB gzipped.
- Mint: p50 of ``POST /api/widget/session/`` in-process (Django's test client: the whole
  middleware stack, no network), next to the plain anonymous-session mint it builds on.
- Ready: a real uvicorn and Chromium; a page on another origin carries the snippet; time from
  navigation start, and from the script's first line, to the widget's ``agent-widget:ready``
  event (session minted, conversation restored), p50 over fresh browser contexts.
"""

from __future__ import annotations

import gzip
import os
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench.common import PROJECT_ROOT, dedicated_database, django_env, setup_django

WIDGET = PROJECT_ROOT / "runtime" / "static" / "widget" / "widget.js"
PEERS = {
    "builder/playground.js (peer)": PROJECT_ROOT / "builder" / "static" / "builder" / "playground.js",
    "builder/builder.js (peer)": PROJECT_ROOT / "builder" / "static" / "builder" / "builder.js",
}
MINTS = 200
LOADS = 15
TARGET_GZ_KB = 30.0
CHROMIUM = "/usr/bin/chromium"


def _size(path: Path) -> dict:
    raw = path.read_bytes()
    return {"raw KB": f"{len(raw) / 1024:.1f}", "gzip KB": f"{len(gzip.compress(raw, 9)) / 1024:.1f}"}


def sizes() -> list[dict]:
    widget = _size(WIDGET)
    rows = [
        {
            "measure": "widget.js size",
            **widget,
            "target": f"<= {TARGET_GZ_KB:.0f} KB gz: "
            + ("met" if float(widget["gzip KB"]) <= TARGET_GZ_KB else "MISSED"),
        }
    ]
    rows += [{"measure": name, **_size(path), "target": ""} for name, path in PEERS.items()]
    return rows


def _p50_ms(call, n: int) -> float:
    for _ in range(5):
        call()
    times = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def mints(key: str, origin: str) -> list[dict]:
    from django.test import Client

    client = Client()

    def widget() -> None:
        response = client.post(
            "/api/widget/session/", {"key": key}, content_type="application/json", HTTP_ORIGIN=origin
        )
        assert response.status_code == 201, response.content

    def anonymous() -> None:
        assert client.post("/api/accounts/anonymous-session/").status_code == 201

    return [
        {"measure": "widget visitor mint p50 (in-process)", "ms": f"{_p50_ms(widget, MINTS):.2f}"},
        {"measure": "anonymous-session mint p50 (peer)", "ms": f"{_p50_ms(anonymous, MINTS):.2f}"},
    ]


class _Host(BaseHTTPRequestHandler):
    page = b""

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(self.page)))
        self.end_headers()
        self.wfile.write(self.page)

    def log_message(self, *args: object) -> None:
        pass


def ready_times(url: str, channel) -> list[dict]:
    from playwright.sync_api import sync_playwright

    from tests.processes import free_port

    port = free_port()
    env = django_env(url, SERVE_STATIC="1", WIDGET_SESSION_MINT_RATE="100000/min")
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "config.asgi:application", "--port", str(port), "--no-access-log"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    host = ThreadingHTTPServer(("127.0.0.1", 0), _Host)
    key = channel.publishable_key
    # the host page's origin carries the port it got: list it on the channel
    type(channel).objects.filter(pk=channel.pk).update(
        allowed_origins=[f"http://127.0.0.1:{host.server_address[1]}"]
    )
    _Host.page = (
        "<!doctype html><html><head><meta charset=utf-8><title>host</title></head><body>"
        "<script>document.addEventListener('agent-widget:ready',function(e){"
        "window.__ready={script:e.detail.ms,page:performance.now()}});</script>"
        f'<script src="http://127.0.0.1:{port}/static/widget/widget.js" data-key="{key}" async></script>'
        "</body></html>"
    ).encode()
    threading.Thread(target=host.serve_forever, daemon=True).start()
    page_url = f"http://127.0.0.1:{host.server_address[1]}/"
    try:
        import httpx

        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/static/widget/widget.js", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        from_page, from_script = [], []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--headless"])
            for n in range(LOADS + 2):
                context = browser.new_context()
                page = context.new_page()
                page.goto(page_url)
                page.wait_for_function("window.__ready", timeout=15_000)
                ready = page.evaluate("window.__ready")
                if n >= 2:  # the first loads warm the server's caches and connections
                    from_page.append(ready["page"])
                    from_script.append(ready["script"])
                context.close()
            browser.close()
    finally:
        host.shutdown()
        server.terminate()
        server.wait(timeout=10)
    return [
        {"measure": "navigation start to widget ready p50", "ms": f"{statistics.median(from_page):.1f}"},
        {
            "measure": "script start to widget ready p50 (mint + restore)",
            "ms": f"{statistics.median(from_script):.1f}",
        },
    ]


def main() -> list[dict]:
    rows = sizes()
    with dedicated_database(prefix="benchw") as url:
        setup_django(
            url,
            ALLOWED_HOSTS="testserver,127.0.0.1,localhost",
            WIDGET_SESSION_MINT_RATE="100000/min",
            ANONYMOUS_SESSION_MINT_RATE="100000/min",
        )
        from django.contrib.auth import get_user_model
        from django.db import connections

        from builder.services import agent_create, agent_publish
        from runtime.channels.services import widget_channel_create

        owner = get_user_model().objects.create_user("bench-owner", is_staff=True)
        agent = agent_create(owner=owner, slug="bench-widget", name="Bench", config={"system_prompt": "x"})
        agent_publish(agent=agent, user=owner)
        channel = widget_channel_create(
            agent_key=agent.slug, user=owner, allowed_origins=["http://127.0.0.1"]
        )
        rows += mints(channel.publishable_key, "http://127.0.0.1")
        if Path(CHROMIUM).exists():
            rows += ready_times(url, channel)
        connections.close_all()
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    for row in rows:
        row["load avg (1/5/15 min)"] = load
    return rows


if __name__ == "__main__":
    for row in main():
        print(row)
