"""The CRM pages in a real browser: the Kanban's drag and drop against the sales rules (a refused
move shows every reason on the card and the card returns; an allowed move persists with its new
tasks), photo upload on a property page, and the screenshots of docs/screenshots/.

The Kanban runs SortableJS with `forceFallback: true` (its pointer-driven drag, not native HTML5
drag and drop), so the tests drag with plain mouse moves, in steps, as a person would."""

from __future__ import annotations

import io
import itertools
import re
from typing import Any

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Locator, Page, expect

from tests.conftest import ROOT, LiveServer
from tests.e2e.conftest import AGENT, DEMO_PASSWORD, login

pytestmark = pytest.mark.e2e
SCREENSHOTS = ROOT / "docs" / "screenshots"
_numbers = itertools.count(1)


def _headers(live_server: LiveServer, email: str = AGENT.email) -> dict[str, str]:
    response = httpx.post(
        f"{live_server.url}/api/auth/token", data={"username": email, "password": DEMO_PASSWORD}
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _api(live_server: LiveServer, method: str, path: str, **kwargs: Any) -> Any:
    response = httpx.request(
        method, f"{live_server.url}{path}", headers=_headers(live_server), timeout=30, **kwargs
    )
    assert response.status_code < 300, response.text
    return response.json()


def _new_lead(live_server: LiveServer, name: str, **fields: Any) -> dict[str, Any]:
    body = {"name": f"{name} {next(_numbers)}", "source": "referral", "budget": "525000", **fields}
    return dict(_api(live_server, "POST", "/api/leads/", json=body))


def _shot(page: Page, name: str, *, full_page: bool = False) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=full_page)


def _open_board(page: Page) -> None:
    page.goto("/crm/leads/board")
    expect(page.get_by_test_id("kanban")).to_have_attribute("data-ready", "true")


def _column(page: Page, stage: str) -> Locator:
    return page.locator(f"[data-testid=kanban-column][data-stage={stage}]")


def _drag(page: Page, card: Locator, target: Locator) -> None:
    """Press on the card, move to the target column in small steps, release (SortableJS's
    fallback drag follows pointer events)."""
    card.scroll_into_view_if_needed()
    start = card.bounding_box()
    end = target.bounding_box()
    assert start is not None
    assert end is not None
    x, y = start["x"] + start["width"] / 2, start["y"] + 14
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 6, y + 6, steps=3)
    page.mouse.move(end["x"] + end["width"] / 2, end["y"] + 24, steps=20)
    page.mouse.move(end["x"] + end["width"] / 2, end["y"] + 30, steps=4)
    page.mouse.up()


def _populate_board(live_server: LiveServer) -> None:
    """A few leads across the stages, so that the board's picture looks like a working day."""
    moves = [
        ("Priya Patel", "website", ["needs_analysis"]),
        ("Marcus Chen", "zillow_paid", ["needs_analysis"]),
        ("Elena Rossi", "networking", []),
        ("Tom Becker", "open_house", ["closed_lost"]),
    ]
    for name, source, stages in moves:
        lead = _new_lead(live_server, name, source=source, phone="+1 512 555 0123")
        for stage in stages:
            _api(
                live_server, "POST", f"/api/leads/{lead['id']}/transition", json={"to_stage": stage}
            )


def test_a_refused_drag_shows_every_reason_on_the_card_and_returns_it(
    page: Page, live_server: LiveServer
) -> None:
    _populate_board(live_server)
    lead = _new_lead(live_server, "Rory Refused")
    login(page, AGENT.email)
    _open_board(page)
    card = _column(page, "lead").locator(f"[data-lead='{lead['id']}']")
    expect(card).to_be_visible()

    _drag(page, card, _column(page, "offer_sent").get_by_test_id("kanban-cards"))

    errors = card.get_by_test_id("card-errors")
    expect(errors).to_be_visible()
    expect(errors.locator("li")).to_have_count(2)
    expect(errors).to_contain_text("Invalid transition from Lead to Offer Sent")
    expect(errors).to_contain_text("Offer must be sent via WhatsApp before moving to this stage.")
    expect(card).to_have_attribute("data-state", "refused")
    # Back where it was, in the Lead column, and nothing changed on the server.
    expect(_column(page, "lead").locator(f"[data-lead='{lead['id']}']")).to_have_count(1)
    expect(_column(page, "offer_sent").locator(f"[data-lead='{lead['id']}']")).to_have_count(0)
    assert _api(live_server, "GET", f"/api/leads/{lead['id']}")["stage"] == "lead"
    _shot(page, "crm-kanban")


def test_an_allowed_drag_persists_after_reload_with_the_new_stages_tasks(
    page: Page, live_server: LiveServer
) -> None:
    lead = _new_lead(live_server, "Ava Allowed", phone="+1 512 555 0111")
    login(page, AGENT.email)
    _open_board(page)
    before = int(_column(page, "needs_analysis").get_by_test_id("column-count").inner_text())
    card = _column(page, "lead").locator(f"[data-lead='{lead['id']}']")

    _drag(page, card, _column(page, "needs_analysis").get_by_test_id("kanban-cards"))

    moved = _column(page, "needs_analysis").locator(f"[data-lead='{lead['id']}']")
    expect(moved).to_have_attribute("data-state", "saved")
    expect(moved.get_by_test_id("card-errors")).to_be_hidden()
    expect(_column(page, "needs_analysis").get_by_test_id("column-count")).to_have_text(
        str(before + 1)
    )

    page.reload()
    expect(page.get_by_test_id("kanban")).to_have_attribute("data-ready", "true")
    expect(_column(page, "needs_analysis").locator(f"[data-lead='{lead['id']}']")).to_be_visible()
    expect(_column(page, "lead").locator(f"[data-lead='{lead['id']}']")).to_have_count(0)
    assert _api(live_server, "GET", f"/api/leads/{lead['id']}")["stage"] == "needs_analysis"
    tasks = _api(live_server, "GET", "/api/tasks/", params={"lead_id": lead["id"]})["results"]
    assert {t["created_for_stage"] for t in tasks} >= {"lead", "needs_analysis"}
    # The lead's page lists them too.
    page.goto(f"/crm/leads/{lead['id']}")
    expect(page.get_by_test_id("lead-stage")).to_have_text("Needs Analysis")
    expect(page.locator("[data-testid=lead-task][data-stage=needs_analysis]")).to_have_count(2)


def _png(color: tuple[int, int, int], size: tuple[int, int] = (640, 480)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


def test_uploaded_photos_appear_as_thumbnails_in_order(page: Page, live_server: LiveServer) -> None:
    prop = _api(
        live_server,
        "POST",
        "/api/properties/",
        json={
            "property_type": "residential",
            "title": f"Barton Creek family home {next(_numbers)}",
            "address": "4100 Barton Creek Blvd",
            "city": "Austin",
            "state": "TX",
            "zip_code": "78735",
            "price": "875000",
            "description": "Four bedrooms on a quiet cul-de-sac, five minutes from the greenbelt.",
            "attributes": {
                "bedrooms": 4,
                "bathrooms": 3,
                "living_area_sqft": 2850,
                "year_built": 2004,
                "garage_spaces": 2,
            },
            "features": ["pool", "garage", "fireplace"],
        },
    )
    login(page, AGENT.email)
    page.goto(f"/crm/properties/{prop['id']}")
    expect(page.get_by_test_id("gallery")).to_be_visible()
    expect(page.get_by_test_id("gallery-thumb")).to_have_count(0)
    files = [
        {"name": "1-front.png", "mimeType": "image/png", "buffer": _png((46, 125, 50))},
        {"name": "2-kitchen.png", "mimeType": "image/png", "buffer": _png((25, 118, 210))},
        {"name": "3-garden.png", "mimeType": "image/png", "buffer": _png((230, 81, 0))},
    ]
    page.get_by_test_id("gallery-input").set_input_files(files)  # type: ignore[arg-type]

    thumbs = page.get_by_test_id("gallery-thumb")
    expect(thumbs).to_have_count(3)
    expect(thumbs.last.locator("img")).to_have_attribute(
        "src", re.compile(r"/media/properties/\d+/")
    )
    names = thumbs.locator("img").evaluate_all("(imgs) => imgs.map((i) => i.alt)")
    assert names == ["1-front.png", "2-kitchen.png", "3-garden.png"]
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=gallery-thumb] img')]"
        ".every((i) => i.complete && i.naturalWidth > 0)"
    )
    stored = _api(live_server, "GET", f"/api/properties/{prop['id']}/images")
    assert [i["original_name"] for i in stored] == names
    page.reload()  # the order is the server's, not only the page's
    names = (
        page.get_by_test_id("gallery-thumb")
        .locator("img")
        .evaluate_all("(imgs) => imgs.map((i) => i.alt)")
    )
    assert names == ["1-front.png", "2-kitchen.png", "3-garden.png"]
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=gallery-thumb] img')]"
        ".every((i) => i.complete && i.naturalWidth > 0)"
    )
    _shot(page, "crm-property", full_page=True)


def test_the_leads_table_and_the_property_form(page: Page, live_server: LiveServer) -> None:
    for name, source in (("Lena Lake", "website"), ("Omar Ortiz", "zillow_paid")):
        _new_lead(live_server, name, source=source, email=f"{name.split()[0].lower()}@example.com")
    login(page, AGENT.email)
    page.goto("/crm/leads?sort=-created_at")
    expect(page.get_by_test_id("lead-row").first).to_be_visible()
    page.get_by_label("Source").select_option("zillow_paid")
    page.get_by_test_id("filter-submit").click()
    expect(page).to_have_url(re.compile(r"source=zillow_paid"))
    expect(page.get_by_test_id("lead-row").first).to_contain_text("Omar Ortiz")
    for row in page.get_by_test_id("lead-row").all():
        expect(row).to_contain_text("Zillow paid")
    page.goto("/crm/leads?sort=-created_at")
    page.get_by_test_id("sort-name").click()
    expect(page).to_have_url(re.compile(r"sort=name"))
    _shot(page, "crm-leads")

    # The multi-step property form: each step is checked in the browser, the server checks all.
    page.goto("/crm/properties/new")
    form = page.get_by_test_id("property-form")
    expect(form).to_have_attribute("data-ready", "true")
    expect(page.get_by_test_id("step-2")).to_be_hidden()
    page.get_by_test_id("type-residential").check(force=True)
    page.get_by_test_id("field-title").fill("Travis Heights bungalow")
    page.get_by_test_id("field-address").fill("1207 Kenwood Ave")
    page.get_by_test_id("field-city").fill("Austin")
    page.get_by_test_id("field-state").fill("TX")
    page.get_by_test_id("field-zip_code").fill("78704")
    page.get_by_test_id("step-next").click()
    expect(page.get_by_test_id("step-2")).to_be_visible()
    expect(page.get_by_test_id("field-commercial.zoning")).to_be_hidden()
    page.get_by_test_id("field-residential.bedrooms").fill("3")
    page.get_by_test_id("field-residential.bathrooms").fill("2")
    page.get_by_test_id("field-residential.living_area_sqft").fill("1650")
    page.get_by_test_id("field-residential.year_built").fill("2999")  # the server refuses it
    page.get_by_test_id("step-next").click()
    expect(page.get_by_test_id("step-2")).to_be_visible()  # the browser stops it first (max)
    page.get_by_test_id("field-residential.year_built").evaluate(
        "(el) => el.removeAttribute('max')"
    )
    page.get_by_test_id("step-next").click()
    expect(page.get_by_test_id("step-3")).to_be_visible()
    page.get_by_test_id("field-price").fill("649,000")
    page.get_by_test_id("field-features").fill("porch, big yard")
    page.get_by_test_id("property-save").click()

    expect(page.get_by_test_id("form-has-errors")).to_be_visible()
    expect(page.get_by_test_id("step-2")).to_be_visible()  # reopened on the step with the error
    expect(page.get_by_test_id("error-residential.year_built")).to_contain_text("2100")
    expect(page.get_by_test_id("field-residential.living_area_sqft")).to_have_value("1650")
    _shot(page, "crm-property-form")
    page.get_by_test_id("field-residential.year_built").fill("1938")
    page.get_by_test_id("step-next").click()
    expect(page.get_by_test_id("field-price")).to_have_value("649,000")
    page.get_by_test_id("property-save").click()
    expect(page).to_have_url(re.compile(r"/crm/properties/\d+$"))
    expect(page.get_by_test_id("property-price")).to_have_text("$649,000")
