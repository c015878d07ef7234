"""The analytics API and page: who may look, filter validation, the streamed CSV export, the
orders CSV import, the brokerage feed, and the page's panels and empty states."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from doorstep.analytics import api, feeds
from doorstep.analytics.models import DimLocation, FactSales
from doorstep.platform.auth import Role
from doorstep.transactions.models import Transaction
from tests.analytics.test_warehouse import ZONES, load, random_orders
from tests.broker.test_notices import open_escrow
from tests.conftest import Brokerage, bearer, web_login

RANGE = {"start": "2026-06-01", "end": "2026-06-30"}
CLOSING_STEPS = (
    "loan_application",
    "home_inspection",
    "appraisal_ordered",
    "loan_approval",
    "title_search",
    "final_walkthrough",
    "closing_day",
)


@pytest.fixture
def shop(db: Session, brokerage: Brokerage) -> list:
    orders = random_orders(11)
    load(db, brokerage.tenant.id, orders)
    db.commit()
    return orders


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (Role.admin, True),
        (Role.broker, True),
        (Role.analyst, True),
        (Role.agent, False),
        (Role.client, False),
    ],
)
def test_who_may_see_the_dashboard(
    client: TestClient, brokerage: Brokerage, shop: list, role: Role, allowed: bool
) -> None:
    headers = bearer(client, brokerage.by_role(role))
    for path in (
        "/api/analytics/dashboard",
        "/api/analytics/export.csv",
        "/api/analytics/locations",
    ):
        response = client.get(path, params=RANGE, headers=headers)
        assert response.status_code == (200 if allowed else 403), (path, response.text)
    web_login(client, brokerage.by_role(role))
    page = client.get("/analytics", params=RANGE)
    assert page.status_code == (200 if allowed else 403)
    nav = client.get("/").text
    assert ('href="/analytics"' in nav) is allowed


def test_signed_out_is_refused(client: TestClient) -> None:
    assert client.get("/api/analytics/dashboard").status_code == 401


def test_the_dashboard_json_has_every_panel(
    client: TestClient, brokerage: Brokerage, shop: list
) -> None:
    body = client.get(
        "/api/analytics/dashboard", params=RANGE, headers=bearer(client, brokerage.analyst)
    ).json()
    for key in (
        "kpis", "insights", "revenue_trend", "cohorts", "clv_distribution", "top_products",
        "segments", "hourly", "weekly", "by_location",
    ):  # fmt: skip
        assert key in body, key
    assert body["errors"] == {}
    assert body["filters"] == {
        "start": "2026-06-01",
        "end": "2026-06-30",
        "label": "2026-06-01 to 2026-06-30",
        "location_id": None,
        "product_id": None,
    }
    assert set(body["kpis"]) == {"orders", "revenue", "aov", "customers"}
    assert len(body["hourly"]) == 24
    assert body["weekly"][0]["day"] == "Sunday"
    assert isinstance(body["kpis"]["revenue"]["value"], float)


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"start": "2026-06-31", "end": "2026-07-01"}, 422, "date"),
        ({"start": "2026-07-01", "end": "2026-06-01"}, 422, "start must be on or before end"),
        ({"start": "2026-07-01"}, 422, "give both start and end"),
        ({"period": "5y"}, 422, "period"),
        ({"location_id": "0"}, 422, "location_id"),
        ({"location_id": "999999"}, 404, "location 999999 not found"),
        ({"product_id": "abc"}, 422, "product_id"),
        ({"start": "1900-01-01", "end": "2026-01-01"}, 422, "at most"),
    ],
)
def test_bad_filters_are_refused_with_their_reason(
    client: TestClient, brokerage: Brokerage, params: dict, status: int, message: str
) -> None:
    response = client.get(
        "/api/analytics/dashboard", params=params, headers=bearer(client, brokerage.admin)
    )
    assert response.status_code == status, response.text
    assert message in response.text


def test_a_location_of_another_tenant_is_not_found(
    client: TestClient, db: Session, brokerage: Brokerage, rival: Brokerage, shop: list
) -> None:
    theirs = db.scalar(
        select(DimLocation.location_sk).where(DimLocation.tenant_id == brokerage.tenant.id)
    )
    response = client.get(
        "/api/analytics/dashboard",
        params={**RANGE, "location_id": theirs},
        headers=bearer(client, rival.admin),
    )
    assert response.status_code == 404


def test_the_export_matches_the_dashboard(
    client: TestClient, db: Session, brokerage: Brokerage, shop: list
) -> None:
    headers = bearer(client, brokerage.admin)
    north = db.scalar(select(DimLocation.location_sk).where(DimLocation.location_key == "north"))
    params = {"start": "2026-04-01", "end": "2026-06-30", "location_id": north}
    response = client.get("/api/analytics/export.csv", params=params, headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="sales_2026-04-01_2026-06-30.csv"' in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert list(rows[0]) == ["date", "location", "product", "quantity", "revenue", "order_count"]
    assert {row["location"] for row in rows} == {"North"}
    board = client.get("/api/analytics/dashboard", params=params, headers=headers).json()
    total = sum(Decimal(row["revenue"]) for row in rows)
    assert float(total) == pytest.approx(board["kpis"]["revenue"]["value"])
    days = {row["date"] for row in rows}
    assert days == {point["date"] for point in board["revenue_trend"]}


def test_the_export_streams_a_long_range(
    client: TestClient, brokerage: Brokerage, shop: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api, "EXPORT_BATCH", 100)
    with client.stream(
        "GET",
        "/api/analytics/export.csv",
        params={"start": "2025-01-01", "end": "2026-12-31"},
        headers=bearer(client, brokerage.admin),
    ) as response:
        chunks = list(response.iter_text())
    assert len(chunks) > 5  # written in batches of 100 rows, not one buffer
    lines = "".join(chunks).strip().splitlines()
    assert len(lines) > 500


HEADER = "order_id,ordered_at,location,product,quantity,revenue,category,customer_id,customer_name"
ORDERS_CSV = f"""{HEADER}
A1,2026-05-02T08:15:00,Downtown,Latte,2,9.00,Coffee,c-1,Dana Diaz
A1,2026-05-02T08:15:00,Downtown,Croissant,1,3.75,Bakery,c-1,Dana Diaz
A2,2026-05-02T12:30:00-07:00,Harbor,Mocha,1,5.25,Coffee,,
A3,2026-05-03T09:00:00,Downtown,Latte,one,4.50,Coffee,c-2,
A3,2026-05-03T09:00:00,Downtown,Scone,1,3.00,Bakery,c-2,
A4,not-a-date,Downtown,Latte,1,-2,Coffee,,
"""


def test_an_orders_csv_is_checked_then_loaded_once(
    client: TestClient, db: Session, brokerage: Brokerage
) -> None:
    headers = bearer(client, brokerage.admin)
    files = {"file": ("orders.csv", ORDERS_CSV, "text/csv")}
    checked = client.post("/api/analytics/imports", files=files, headers=headers)
    assert checked.status_code == 200, checked.text
    report = checked.json()
    assert report["dry_run"] is True
    assert report["rows"] == 6
    assert report["orders"] == 2  # A1 and A2; A3 has a bad line, A4 is bad
    problems = {p["line"]: p["errors"] for p in report["problems"]}
    assert "quantity must be a number, got 'one'" in problems[5]
    assert "order A3 is skipped: line 5 has errors" in problems[6]
    assert any("ordered_at" in e for e in problems[7])
    assert any("revenue must be 0 or more" in e for e in problems[7])
    assert db.scalar(select(func.count()).select_from(FactSales)) == 0  # a dry run loads nothing

    for _ in range(2):
        loaded = client.post(
            "/api/analytics/imports", files=files, data={"dry_run": "false"}, headers=headers
        )
        assert loaded.status_code == 200, loaded.text
        assert loaded.json()["loaded_orders"] == 2
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(FactSales)) == 3  # not doubled
    board = client.get(
        "/api/analytics/dashboard",
        params={"start": "2026-05-01", "end": "2026-05-31"},
        headers=headers,
    ).json()
    assert board["kpis"]["orders"]["value"] == 2
    assert board["kpis"]["revenue"]["value"] == pytest.approx(18.00)  # 9.00 + 3.75 + 5.25
    assert board["kpis"]["customers"]["value"] == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "The file is empty"),
        (
            "order_id,product\nA,Latte\n",
            "Missing column(s): ordered_at, location, quantity, revenue",
        ),
        (b"\xff\xfe\x00bad", "UTF-8"),
    ],
)
def test_a_broken_csv_is_refused_whole(
    client: TestClient, db: Session, brokerage: Brokerage, content: str | bytes, message: str
) -> None:
    response = client.post(
        "/api/analytics/imports",
        files={"file": ("orders.csv", content, "text/csv")},
        data={"dry_run": "false"},
        headers=bearer(client, brokerage.admin),
    )
    assert response.status_code == 422
    assert message in response.text
    assert db.scalar(select(func.count()).select_from(FactSales)) == 0


@pytest.mark.parametrize("role", [Role.broker, Role.analyst, Role.agent, Role.client])
def test_only_an_admin_loads_orders(client: TestClient, brokerage: Brokerage, role: Role) -> None:
    response = client.post(
        "/api/analytics/imports",
        files={"file": ("orders.csv", ORDERS_CSV, "text/csv")},
        data={"dry_run": "false"},
        headers=bearer(client, brokerage.by_role(role)),
    )
    assert response.status_code == 403


def _escrow(db: Session, brokerage: Brokerage, n: int, **fields) -> Transaction:
    tx = Transaction(
        tenant_id=brokerage.tenant.id,
        transaction_id=f"T-AN-{n}",
        agent_id=brokerage.agent.id,
        property_address=f"{n} Elm St",
        buyer_name=f"Buyer {n}",
        purchase_price=Decimal("400000"),
        my_commission=Decimal("12000"),
        loan_type="conventional",
        contract_date=date(2026, 3, 1),
        target_closing_date=date(2026, 4, 15),
        **fields,
    )
    db.add(tx)
    db.flush()
    return tx


def test_the_brokerage_closings_feed_the_warehouse(db: Session, brokerage: Brokerage) -> None:
    closed = _escrow(
        db, brokerage, 1, escrow_status="Closed", actual_closing_date=date(2026, 4, 10)
    )
    _escrow(db, brokerage, 2)  # still open: not a sale
    result = feeds.sync_brokerage(db, brokerage.tenant.id)
    assert result.orders == 1
    again = feeds.sync_brokerage(db, brokerage.tenant.id)
    assert (again.orders, again.removed) == (1, 0)
    row = db.execute(select(FactSales.sale_date, FactSales.revenue)).one()
    assert row == (date(2026, 4, 10), Decimal("12000.00"))
    location = db.scalar(select(DimLocation.name))
    assert location == brokerage.agent.full_name
    closed.escrow_status = "Cancelled"
    db.flush()
    gone = feeds.sync_brokerage(db, brokerage.tenant.id)
    assert gone.removed == 1
    assert db.scalar(select(func.count()).select_from(FactSales)) == 0


def test_an_escrow_appears_in_analytics_when_it_closes(
    client: TestClient, db: Session, brokerage: Brokerage
) -> None:
    deal = open_escrow(client, brokerage)
    agent = bearer(client, brokerage.agent)
    for step in CLOSING_STEPS:
        assert db.scalar(select(func.count()).select_from(FactSales)) == 0  # not a sale yet
        moved = client.put(
            f"/api/v1/transactions/{deal['id']}/milestones",
            json={"milestone_type": step, "status": "completed"},
            headers=agent,
        )
        assert moved.status_code == 200, (step, moved.text)
    db.expire_all()
    commission = Decimal(str(deal["my_commission"])).quantize(Decimal("0.01"))
    assert db.scalar(select(func.sum(FactSales.revenue))) == commission
    # The closing day is the transactions module's (UTC) date; the range spans both calendars.
    closed_on = db.scalar(select(FactSales.sale_date))
    window = {"start": closed_on - timedelta(days=1), "end": closed_on + timedelta(days=1)}
    headers = bearer(client, brokerage.broker)
    board = client.get("/api/analytics/dashboard", params=window, headers=headers).json()
    assert board["kpis"]["orders"]["value"] == 1
    assert board["by_location"][0]["location"] == brokerage.agent.full_name


def test_the_page_shows_every_panel(client: TestClient, brokerage: Brokerage, shop: list) -> None:
    web_login(client, brokerage.admin)
    html = client.get("/analytics", params={"start": "2026-03-01", "end": "2026-06-30"}).text
    for name in (
        "revenue_trend", "cohorts", "clv_distribution", "top_products", "segments", "hourly",
        "weekly", "by_location",
    ):  # fmt: skip
        assert f'data-testid="chart-{name}"' in html, name
    for key in ("orders", "revenue", "aov", "customers"):
        assert f'data-testid="kpi-{key}"' in html
    assert "ML Predictions Not Available Yet" in html
    assert 'data-testid="export-csv"' in html
    assert "/api/analytics/export.csv?start=2026-03-01&amp;end=2026-06-30" in html


def test_the_page_explains_what_is_missing(client: TestClient, brokerage: Brokerage) -> None:
    web_login(client, brokerage.admin)
    html = client.get("/analytics").text
    assert "No Data Available" in html
    assert "Need multiple months of data" in html
    bad = client.get("/analytics", params={"start": "2026-02-30", "end": "2026-03-01"})
    assert bad.status_code == 422
    assert "Start date must be a date (YYYY-MM-DD)" in bad.text
    assert "The page shows the last 30 days meanwhile" in bad.text


def test_the_page_drills_into_a_product(
    client: TestClient, db: Session, brokerage: Brokerage, shop: list
) -> None:
    web_login(client, brokerage.admin)
    board = client.get(
        "/api/analytics/dashboard", params=RANGE, headers=bearer(client, brokerage.admin)
    ).json()
    top = board["top_products"][0]
    html = client.get("/analytics", params={**RANGE, "product_id": top["product_id"]}).text
    assert 'data-testid="product-detail"' in html
    assert f"{top['product']} · drill-down" in html
    for place in ZONES:  # the shop's locations are listed in the drill-down table
        assert f"<td>{place.title()}</td>" in html
