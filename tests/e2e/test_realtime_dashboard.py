"""The live dashboard (`/realtime-dashboard`, seed 002) in a real browser: the Socket.IO
connection turns the badge "Live", the four tabs, the manual refresh, and the phone layout;
screenshots go to artifacts/realtime-dashboard-*.png."""

from __future__ import annotations

import re
import uuid
from datetime import date
from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from doorstep.platform.auth import User
from doorstep.platform.db import make_engine
from doorstep.reports.models import Company, CompanyMetric, MarketBenchmark, Valuation
from tests.conftest import LiveServer
from tests.e2e.conftest import ANALYST, BROKER, login, shot

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def portfolio(live_server: LiveServer) -> None:
    """A few companies for the demo brokerage when its demo data has none (the reports demo
    data is written separately): enough for every section of the page to have rows."""
    engine = make_engine(live_server.database_url)
    try:
        with Session(engine) as session, session.begin():
            tenant_id = session.scalar(select(User.tenant_id).where(User.email == BROKER.email))
            assert tenant_id is not None
            if session.scalar(select(func.count(Company.id)).where(Company.tenant_id == tenant_id)):
                return
            tag = uuid.uuid4().hex[:4]
            figures = [
                ("Harbor Coffee Co.", "Coffee shops", 2_400_000, 1_900_000, "0.012", "0.08"),
                ("Maple Street Bakery", "Bakeries", 850_000, 900_000, "0.03", "0.16"),
                ("Northside Fitness", "Fitness studios", 1_250_000, 1_200_000, "0.02", "0.14"),
            ]
            for name, industry, before, latest, growth, margin in figures:
                company = Company(tenant_id=tenant_id, name=f"{name} {tag}", industry=industry)
                session.add(company)
                session.flush()
                for value, on in ((before, date(2025, 3, 31)), (latest, date(2025, 6, 30))):
                    session.add(
                        Valuation(
                            tenant_id=tenant_id,
                            company_id=company.id,
                            method="revenue_multiple",
                            value=Decimal(value),
                            low=Decimal(value) * Decimal("0.9"),
                            high=Decimal(value) * Decimal("1.1"),
                            confidence=Decimal("0.78"),
                            valued_on=on,
                        )
                    )
                session.add(
                    CompanyMetric(
                        tenant_id=tenant_id,
                        company_id=company.id,
                        period=date(2025, 6, 1),
                        revenue=Decimal(latest) / 24,
                        growth=Decimal(growth),
                        margin=Decimal(margin),
                        churn=Decimal("0.03"),
                    )
                )
                for metric, p25, p50, p75 in (
                    ("revenue_growth", "0.06", "0.12", "0.20"),
                    ("ebitda_margin", "0.10", "0.14", "0.19"),
                    ("monthly_churn", "0.02", "0.035", "0.05"),
                    ("revenue_multiple", "0.8", "1.2", "1.8"),
                ):
                    session.add(
                        MarketBenchmark(
                            tenant_id=tenant_id,
                            industry=industry,
                            metric=metric,
                            p25=Decimal(p25),
                            p50=Decimal(p50),
                            p75=Decimal(p75),
                            as_of=date(2025, 6, 30),
                            source="Doorstep e2e benchmark set",
                        )
                    )
    finally:
        engine.dispose()


def _live(page: Page) -> None:
    expect(page.get_by_test_id("realtime-dashboard")).to_be_visible()
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "live")
    expect(page.get_by_test_id("connection-status")).to_have_text(re.compile("Live"))
    # The socket's first dashboard_data has been rendered over the server-rendered first paint.
    expect(page.get_by_test_id("realtime-dashboard")).to_have_attribute(
        "data-updates", re.compile(r"^[1-9]")
    )


def test_the_dashboard_goes_live_and_every_tab_shows_its_figures(
    page: Page, portfolio: None
) -> None:
    login(page, BROKER.email)
    page.goto("/realtime-dashboard")
    _live(page)
    overview = page.get_by_test_id("pane-overview")
    expect(overview.get_by_test_id("summary-portfolio_value")).to_contain_text("$")
    # The reports' valuation chart spec, drawn by vega-embed on the page.
    expect(overview.get_by_test_id("chart-valuations").locator("svg")).to_be_visible()
    expect(overview.get_by_test_id("companies-table").locator("tbody tr").first).to_be_visible()
    page.screenshot(path=shot("realtime-dashboard-overview"), full_page=True)

    page.get_by_test_id("tab-market").click()
    market = page.get_by_test_id("pane-market")
    expect(market).to_be_visible()
    expect(market.get_by_test_id("market-industry").first).to_be_visible()
    expect(overview).to_be_hidden()
    page.screenshot(path=shot("realtime-dashboard-market"), full_page=True)

    page.get_by_test_id("tab-system").click()
    system = page.get_by_test_id("pane-system")
    expect(system).to_be_visible()
    # Real figures of the server: this page's own requests are among them.
    expect(system.get_by_test_id("system-socketio")).to_contain_text(re.compile(r"[1-9]"))
    expect(system.get_by_test_id("system-p95")).to_contain_text("requests since start")
    page.screenshot(path=shot("realtime-dashboard-system"), full_page=True)

    page.get_by_test_id("tab-notifications").click()
    notes = page.get_by_test_id("pane-notifications")
    expect(notes).to_be_visible()
    expect(
        notes.get_by_test_id("alert").first.or_(notes.get_by_test_id("empty-state").first)
    ).to_be_visible()
    page.screenshot(path=shot("realtime-dashboard-notifications"), full_page=True)

    # The manual refresh asks the server again (request_update); a new dashboard_data arrives.
    root = page.get_by_test_id("realtime-dashboard")
    before = int(root.get_attribute("data-updates") or "0")
    page.get_by_test_id("refresh").click()
    expect(root).to_have_attribute("data-updates", re.compile(rf"^(?!{before}$)\d+$"))
    expect(page.get_by_test_id("rt-error")).to_be_hidden()


def test_the_dashboard_reads_on_a_phone(phone: Page, portfolio: None) -> None:
    login(phone, ANALYST.email)
    phone.goto("/realtime-dashboard")
    _live(phone)
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width}px)"
    phone.screenshot(path=shot("realtime-dashboard-phone"), full_page=True)
    phone.get_by_test_id("tab-notifications").click()
    expect(phone.get_by_test_id("pane-notifications")).to_be_visible()
