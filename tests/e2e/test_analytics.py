"""The `/analytics` dashboard in a real browser (seed 001), on the café chain of the demo data
(Morning Ritual Coffee, seeded at the test scale): every panel drawn, the presets, the location
filter, the drill-down from a bar of the top products, and the CSV export against the KPI
revenue; a desktop and a phone screenshot go to artifacts/."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import Locator, Page, expect

from doorstep.platform.auth import Role
from tests.conftest import LiveServer
from tests.e2e.conftest import DemoLogin, login, shot

pytestmark = pytest.mark.e2e

OWNER = DemoLogin("owner@doorstep.demo", "Nora Bennett", Role.admin)
CHARTS = (
    "revenue_trend",
    "by_location",
    "cohorts",
    "clv_distribution",
    "top_products",
    "segments",
    "hourly",
    "weekly",
)
KPIS = ("orders", "revenue", "aov", "customers")
EXPORT_HEADER = ["date", "location", "product", "quantity", "revenue", "order_count"]


def _open(page: Page, path: str = "/analytics") -> None:
    page.goto(path)
    _drawn(page, every=True)


def _drawn(page: Page, *, every: bool = False) -> None:
    """Wait for the KPI cards, the insights and every chart of the page to be drawn. With
    `every`, each panel must have its chart; else a panel may show its empty state (the cohorts
    of a range within one month)."""
    expect(page.get_by_test_id("analytics-dashboard")).to_be_visible()
    for key in KPIS:
        expect(page.get_by_test_id(f"kpi-{key}").get_by_test_id("kpi-value")).to_be_visible()
    insights = page.get_by_test_id("insights")
    expect(insights).to_be_visible()
    expect(
        insights.get_by_test_id("ml-unavailable").or_(insights.get_by_test_id("insight-churn"))
    ).to_be_visible()
    for name in CHARTS:
        panel = page.get_by_test_id(f"panel-{name}")
        expect(panel).to_be_visible()
        chart = panel.get_by_test_id(f"chart-{name}")
        if every or chart.count():
            expect(chart).to_have_attribute("data-rendered", "1")
            expect(chart.locator("svg")).to_be_visible()
        else:
            expect(panel.get_by_test_id("empty-state")).to_be_visible()
    charts = page.locator(".chart[data-spec]")
    for i in range(charts.count()):  # the drill-down's own chart too, when there is one
        expect(charts.nth(i)).to_have_attribute("data-rendered", "1")


def _kpis(page: Page) -> dict[str, str]:
    return {
        key: page.get_by_test_id(f"kpi-{key}").get_by_test_id("kpi-value").inner_text().strip()
        for key in KPIS
    }


def _dollars(text: str) -> Decimal:
    return Decimal(re.sub(r"[^\d.\-]", "", text))


def _fits(page: Page) -> None:
    """The dashboard and each of its charts fit the viewport's width (the top bar is the base
    template's business)."""
    overflow = page.evaluate(
        """() => {
          const width = document.documentElement.clientWidth;
          const out = [];
          const page = document.querySelector('[data-testid=analytics-dashboard]');
          if (page.getBoundingClientRect().right > width + 1) out.push('page');
          document.querySelectorAll('.analytics-page .card, .analytics-page .chart svg')
            .forEach((el) => {
              const box = el.getBoundingClientRect();
              const card = el.closest('.card-body') || el;
              if (box.left < -1 || box.right > width + 1
                  || el.scrollWidth > el.clientWidth + 1
                  || (el.tagName === 'svg' && box.right > card.getBoundingClientRect().right + 1))
                out.push(el.closest('[data-testid]').dataset.testid);
            });
          return out;
        }"""
    )
    assert overflow == [], f"wider than the viewport or their card: {overflow}"


def _bar(page: Page, chart: str) -> Locator:
    """A bar of a vega chart (SVG renderer): a mark with the `graphics-symbol` role."""
    return page.locator(
        f"[data-testid=chart-{chart}] svg [role=graphics-symbol][aria-roledescription=bar]"
    )


def test_the_cafe_dashboard(page: Page, live_server: LiveServer) -> None:
    login(page, OWNER.email)
    _open(page)
    expect(page.get_by_test_id("ml-unavailable")).to_contain_text(
        "ML Predictions Not Available Yet"
    )
    expect(page.get_by_test_id("period-label")).to_contain_text("Last 30 days")
    expect(page.get_by_test_id("preset-30d")).to_have_class(re.compile(r"\bbtn-primary\b"))
    assert _bar(page, "top_products").count() == 10
    _fits(page)
    page.screenshot(path=shot("analytics-dashboard"), full_page=True)
    last_30 = _kpis(page)

    # 7D: a new period, new figures.
    page.get_by_test_id("preset-7d").click()
    expect(page).to_have_url(re.compile(r"[?&]period=7d\b"))
    _drawn(page)
    expect(page.get_by_test_id("period-label")).to_contain_text("Last 7 days")
    expect(page.get_by_test_id("preset-7d")).to_have_class(re.compile(r"\bbtn-primary\b"))
    last_7 = _kpis(page)
    assert last_7["orders"] != last_30["orders"]
    assert last_7["revenue"] != last_30["revenue"]
    assert int(last_7["orders"].replace(",", "")) < int(last_30["orders"].replace(",", ""))

    # One location: the same seven days, that location's figures only.
    page.get_by_test_id("location").select_option(label="Santa Monica")
    expect(page).to_have_url(re.compile(r"[?&]location_id=\d+"))
    _drawn(page)
    query = parse_qs(urlparse(page.url).query)
    location_id = query["location_id"][0]
    expect(page.get_by_test_id("location")).to_have_value(location_id)
    # The quick period stays chosen when the location changes.
    assert query["period"] == ["7d"]
    expect(page.get_by_test_id("preset-7d")).to_have_class(re.compile(r"\bbtn-primary\b"))
    santa_monica = _kpis(page)
    assert santa_monica["orders"] != last_7["orders"]
    assert santa_monica["revenue"] != last_7["revenue"]
    assert _dollars(santa_monica["revenue"]) < _dollars(last_7["revenue"])
    # The by-location chart of a filtered page has that one location.
    assert _bar(page, "by_location").count() == 1

    # A bar of the top products drills down into that product.
    first_bar = _bar(page, "top_products").first
    first_bar.scroll_into_view_if_needed()
    first_bar.click()
    expect(page).to_have_url(re.compile(r"[?&]product_id=\d+"))
    detail = page.get_by_test_id("product-detail")
    expect(detail).to_be_visible()
    expect(detail).to_contain_text("drill-down")
    expect(detail.locator("tbody tr")).to_have_count(1)  # one location chosen
    expect(detail.locator("tbody tr").first).to_contain_text("Santa Monica")
    _drawn(page)
    assert parse_qs(urlparse(page.url).query)["location_id"] == [location_id]
    detail.scroll_into_view_if_needed()
    page.screenshot(path=shot("analytics-drilldown"))

    # Back to every product, and the export of what the page shows.
    page.get_by_test_id("clear-product").click()
    expect(page.get_by_test_id("product-detail")).to_have_count(0)
    _drawn(page)
    shown = _dollars(page.get_by_test_id("kpi-revenue").get_by_test_id("kpi-value").inner_text())
    with page.expect_download() as download_info:
        page.get_by_test_id("export-csv").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".csv")
    rows = list(csv.reader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert rows[0] == EXPORT_HEADER
    body = rows[1:]
    assert body
    assert {row[1] for row in body} == {"Santa Monica"}
    revenue = sum(Decimal(row[4]) for row in body)
    # The card shows whole dollars; the API gives the same figure to the cent.
    assert abs(revenue - shown) <= Decimal("0.5") + Decimal("0.01") * len(body)
    api = page.request.get("/api/analytics/dashboard?" + urlparse(page.url).query)
    assert api.ok, api.text()
    exact = Decimal(str(api.json()["kpis"]["revenue"]["value"]))
    assert abs(exact - shown) <= Decimal("0.5")
    assert abs(revenue - exact) <= Decimal("0.01") * len(body)
    assert sum(int(row[5]) for row in body) >= int(santa_monica["orders"].replace(",", ""))


def test_the_cafe_dashboard_on_a_phone(phone: Page, live_server: LiveServer) -> None:
    login(phone, OWNER.email)
    _open(phone)
    _fits(phone)
    phone.screenshot(path=shot("analytics-phone"), full_page=True)
