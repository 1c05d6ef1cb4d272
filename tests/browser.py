"""Browser-test support: a live waitress server on a free port and headless Debian Chromium.

Every request that does not go to the loopback server is aborted and recorded, so a page that
needs the internet fails its test.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@contextmanager
def live_server(app):
    """Serve ``app`` with waitress on 127.0.0.1 and a free port; yield the base URL."""
    from waitress.server import create_server

    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        server.close()
        thread.join(timeout=5)


class PageWatch:
    """Console errors, failed requests and blocked external requests of one page."""

    def __init__(self, page) -> None:
        self.console_errors: list[str] = []
        self.failed_requests: list[str] = []
        self.blocked: list[str] = []
        page.on("console", lambda msg: msg.type == "error" and self.console_errors.append(msg.text))
        page.on("pageerror", lambda exc: self.console_errors.append(str(exc)))
        page.on("requestfailed", lambda req: self.failed_requests.append(req.url))
        page.route("**/*", self._route)

    def _route(self, route) -> None:
        host = urlparse(route.request.url).hostname or ""
        if route.request.url.startswith("data:") or host in ("127.0.0.1", "localhost", "::1"):
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()


@contextmanager
def chromium_page(locale: str = "zh-CN"):
    """A fresh headless Chromium page (Playwright driving Debian's /usr/bin/chromium)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: run `bash scripts/system-deps.sh` (installs Debian's chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 800})
            page = context.new_page()
            yield page, PageWatch(page)
            context.close()
        finally:
            browser.close()


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/ and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
