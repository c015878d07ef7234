"""The report builder in a real browser (seed 002), on the demo data: the analyst asks for an
Executive Summary of a demo company, the history refreshes itself until it is ready, and the
PDF downloads, opens and names the company; a screenshot goes to artifacts/."""

from __future__ import annotations

import io

import pytest
from playwright.sync_api import Page, expect
from pypdf import PdfReader

from tests.e2e.conftest import ANALYST, login, shot

pytestmark = pytest.mark.e2e


def test_analyst_makes_and_downloads_an_executive_summary(page: Page) -> None:
    login(page, ANALYST.email)
    page.goto("/reports")
    builder = page.get_by_test_id("report-builder")
    expect(builder).to_be_visible()
    builder.get_by_test_id("builder-template").select_option("executive_summary")
    company = builder.get_by_test_id("builder-company")
    chosen = company.locator("option").first.inner_text().split(" · ")[0]
    company.select_option(index=0)
    ticked = builder.locator("[data-sections] input:checked")
    expect(ticked).to_have_count(5)  # the template's default sections
    builder.get_by_test_id("builder-submit").click()
    row = page.get_by_test_id("report-row").first
    expect(row).to_be_visible()
    # No reload: the history polls itself while a report is queued or running.
    expect(row).to_have_attribute("data-status", "done", timeout=60_000)
    page.screenshot(path=shot("reports-builder"), full_page=True)
    with page.expect_download() as info:
        row.get_by_test_id("download").click()
    data = open(info.value.path(), "rb").read()  # noqa: SIM115
    assert data[:4] == b"%PDF"
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)
    assert "Executive Summary" in text
    assert chosen in text
    assert "Valuation comparison" in text  # a default section's chart title
