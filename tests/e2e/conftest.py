"""Browser fixtures: one Chromium per session, a fresh context (cookies, storage) per test.

Chromium is the system one (/usr/bin/chromium); Playwright's own browser download is never used.
Screenshots go to ./artifacts/ (git-ignored); a failing test leaves one there too."""

from __future__ import annotations

import contextlib
import re
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


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    for stale in ARTIFACTS.glob("failed-*.png"):
        stale.unlink()
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture(scope="session", autouse=True)
def _expect_timeout() -> None:
    expect.set_options(timeout=TIMEOUT_MS)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"report_{report.when}", report)


def _new_page(browser: Browser, live_server: LiveServer, viewport: ViewportSize) -> Page:
    context = browser.new_context(base_url=live_server.url, viewport=viewport)
    context.set_default_timeout(TIMEOUT_MS)
    return context.new_page()


def _close(page: Page, request: pytest.FixtureRequest) -> None:
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        name = re.sub(r"[^\w.-]+", "_", request.node.name)
        with contextlib.suppress(PlaywrightError):  # a crashed page must not hide the failure
            page.screenshot(path=shot(f"failed-{name}"), full_page=True)
    page.context.close()


@pytest.fixture
def page(
    browser: Browser, live_server: LiveServer, request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A desktop-sized page (1280x800) in a fresh browser context."""
    page = _new_page(browser, live_server, DESKTOP)
    yield page
    _close(page, request)


@pytest.fixture
def phone(
    browser: Browser, live_server: LiveServer, request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A phone-sized page (390x844) in a fresh browser context."""
    page = _new_page(browser, live_server, PHONE)
    yield page
    _close(page, request)


def login(page: Page, email: str, password: str = DEMO_PASSWORD) -> None:
    """Sign in through the login form and wait for the home page."""
    page.goto("/login")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"^[^?#]+://[^/]+/$"))
    expect(page.get_by_test_id("topbar")).to_be_visible()
