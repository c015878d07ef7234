"""The notification centre in the browser: the bell counts live, the list marks read, the
settings grid saves, and the admin outbox shows what went out (or would have)."""

from __future__ import annotations

import random
import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.conftest import LiveServer
from tests.e2e.conftest import ADMIN, AGENT2, DEMO_PASSWORD, login, shot

pytestmark = pytest.mark.e2e


def _headers(live_server: LiveServer, email: str) -> dict[str, str]:
    response = httpx.post(
        f"{live_server.url}/api/auth/token", data={"username": email, "password": DEMO_PASSWORD}
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_bell_counts_live_and_the_list_marks_read(page: Page, live_server: LiveServer) -> None:
    mine = _headers(live_server, AGENT2.email)
    httpx.post(f"{live_server.url}/api/notifications/read-all", headers=mine).raise_for_status()
    me = httpx.get(f"{live_server.url}/api/auth/me", headers=mine).json()

    login(page, AGENT2.email)
    expect(page.get_by_test_id("live-indicator")).to_have_attribute("data-state", "live")
    badge = page.get_by_test_id("unread-count")
    expect(badge).to_be_hidden()

    # An admin changes the agent's account elsewhere; the open page hears of it at once.
    changed = httpx.patch(
        f"{live_server.url}/api/users/{me['id']}",
        json={"phone": f"+1555{random.randrange(1_000_000, 9_999_999)}"},
        headers=_headers(live_server, ADMIN.email),
    )
    assert changed.status_code == 200, changed.text
    expect(badge).to_be_visible()
    expect(badge).to_have_text("1")
    expect(page.locator("#toasts")).to_contain_text("Your account was updated")

    page.get_by_test_id("bell").click()
    expect(page).to_have_url(re.compile(r"/notifications$"))
    item = page.get_by_test_id("notification").first
    expect(item).to_have_attribute("data-unread", "true")
    expect(item).to_contain_text("Morgan Admin changed your phone number.")
    page.screenshot(path=shot("notifications-list"))
    item.get_by_test_id("mark-read").click()
    expect(page.get_by_test_id("notification").first).to_have_attribute("data-unread", "false")
    expect(badge).to_be_hidden()


def test_settings_grid_saves(page: Page) -> None:
    login(page, AGENT2.email)
    page.goto("/notifications/settings")
    sms = page.get_by_test_id("choice-account.updated-sms")
    was = sms.is_checked()
    sms.set_checked(not was)
    page.get_by_test_id("save-settings").click()
    expect(page.locator("#toasts")).to_contain_text("Notification settings saved")
    expect(page.get_by_test_id("choice-account.updated-sms")).to_be_checked(checked=not was)
    page.get_by_test_id("choice-account.updated-sms").set_checked(was)
    page.get_by_test_id("save-settings").click()
    expect(page.get_by_test_id("choice-account.updated-sms")).to_be_checked(checked=was)


def test_admin_sends_a_test_and_finds_it_in_the_outbox(page: Page) -> None:
    login(page, ADMIN.email)
    page.goto("/admin/outbox")
    page.get_by_test_id("send-test").click()
    expect(page.locator("#toasts")).to_contain_text("Test notification sent")
    # The job runs in the server (embedded) or a worker (production); wait for its outcome.
    delivery = page.get_by_test_id("delivery").first
    for _ in range(40):
        if delivery.get_attribute("data-status") != "queued":
            break
        page.wait_for_timeout(250)
        page.reload()
    expect(delivery).to_have_attribute("data-status", re.compile("^(captured|failed)$"))
    expect(delivery).to_contain_text("Test notification")
    delivery.get_by_text("Show the message").click()
    page.screenshot(path=shot("admin-outbox"), full_page=True)
    page.goto("/admin/jobs")
    expect(page.get_by_test_id("recent-job").first).to_contain_text("notify.deliver")
