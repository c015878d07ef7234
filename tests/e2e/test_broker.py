"""The broker dashboard in a real browser, over the real WebSocket (seed 004): the broker has the
dashboard open, an agent opens an escrow through the API, and the escrow appears in the broker's
activity feed and the bell's count rises without a reload. The page never carries an agent's
lead; the screenshots of the dashboard and an agent report go to docs/screenshots/."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from doorstep.platform.db import utcnow
from tests.conftest import ROOT, LiveServer, record_figure
from tests.e2e.conftest import AGENT, AGENT2, BROKER, DEMO_PASSWORD, login

pytestmark = pytest.mark.e2e
SCREENSHOTS = ROOT / "docs" / "screenshots"
_numbers = itertools.count(701, 2)


def _headers(live_server: LiveServer, email: str) -> dict[str, str]:
    response = httpx.post(
        f"{live_server.url}/api/auth/token", data={"username": email, "password": DEMO_PASSWORD}
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _escrow(address: str) -> dict[str, Any]:
    today = utcnow().date()
    return {
        "property_address": address,
        "property_city": "Bakersfield",
        "property_state": "CA",
        "property_zip": "93301",
        "buyer_name": "Pat Buyer",
        "buyer_ids": [],
        "purchase_price": "450000.00",
        "down_payment": "90000.00",
        "loan_type": "conventional",
        "my_commission": "13500.00",
        "contract_date": str(today),
        "target_closing_date": str(today + timedelta(days=40)),
        "stakeholders": {"lender": True, "title company": True},
    }


def _agents_leads(live_server: LiveServer) -> list[dict[str, Any]]:
    leads: list[dict[str, Any]] = []
    for agent in (AGENT, AGENT2):
        page = httpx.get(
            f"{live_server.url}/api/leads/",
            params={"ordering": "-created_at", "page_size": 50},
            headers=_headers(live_server, agent.email),
            timeout=30,
        )
        assert page.status_code == 200, page.text
        leads += page.json()["results"]
    assert leads, "the demo agents have leads"
    return leads


def _assert_no_lead_of_an_agent(page: Page, live_server: LiveServer) -> None:
    """No agent's lead's e-mail or phone anywhere in the page, and no lead's name outside the
    places that legitimately show other people by name (the team's new clients in the feed,
    who may share a converted lead's name; the broker's own appointments)."""
    html = page.content()
    elsewhere = page.evaluate(
        """() => {
          const copy = document.body.cloneNode(true);
          copy.querySelectorAll('[data-testid=activity-feed], [data-testid=my-appointments]')
            .forEach((el) => el.remove());
          return copy.outerHTML;
        }"""
    )
    for lead in _agents_leads(live_server):
        for detail in (lead["email"], lead["phone"]):
            assert not detail or detail not in html, detail
        assert lead["name"] not in elsewhere, lead["name"]


def _save(page: Page, name: str, full_page: bool = False) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=full_page)


def test_an_agents_new_escrow_reaches_the_open_dashboard(
    page: Page, live_server: LiveServer
) -> None:
    broker = _headers(live_server, BROKER.email)
    httpx.post(f"{live_server.url}/api/notifications/read-all", headers=broker).raise_for_status()

    page.set_viewport_size({"width": 1440, "height": 1800})
    login(page, BROKER.email)
    page.goto("/broker-dashboard")
    expect(page.get_by_test_id("broker-dashboard")).to_be_visible()
    expect(page.get_by_test_id("live-indicator")).to_have_attribute("data-state", "live")
    cards = page.get_by_test_id("agent-card")
    assert cards.count() >= 40
    expect(cards.first.get_by_test_id("card-total-leads")).to_contain_text("leads")
    badge = page.get_by_test_id("unread-count")
    expect(badge).to_be_hidden()
    _assert_no_lead_of_an_agent(page, live_server)
    assert page.get_by_test_id("source-count").count() >= 3  # Josh's own leads, by source

    # Stamp, in the broker's page, when the feed shows the escrow and when the bell counts it.
    address = f"{next(_numbers)} Chester Avenue"
    page.evaluate(
        """(address) => {
          const feed = document.querySelector('.broker-feed-scroll');
          const badge = document.querySelector('[data-testid=unread-count]');
          new MutationObserver(() => {
            if (feed.textContent.includes(address)) window.__feedAt ??= Date.now();
          }).observe(feed, { childList: true, subtree: true, characterData: true });
          new MutationObserver(() => { if (!badge.hidden) window.__bellAt ??= Date.now(); })
            .observe(badge, { attributes: true, childList: true, characterData: true });
          window.__loadedAt = performance.timeOrigin;
        }""",
        address,
    )
    sent_at = page.evaluate("() => Date.now()")
    created = httpx.post(
        f"{live_server.url}/api/v1/transactions/",
        json=_escrow(address),
        headers=_headers(live_server, AGENT.email),
        timeout=30,
    )
    assert created.status_code == 201, created.text

    first = page.get_by_test_id("activity-item").first
    expect(first).to_contain_text(address)
    expect(first).to_contain_text(f"{AGENT.name} created new escrow")
    expect(first).to_contain_text("($450K)")
    expect(first).to_have_attribute("href", f"/transactions/{created.json()['id']}")
    expect(badge).to_be_visible()
    expect(badge).to_have_text("1")
    assert page.evaluate("() => window.__loadedAt") == page.evaluate(
        "() => performance.timeOrigin"
    ), "the page was reloaded"
    feed_ms = page.evaluate("() => window.__feedAt") - sent_at
    bell_ms = page.evaluate("() => window.__bellAt") - sent_at
    print(f"broker feed {feed_ms} ms, bell {bell_ms} ms after the agent's request")
    record_figure("broker dashboard: escrow in the feed after the agent's POST (ms)", feed_ms)
    record_figure("broker dashboard: bell count after the agent's POST (ms)", bell_ms)

    page.locator(".toast").first.wait_for(state="detached")  # the toast leaves the picture
    _save(page, "broker-dashboard")

    # The first card's report: KPIs, charts and months, with the CSV export.
    page.set_viewport_size({"width": 1280, "height": 800})
    cards.first.get_by_test_id("view-report").click()
    expect(page.get_by_test_id("agent-report")).to_be_visible()
    expect(page.get_by_test_id("chart-volume")).to_be_visible()
    expect(page.get_by_test_id("month-row").first).to_be_visible()
    href = page.get_by_test_id("csv-export").get_attribute("href") or ""
    assert "format=csv" in href
    assert "startDate=" in href
    assert "endDate=" in href
    exported = page.request.get(href)
    assert exported.ok
    assert exported.headers["content-type"].startswith("text/csv")
    _save(page, "broker-agent-report", full_page=True)
