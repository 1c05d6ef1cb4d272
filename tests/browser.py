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


#: The user every browser test logs in as (made by live_server), unless it logs in itself.
BROWSER_USER = ("浏览器管理员", "browser-test-passphrase")


@contextmanager
def live_server(app):
    """Serve ``app`` with waitress on 127.0.0.1 and a free port; yield the base URL.

    An admin user BROWSER_USER is made first, for ``chromium_page(login_to=base)``.
    """
    from sqlalchemy import select
    from waitress.server import create_server

    from gridmap.security.access import add_user
    from gridmap.storage.security import User

    gm = app.extensions["gridmap"]
    with gm.db.session() as session:
        if session.scalar(select(User.id).where(User.name == BROWSER_USER[0])) is None:
            add_user(session, BROWSER_USER[0], "admin", (), BROWSER_USER[1])

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
        page.on("requestfailed", self._failed)
        page.route("**/*", self._route)

    def _failed(self, request) -> None:
        # A fetch still running when the page navigates on (a drill-down click on a loaded machine)
        # is cancelled by the browser (net::ERR_ABORTED): not a failure of the app.
        if request.failure != "net::ERR_ABORTED":
            self.failed_requests.append(f"{request.url} ({request.failure})")

    def _route(self, route) -> None:
        host = urlparse(route.request.url).hostname or ""
        if route.request.url.startswith("data:") or host in ("127.0.0.1", "localhost", "::1"):
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()


def log_in(page, base: str, name: str, password: str) -> None:
    """Log in through the login form, as a person would."""
    page.goto(base + "/login", wait_until="load")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("form.login-form button[type=submit]")
    if "/login" in page.url:
        raise AssertionError(f"login as {name} failed: {page.url}")


@contextmanager
def chromium_page(locale: str = "zh-CN", login_to: str | None = None):
    """A fresh headless Chromium page (Playwright driving Debian's /usr/bin/chromium).

    ``login_to``: the live server's base URL; the page logs in there as BROWSER_USER first.
    """
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: run `bash scripts/system-deps.sh` (installs Debian's chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 800})
            page = context.new_page()
            watch = PageWatch(page)
            if login_to is not None:
                log_in(page, login_to, *BROWSER_USER)
            yield page, watch
            context.close()
        finally:
            browser.close()


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/ and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
