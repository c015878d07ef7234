"""Live updates in the browser: the indicator connects, and a change made elsewhere appears
on an open page without a reload."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.conftest import LiveServer
from tests.e2e.conftest import ADMIN, DEMO_PASSWORD, login, shot

pytestmark = pytest.mark.e2e


def _token(live_server: LiveServer, email: str) -> str:
    response = httpx.post(
        f"{live_server.url}/api/auth/token", data={"username": email, "password": DEMO_PASSWORD}
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def test_admin_home_updates_live(page: Page, live_server: LiveServer) -> None:
    login(page, ADMIN.email)
    expect(page.get_by_test_id("live-indicator")).to_have_attribute("data-state", "live")
    token = _token(live_server, ADMIN.email)
    headers = {"Authorization": f"Bearer {token}"}
    agents = httpx.get(
        f"{live_server.url}/api/users", params={"role": "agent", "per_page": 1}, headers=headers
    ).json()["items"]
    changed = httpx.patch(
        f"{live_server.url}/api/users/{agents[0]['id']}",
        json={"phone": "+15550009999"},
        headers=headers,
    )
    assert changed.status_code == 200
    recent = page.get_by_test_id("recent-changes")
    expect(recent.get_by_text(f"users #{agents[0]['id']}").first).to_be_visible()
    expect(recent.locator("tbody tr").first).to_contain_text("update")
    page.screenshot(path=shot("live-admin-home"))


def test_a_reloaded_page_resumes_from_the_last_event(page: Page, live_server: LiveServer) -> None:
    login(page, ADMIN.email)
    expect(page.get_by_test_id("live-indicator")).to_have_attribute("data-state", "live")
    headers = {"Authorization": f"Bearer {_token(live_server, ADMIN.email)}"}
    agents = httpx.get(
        f"{live_server.url}/api/users", params={"role": "agent", "per_page": 2}, headers=headers
    ).json()["items"]
    httpx.patch(
        f"{live_server.url}/api/users/{agents[1]['id']}",
        json={"phone": "+15550008888"},
        headers=headers,
    ).raise_for_status()
    page.wait_for_function("() => window.doorstepLive.lastEventId() !== null")
    last = page.evaluate("() => window.doorstepLive.lastEventId()")
    with page.expect_websocket() as opened:
        page.reload()
    assert f"last_event_id={last}" in opened.value.url
    expect(page.get_by_test_id("live-indicator")).to_have_attribute("data-state", "live")
