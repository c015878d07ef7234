"""The buyer's portal and the agent pages in a real browser, over the real WebSocket: the agent
completes a milestone and the buyer's open portal follows within a second, celebration included;
the portal at phone size; the portal opened offline from its service worker's cache."""

from __future__ import annotations

import itertools
import json
import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from doorstep.platform.db import utcnow
from tests.conftest import LiveServer, record_figure
from tests.e2e.conftest import AGENT, CLIENT, DEMO_PASSWORD, login, shot

pytestmark = pytest.mark.e2e
API = "/api/v1/transactions/"


def _headers(live_server: LiveServer, email: str) -> dict[str, str]:
    response = httpx.post(
        f"{live_server.url}/api/auth/token", data={"username": email, "password": DEMO_PASSWORD}
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _open_purchase(live_server: LiveServer, address: str) -> dict[str, Any]:
    """Sam Buyer's purchase as in the seed's example: four steps done, loan approval under way."""
    agent = _headers(live_server, AGENT.email)
    buyer_id = httpx.get(
        f"{live_server.url}/api/auth/me", headers=_headers(live_server, CLIENT.email)
    ).json()["id"]
    today = utcnow().date()
    body = {
        "property_address": address,
        "property_city": "Austin",
        "property_state": "TX",
        "property_zip": "78704",
        "buyer_name": CLIENT.name,
        "buyer_ids": [buyer_id],
        "purchase_price": "485000.00",
        "down_payment": "97000.00",
        "loan_type": "conventional",
        "my_commission": "14550.00",
        "contract_date": str(today - timedelta(days=24)),
        "target_closing_date": str(today + timedelta(days=20)),
        "stakeholders": {"lender": True, "title company": True, "inspector": True},
    }
    created = httpx.post(f"{live_server.url}{API}", json=body, headers=agent)
    assert created.status_code == 201, created.text
    tx = created.json()
    steps = [
        ("loan_application", "completed", 3),
        ("home_inspection", "completed", 8),
        ("appraisal_ordered", "completed", 10),
        ("loan_approval", "in_progress", None),
    ]
    for milestone_type, status, day in steps:
        move = {"milestone_type": milestone_type, "status": status}
        if day is not None:
            move["actual_date"] = str(today - timedelta(days=24 - day))
        moved = httpx.put(f"{live_server.url}{API}{tx['id']}/milestones", json=move, headers=agent)
        assert moved.status_code == 200, moved.text
    return dict(moved.json())


def _settled(page: Page) -> None:
    """The entrance animations (bar, gauges) have played: the page is ready for its picture."""
    expect(page.locator("html")).to_have_class(re.compile(r"\btx-settled\b"))


def _dismiss_missed_celebrations(page: Page) -> None:
    """Celebrations fired while the buyer was away are shown on arrival, one after another."""
    missed = json.loads(page.locator("#missed-celebrations").text_content() or "[]")
    modal = page.get_by_test_id("celebration-modal")
    for celebration in missed:
        expect(page.get_by_test_id("celebration-title")).to_have_text(celebration["title"])
        page.get_by_test_id("celebration-close").click()
    expect(modal).to_be_hidden()


_numbers = itertools.count(41, 2)


@pytest.fixture
def purchase(live_server: LiveServer) -> dict[str, Any]:
    return _open_purchase(live_server, f"{next(_numbers)} Barton Hills Drive")


def test_the_buyer_sees_the_agents_change_live(
    page: Page, second_page: Page, live_server: LiveServer, purchase: dict[str, Any]
) -> None:
    tx_id = purchase["id"]
    assert purchase["progress_percentage"] == "72.50"

    login(page, CLIENT.email)
    page.goto(f"/portal/{tx_id}")
    expect(page.get_by_test_id("portal-progress")).to_have_text("73%")
    expect(page.locator("html")).to_have_attribute("data-bs-theme", "dark")
    _dismiss_missed_celebrations(page)
    loan = page.locator("[data-testid=milestone][data-milestone=loan_approval]")
    expect(loan).to_have_attribute("data-status", "in_progress")
    expect(page.get_by_test_id("live-indicator")).to_have_attribute("data-state", "live")
    # Stamp, in the buyer's page, the moment the hero and the modal change.
    page.evaluate(
        """() => {
          const progress = document.querySelector('[data-testid=portal-progress]');
          const modal = document.querySelector('[data-testid=celebration-modal]');
          new MutationObserver(() => { window.__progressAt ??= Date.now(); })
            .observe(progress, { childList: true, characterData: true, subtree: true });
          new MutationObserver(() => { if (!modal.hidden) window.__modalAt ??= Date.now(); })
            .observe(modal, { attributes: true, attributeFilter: ['hidden'] });
        }"""
    )
    _settled(page)
    page.screenshot(path=shot("transactions-portal-desktop"), full_page=True)

    agent = second_page
    login(agent, AGENT.email)
    agent.goto(f"/transactions/{tx_id}")
    expect(agent.get_by_test_id("agent-progress")).to_have_text("73%")
    form = agent.locator("[data-milestone-form=loan_approval]")
    form.locator("select[name=status]").select_option("completed")
    # Every toast the agent is shown (they remove themselves after a few seconds).
    agent.evaluate(
        """() => {
          window.__toasts = [];
          new MutationObserver((changes) => changes.forEach((c) => c.addedNodes.forEach(
            (n) => n.nodeType === 1 && window.__toasts.push(n.textContent.trim()))))
            .observe(document.getElementById('toasts'), { childList: true });
        }"""
    )
    clicked_at = agent.evaluate("() => Date.now()")
    form.get_by_test_id("milestone-save").click()

    expect(page.get_by_test_id("portal-progress")).to_have_text("80%", timeout=15_000)
    expect(loan).to_have_attribute("data-status", "completed")
    expect(page.get_by_test_id("celebration-modal")).to_be_visible(timeout=15_000)
    progress_ms = page.evaluate("() => window.__progressAt") - clicked_at
    modal_ms = page.evaluate("() => window.__modalAt") - clicked_at
    print(
        f"\nagent click -> buyer's hero updated in {progress_ms} ms, "
        f"celebration shown in {modal_ms} ms (over the real WebSocket)"
    )
    # The issue asks for under a second; the figure is reported, never asserted (a busy
    # machine must not fail the suite); bench/milestone_latency.py measures it properly.
    record_figure("live milestone -> buyer's hero (ms)", progress_ms)
    record_figure("live milestone -> celebration modal (ms)", modal_ms)

    # The modal shows a celebration the agent's change fired, and its engagement is kept.
    title = page.get_by_test_id("celebration-title").text_content()
    celebrations = httpx.get(
        f"{live_server.url}{API}{tx_id}/celebrations",
        headers=_headers(live_server, AGENT.email),
    ).json()
    fired = {c["title"] for c in celebrations if c["trigger_key"] == "milestone:loan_approval"}
    assert title in fired | {c["title"] for c in celebrations if c["shown_at"] is None}
    expect(page.get_by_test_id("health-score")).to_have_text(re.compile(r"^\d+$"))
    expect(page.locator("[data-testid=feed-item]").first).to_contain_text(
        re.compile("Loan Approval|Loan approved|%")
    )
    page.screenshot(path=shot("transactions-celebration"))
    page.get_by_test_id("celebration-share").click()
    expect(page.get_by_test_id("celebration-share")).to_contain_text("Copied")
    while page.get_by_test_id("celebration-modal").is_visible():
        page.get_by_test_id("celebration-close").click()
    shown = httpx.get(
        f"{live_server.url}{API}{tx_id}/celebrations",
        headers=_headers(live_server, AGENT.email),
    ).json()
    seen = next(c for c in shown if c["title"] == title)
    assert seen["shown_at"] is not None
    assert seen["shared"] is True
    assert seen["share_channel"] == "copy_link"
    assert seen["seconds_viewed"] > 0

    # The agent's page kept up too: the form answered, the panels moved.
    expect(agent.get_by_test_id("agent-progress")).to_have_text("80%")
    toasts = agent.evaluate("() => window.__toasts")
    assert toasts.count("Loan Approval: completed.") == 1, toasts
    expect(agent.get_by_test_id("celebration-row").first).to_be_visible()
    agent.reload()  # without the toasts, for the picture
    expect(agent.get_by_test_id("agent-progress")).to_have_text("80%")
    _settled(agent)
    agent.screenshot(path=shot("transactions-agent"), full_page=True)


def test_a_refused_change_is_explained_on_the_agent_page(
    page: Page, live_server: LiveServer, purchase: dict[str, Any]
) -> None:
    login(page, AGENT.email)
    page.goto(f"/transactions/{purchase['id']}")
    form = page.locator("[data-milestone-form=closing_day]")
    form.locator("select[name=status]").select_option("completed")
    form.get_by_test_id("milestone-save").click()
    error = page.get_by_test_id("milestone-error")
    expect(error).to_contain_text("Closing Day cannot be completed before")
    expect(page.locator("#toasts")).to_contain_text("Not saved")
    expect(page.get_by_test_id("agent-progress")).to_have_text("73%")

    # A change made elsewhere (here through the API) reaches the open agent page live.
    expect(page.get_by_test_id("live-indicator")).to_have_attribute("data-state", "live")
    moved = httpx.put(
        f"{live_server.url}{API}{purchase['id']}/milestones",
        json={"milestone_type": "title_search", "status": "in_progress"},
        headers=_headers(live_server, AGENT.email),
    )
    assert moved.status_code == 200, moved.text
    title = page.locator("[data-testid=agent-milestone][data-milestone=title_search]")
    expect(title).to_have_attribute("data-status", "in_progress")
    expect(page.get_by_test_id("agent-progress")).to_have_text("78%")
    expect(page.locator("#tx-activity")).to_contain_text("Title Search started")


def test_the_agents_list_groups_deals_by_stage(page: Page, purchase: dict[str, Any]) -> None:
    login(page, AGENT.email)
    page.goto("/transactions?q=Barton")
    row = page.locator("[data-testid=tx-row][data-stage=loan_approval]")
    expect(row.locator(".tx-row-title")).to_contain_text("Loan Approval")
    card = row.locator(f"[data-transaction='{purchase['id']}']")
    expect(card.get_by_test_id("tx-progress")).to_have_text("73%")
    card.click()
    expect(page).to_have_url(re.compile(rf"/transactions/{purchase['id']}$"))
    page.goto("/transactions")
    _settled(page)
    page.screenshot(path=shot("transactions-list"), full_page=True)


def test_the_portal_on_a_phone_and_offline(
    phone_with_service_worker: Page, live_server: LiveServer, purchase: dict[str, Any]
) -> None:
    phone = phone_with_service_worker
    tx_id = purchase["id"]
    login(phone, CLIENT.email)
    phone.goto(f"/portal/{tx_id}")
    _dismiss_missed_celebrations(phone)
    expect(phone.get_by_test_id("portal-progress")).to_have_text("73%")
    width = phone.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"the portal scrolls sideways at 390 px ({width} px wide)"
    _settled(phone)
    phone.screenshot(path=shot("transactions-portal-phone"))
    phone.screenshot(path=shot("transactions-portal-phone-full"), full_page=True)

    # The service worker has kept this page; with the network gone, the portal still opens.
    portal = phone.get_by_test_id("portal")
    expect(portal).to_have_attribute("data-offline-ready", "true")
    expect(phone.get_by_test_id("offline-banner")).to_be_hidden()
    phone.context.set_offline(True)
    try:
        phone.reload()
        expect(phone.get_by_test_id("portal-progress")).to_have_text("73%")
        expect(phone.get_by_test_id("offline-banner")).to_be_visible()
        expect(phone.get_by_test_id("offline-banner")).to_contain_text("Offline — last updated")
        expect(phone.locator("[data-testid=milestone]")).to_have_count(8)
        _settled(phone)
        phone.screenshot(path=shot("transactions-portal-offline"), full_page=True)
    finally:
        phone.context.set_offline(False)
    # Back online, the portal fetches itself anew: the banner goes, the live link returns.
    expect(phone.get_by_test_id("offline-banner")).to_be_hidden()
    expect(phone.get_by_test_id("portal-progress")).to_have_text("73%")
