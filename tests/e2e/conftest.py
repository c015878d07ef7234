"""Browser fixtures: one Chromium per session, a fresh context (cookies, storage) per test.

Chromium is the system one (/usr/bin/chromium); Playwright's own browser download is never used.
Screenshots go to ./artifacts/ (git-ignored); a failing test leaves one there too.

Chromium can fail to answer when a context is disposed while a navigation through a service
worker is still under way (seen in CI: the offline portal test ended as the page reloaded itself
on coming back online; puppeteer#11627 is the same upstream bug): `context.close()` then waits
forever. Three defences: tests wait for the page to settle before they end; contexts block
service workers unless a test asks for them; every close runs under a watchdog that kills this
run's Chromium (found by a marker switch on its command line) when the close has not returned
in time, so the hung call fails at once, a warning says so, and the next test starts a new
browser."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, ViewportSize, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from doorstep.modules import nav_for
from doorstep.platform.auth import Role
from tests.conftest import ARTIFACTS, LiveServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}
DEMO_PASSWORD = "doorstep-demo"
TIMEOUT_MS = 15_000
CLOSE_WATCHDOG_S = 60.0


@dataclass(frozen=True)
class DemoLogin:
    email: str
    name: str
    role: Role

    @property
    def nav(self) -> list[str]:
        """What the main navigation should list: Home, then each module's items for the role."""
        return ["Home", *(item.label for item in nav_for(self.role))]


ADMIN = DemoLogin("admin@doorstep.demo", "Morgan Admin", Role.admin)
BROKER = DemoLogin("broker@doorstep.demo", "Josh Riley", Role.broker)
AGENT = DemoLogin("agent@doorstep.demo", "Jayden Metz", Role.agent)
AGENT2 = DemoLogin("agent2@doorstep.demo", "Cole Rangel", Role.agent)
CLIENT = DemoLogin("buyer@doorstep.demo", "Sam Buyer", Role.client)
ANALYST = DemoLogin("analyst@doorstep.demo", "Alex Analyst", Role.analyst)
HARBOR_ADMIN = DemoLogin("admin@harborhomes.demo", "Hana Harbor", Role.admin)
DEMO_LOGINS = [ADMIN, BROKER, AGENT, AGENT2, CLIENT, ANALYST]
# One login per role (agent2 is a second agent).
ROLE_LOGINS = [ADMIN, BROKER, AGENT, CLIENT, ANALYST]


def shot(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / f"{name}.png"


# Package scope, not session: the sync API keeps an asyncio loop running in the main
# thread while it is open, and pytest-asyncio tests collected after this package
# refuse to start inside a running loop.
@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


class Chromium:
    """This package's Chromium, started again if a watchdog had to kill it."""

    def __init__(self, playwright: Playwright) -> None:
        self._playwright = playwright
        self.marker = f"--doorstep-e2e={uuid.uuid4().hex}"  # Chromium ignores unknown switches
        self._browser: Browser | None = None
        self.killed = False  # set by the watchdog; cleared when a new browser starts

    @property
    def browser(self) -> Browser:
        if self._browser is None or not self._browser.is_connected():
            self.killed = False
            self._browser = self._playwright.chromium.launch(
                executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, self.marker]
            )
        return self._browser

    def kill(self) -> None:
        """SIGKILL every process of this Chromium (the browser and its helpers)."""
        self.killed = True
        needle = self.marker.encode()
        for pid in filter(str.isdigit, os.listdir("/proc")):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                if needle in cmdline.read():
                    os.kill(int(pid), signal.SIGKILL)

    @contextlib.contextmanager
    def watchdog(self, seconds: float = CLOSE_WATCHDOG_S) -> Iterator[None]:
        """Kill Chromium if the block has not finished within `seconds`."""
        timer = threading.Timer(seconds, self.kill)
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()

    def close(self) -> None:
        if self._browser is not None and self._browser.is_connected():
            with self.watchdog():
                self._browser.close()


@pytest.fixture(scope="package")
def chromium(playwright: Playwright) -> Iterator[Chromium]:
    for stale in ARTIFACTS.glob("failed-*.png"):
        stale.unlink()
    chromium = Chromium(playwright)
    yield chromium
    chromium.close()


@pytest.fixture(scope="session", autouse=True)
def _expect_timeout() -> None:
    expect.set_options(timeout=TIMEOUT_MS)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"report_{report.when}", report)


def _new_page(
    chromium: Chromium,
    live_server: LiveServer,
    viewport: ViewportSize,
    *,
    service_workers: bool = False,
) -> Page:
    context = chromium.browser.new_context(
        base_url=live_server.url,
        viewport=viewport,
        service_workers="allow" if service_workers else "block",
    )
    context.set_default_timeout(TIMEOUT_MS)
    return context.new_page()


def _close(page: Page, request: pytest.FixtureRequest, chromium: Chromium) -> None:
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        name = re.sub(r"[^\w.-]+", "_", request.node.name)
        with contextlib.suppress(PlaywrightError):  # a crashed page must not hide the failure
            page.screenshot(path=shot(f"failed-{name}"), full_page=True)
    with chromium.watchdog():
        try:
            page.context.close()
        except PlaywrightError:
            if chromium.killed:
                warnings.warn(
                    f"Chromium did not close the context of {request.node.name} within "
                    f"{CLOSE_WATCHDOG_S:.0f} s and was restarted",
                    stacklevel=1,
                )
                return
            raise


def _open(
    chromium: Chromium,
    live_server: LiveServer,
    request: pytest.FixtureRequest,
    viewport: ViewportSize,
    *,
    service_workers: bool = False,
) -> Iterator[Page]:
    page = _new_page(chromium, live_server, viewport, service_workers=service_workers)
    yield page
    _close(page, request, chromium)


@pytest.fixture
def page(
    chromium: Chromium, live_server: LiveServer, request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A desktop-sized page (1280x800) in a fresh browser context."""
    yield from _open(chromium, live_server, request, DESKTOP)


@pytest.fixture
def second_page(
    chromium: Chromium, live_server: LiveServer, request: pytest.FixtureRequest
) -> Iterator[Page]:
    """Another desktop page in a context of its own: a second person at another computer."""
    yield from _open(chromium, live_server, request, DESKTOP)


@pytest.fixture
def phone(
    chromium: Chromium, live_server: LiveServer, request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A phone-sized page (390x844) in a fresh browser context."""
    yield from _open(chromium, live_server, request, PHONE)


@pytest.fixture
def phone_with_service_worker(
    chromium: Chromium, live_server: LiveServer, request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A phone-sized page whose context lets pages register service workers."""
    yield from _open(chromium, live_server, request, PHONE, service_workers=True)


def login(page: Page, email: str, password: str = DEMO_PASSWORD) -> None:
    """Sign in through the login form and wait for the home page."""
    page.goto("/login")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"^[^?#]+://[^/]+/$"))
    expect(page.get_by_test_id("topbar")).to_be_visible()
