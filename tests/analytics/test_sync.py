"""The Square ingest (`analytics/sync.py`) end to end: the official SDK against the local Square
fake, into the warehouse, checked against plain computations over the fake's own orders, in both
database modes."""

from __future__ import annotations

import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased, sessionmaker
from typer.testing import CliRunner

from doorstep.analytics import tasks
from doorstep.analytics.models import (
    AnalyticsSource,
    CustomerDaily,
    CustomerMonthly,
    DailySalesSummary,
    DimCustomer,
    DimLocation,
    DimProduct,
    FactSales,
    HourlySales,
    ProductPerformance,
    SilverCustomer,
    SilverLocation,
    SilverProduct,
    SquareLineItem,
    SquareOrder,
)
from doorstep.analytics.square import SquareAuthError
from doorstep.analytics.sync import (
    SquareNotConfigured,
    SyncReport,
    UnknownTenant,
    order_from_square,
    sync_square,
)
from doorstep.analytics.warehouse import Loader
from doorstep.cli import app, run_migrations
from doorstep.config import get_settings
from doorstep.platform import jobs
from doorstep.platform.auth import Tenant
from doorstep.platform.db import make_engine, make_sessionmaker
from doorstep.platform.jobs import Job
from tests.conftest import Factory
from tests.databases import fresh_database
from tests.fakes.square import CUSTOMERS, LOCATIONS, FakeSquare, parse_time, timestamp

TOKEN = "EAAAl-sync-test-0123456789-square-secret"
WRONG_TOKEN = "EAAAl-sync-wrong-9876543210-revoked-secret"
PAGE = 40  # SearchOrders page of these tests: several pages, several transactions
CENT = Decimal("0.01")


# Backoff waits are recorded instead of slept (`sleeps` in tests/analytics/conftest.py).
pytestmark = pytest.mark.usefixtures("sleeps")


@pytest.fixture
def square() -> Iterator[FakeSquare]:
    fake = FakeSquare.generate(locations=2, customers=40, orders=220, seed=11, token=TOKEN)
    with fake.running():
        yield fake


def connect(db: Session, tenant_id: int, square: FakeSquare, token: str = TOKEN) -> None:
    db.add(AnalyticsSource(tenant_id=tenant_id, square_token=token, square_base_url=square.url))
    db.commit()


@pytest.fixture
def shop(db: Session, factory: Factory, square: FakeSquare) -> int:
    tenant = factory.tenant("Doorstep Coffee")
    connect(db, tenant.id, square)
    return tenant.id


def run(factory: sessionmaker[Session], tenant_id: int, **kwargs: Any) -> SyncReport:
    return sync_square(factory, tenant_id, page_size=PAGE, **kwargs)


def source_of(db: Session, tenant_id: int) -> AnalyticsSource:
    db.expire_all()
    found = db.scalar(select(AnalyticsSource).where(AnalyticsSource.tenant_id == tenant_id))
    assert found is not None
    return found


# --- plain computations over the fake's orders ----------------------------------------------


def cents(item: dict[str, Any], gross: str) -> int:
    return int(item[gross]["amount"]) - int(item.get("total_discount_money", {}).get("amount", 0))


def plain_days(square: FakeSquare) -> tuple[dict[date, Decimal], dict[date, int]]:
    """Revenue (net sales: gross minus discounts, no tax) and order count per local day of every
    COMPLETED order, returns negative, computed straight from the fake's JSON."""
    zones = {loc["id"]: ZoneInfo(loc["timezone"]) for loc in square.locations}
    revenue: dict[date, Decimal] = defaultdict(Decimal)
    orders: dict[date, int] = defaultdict(int)
    for order in square.order_list():
        if order["state"] != "COMPLETED":
            continue
        moment = parse_time(order.get("closed_at") or order["created_at"])
        day = moment.astimezone(zones[order["location_id"]]).date()
        total = sum(cents(item, "gross_sales_money") for item in order.get("line_items", []))
        for ret in order.get("returns", []):
            total -= sum(cents(i, "gross_return_money") for i in ret["return_line_items"])
        revenue[day] += Decimal(total) / 100
        orders[day] += 1
    return dict(revenue), dict(orders)


def loaded_days(db: Session, tenant_id: int) -> tuple[dict[date, Decimal], dict[date, int]]:
    d = DailySalesSummary
    rows = db.execute(
        select(d.sale_date, func.sum(d.revenue), func.sum(d.orders))
        .where(d.tenant_id == tenant_id)
        .group_by(d.sale_date)
    ).all()
    return {day: Decimal(r) for day, r, _ in rows}, {day: int(n) for day, _, n in rows}


def fact_keys(db: Session, tenant_id: int) -> set[str]:
    return set(
        db.scalars(select(FactSales.order_key).where(FactSales.tenant_id == tenant_id).distinct())
    )


def order_revenue(db: Session, tenant_id: int, *keys: str) -> Decimal:
    total = db.scalar(
        select(func.sum(FactSales.revenue)).where(
            FactSales.tenant_id == tenant_id, FactSales.order_key.in_(keys)
        )
    )
    return Decimal(total or 0)


def snapshot(db: Session, tenant_id: int) -> dict[str, list[tuple[Any, ...]]]:
    """Every warehouse row of the tenant by natural keys (surrogate keys differ between runs
    that rolled back on PostgreSQL, whose sequences do not roll back; load times differ)."""
    db.expire_all()
    loc, prod, cust = DimLocation, DimProduct, DimCustomer

    def rows(stmt: Any) -> list[tuple[Any, ...]]:
        found = [
            tuple(json.dumps(v, sort_keys=True) if isinstance(v, dict) else v for v in row)
            for row in db.execute(stmt).all()
        ]
        return sorted(found, key=repr)

    def located(model: Any, *columns: Any) -> Any:
        return (
            select(*columns, loc.location_key)
            .join(loc, loc.location_sk == model.location_sk)
            .where(model.tenant_id == tenant_id)
        )

    f = FactSales
    facts = (
        select(
            f.order_key, f.line_no, f.sale_date, f.hour, f.order_ts, f.quantity, f.revenue,
            loc.location_key, prod.product_key, cust.customer_key,
        )
        .join(loc, loc.location_sk == f.location_sk)
        .join(prod, prod.product_sk == f.product_sk)
        .outerjoin(cust, cust.customer_sk == f.customer_sk)
        .where(f.tenant_id == tenant_id)
    )  # fmt: skip
    d, p, h, cd, cm = (
        DailySalesSummary, ProductPerformance, HourlySales, CustomerDaily, CustomerMonthly
    )  # fmt: skip
    cd_cust, cm_cust = aliased(DimCustomer), aliased(DimCustomer)
    return {
        "facts": rows(facts),
        "daily": rows(located(d, d.sale_date, d.orders, d.revenue, d.items)),
        "products": rows(
            located(p, p.sale_date, p.quantity, p.revenue, p.orders, prod.product_key).join(
                prod, prod.product_sk == p.product_sk
            )
        ),
        "hourly": rows(located(h, h.sale_date, h.hour, h.orders, h.revenue)),
        "customer_daily": rows(
            located(cd, cd.sale_date, cd.orders, cd.revenue, cd_cust.customer_key).join(
                cd_cust, cd_cust.customer_sk == cd.customer_sk
            )
        ),
        "customer_monthly": rows(
            located(cm, cm.month, cm.orders, cm.revenue, cm_cust.customer_key).join(
                cm_cust, cm_cust.customer_sk == cm.customer_sk
            )
        ),
        "dim_customer": rows(
            select(cust.customer_key, cust.name, cust.first_order_date, cust.cohort_month).where(
                cust.tenant_id == tenant_id
            )
        ),
        "dim_product": rows(select(prod.product_key, prod.name).where(prod.tenant_id == tenant_id)),
        "dim_location": rows(
            select(loc.location_key, loc.name, loc.timezone).where(loc.tenant_id == tenant_id)
        ),
        "silver_customers": rows(
            select(
                SilverCustomer.customer_key,
                SilverCustomer.name,
                SilverCustomer.email,
                SilverCustomer.phone,
                SilverCustomer.valid_from,
                SilverCustomer.valid_to,
                SilverCustomer.is_current,
            ).where(SilverCustomer.tenant_id == tenant_id)
        ),
        "silver_products": rows(
            select(SilverProduct.product_key, SilverProduct.name).where(
                SilverProduct.tenant_id == tenant_id
            )
        ),
        "silver_locations": rows(
            select(SilverLocation.location_key, SilverLocation.name, SilverLocation.timezone).where(
                SilverLocation.tenant_id == tenant_id
            )
        ),
        "bronze_orders": rows(
            select(
                SquareOrder.order_id,
                SquareOrder.location_id,
                SquareOrder.version,
                SquareOrder.state,
                SquareOrder.updated_at,
                SquareOrder.payload,
            ).where(SquareOrder.tenant_id == tenant_id)
        ),
        "bronze_lines": rows(
            select(SquareLineItem.order_id, SquareLineItem.uid, SquareLineItem.payload).where(
                SquareLineItem.tenant_id == tenant_id
            )
        ),
    }


def sums(db: Session, tenant_id: int) -> tuple[Any, ...]:
    """Table counts and money sums, the coarse check."""
    db.expire_all()
    out: list[Any] = []
    for model in (FactSales, DailySalesSummary, SquareOrder, SquareLineItem, SilverCustomer):
        out.append(
            db.scalar(select(func.count()).select_from(model).where(model.tenant_id == tenant_id))
        )
    for column in (FactSales.revenue, DailySalesSummary.revenue, FactSales.quantity):
        out.append(db.scalar(select(func.sum(column)).where(column.table.c.tenant_id == tenant_id)))
    return tuple(out)


# --- turning Square's JSON into orders ------------------------------------------------------


def test_an_order_becomes_net_sales_lines_in_dollars() -> None:
    payload = {
        "id": "ORDER1",
        "location_id": "L1",
        "state": "COMPLETED",
        "created_at": "2025-03-02T17:00:00.000Z",
        "closed_at": "2025-03-02T17:04:30.000Z",
        "customer_id": "C1",
        "line_items": [
            {
                "name": "Latte",
                "variation_name": "Large",
                "quantity": "2",
                "catalog_object_id": "VAR-LATTE-L",
                "gross_sales_money": {"amount": 1050, "currency": "USD"},
                "total_discount_money": {"amount": 100, "currency": "USD"},
                "total_tax_money": {"amount": 81, "currency": "USD"},
                "total_money": {"amount": 1031, "currency": "USD"},
            },
            {
                "name": "Croissant",
                "variation_name": "Regular",
                "quantity": "1.5",
                "total_money": {"amount": 407, "currency": "USD"},
            },
        ],
    }
    order = order_from_square(payload)

    assert (order.source, order.order_key, order.location_key) == ("square", "ORDER1", "L1")
    assert order.ts == datetime.fromisoformat("2025-03-02T17:04:30+00:00")  # closed_at
    assert order.customer_key == "C1"
    latte, croissant = order.lines
    assert (latte.product_key, latte.product_name) == ("VAR-LATTE-L", "Latte (Large)")
    assert latte.quantity == Decimal("2")
    assert latte.revenue == Decimal("9.50")  # 10.50 gross - 1.00 discount; no tax
    assert (croissant.product_key, croissant.product_name) == ("croissant regular", "Croissant")
    assert croissant.quantity == Decimal("1.5")
    assert croissant.revenue == Decimal("4.07")  # no gross: total_money

    del payload["closed_at"]
    assert order_from_square(payload).ts == datetime.fromisoformat("2025-03-02T17:00:00+00:00")
    payload["line_items"][0]["gross_sales_money"] = {"amount": 1050, "currency": "JPY"}
    assert order_from_square(payload).lines[0].revenue == Decimal("1049")  # yen have no cents


def test_a_return_order_becomes_negative_lines(square: FakeSquare) -> None:
    sale = next(o for o in square.order_list() if o["state"] == "COMPLETED")
    refund = square.refund_order(sale["id"])

    sold, returned = order_from_square(sale), order_from_square(refund)

    assert returned.ts == parse_time(refund["closed_at"])
    assert [line.product_key for line in returned.lines] == [
        line.product_key for line in sold.lines
    ]
    assert [-line.quantity for line in returned.lines] == [line.quantity for line in sold.lines]
    assert sum(line.revenue for line in sold.lines + returned.lines) == 0
    assert all(line.revenue < 0 for line in returned.lines)


# --- the sync -------------------------------------------------------------------------------


def test_a_full_sync_loads_exactly_the_completed_orders(
    db: Session, session_factory: sessionmaker[Session], shop: int, square: FakeSquare
) -> None:
    counted: list[int] = []
    report = run(session_factory, shop, full=True, progress=counted.append)

    fake = square.order_list()
    completed = {o["id"] for o in fake if o["state"] == "COMPLETED"}
    canceled = {o["id"] for o in fake if o["state"] == "CANCELED"}
    assert canceled
    assert len(completed) + len(canceled) < len(fake)  # some are OPEN
    assert fact_keys(db, shop) == completed
    assert report.orders == len(completed)
    assert report.lines == db.scalar(
        select(func.count()).select_from(FactSales).where(FactSales.tenant_id == shop)
    )
    revenue, orders = plain_days(square)
    assert loaded_days(db, shop) == (revenue, orders)
    # bronze holds what Square sent: completed and canceled orders, not the open ones
    bronze = set(db.scalars(select(SquareOrder.order_id).where(SquareOrder.tenant_id == shop)))
    assert bronze == completed | canceled
    lines = db.scalar(
        select(func.count()).select_from(SquareLineItem).where(SquareLineItem.tenant_id == shop)
    )
    assert lines == sum(len(o["line_items"]) for o in fake if o["id"] in bronze)
    # locations with their time zones, customers with their names
    zones = dict(
        db.execute(
            select(DimLocation.location_key, DimLocation.timezone).where(
                DimLocation.tenant_id == shop
            )
        ).all()
    )
    assert zones == {loc["id"]: loc["timezone"] for loc in square.locations}
    names = dict(
        db.execute(
            select(DimCustomer.customer_key, DimCustomer.name).where(DimCustomer.tenant_id == shop)
        ).all()
    )
    assert names == {c["id"]: f"{c['given_name']} {c['family_name']}" for c in square.customers}
    assert (report.locations, report.customers) == (2, 40)
    assert report.pages == len(square.searches) == -(-len(bronze) // PAGE)
    assert sum(counted) == len(bronze)
    last = max(parse_time(o["updated_at"]) for o in fake if o["id"] in bronze)
    source = source_of(db, shop)
    assert report.cursor == source.orders_cursor == last
    assert source.last_sync_status == f"ok: {len(completed)} orders"
    assert source.last_sync_at is not None


def test_a_second_sync_changes_nothing(
    db: Session, session_factory: sessionmaker[Session], shop: int, square: FakeSquare
) -> None:
    run(session_factory, shop)  # the first run is a full one: no cursor yet
    first = snapshot(db, shop)
    first_sums = sums(db, shop)
    cursor = source_of(db, shop).orders_cursor

    again = run(session_factory, shop)
    assert again.orders > 0  # the last 72 hours were read and loaded again...
    assert sums(db, shop) == first_sums  # ...and nothing changed
    assert snapshot(db, shop) == first
    assert source_of(db, shop).orders_cursor == cursor

    run(session_factory, shop, full=True)
    assert snapshot(db, shop) == first


def test_an_updated_order_replaces_the_old_one(
    db: Session, session_factory: sessionmaker[Session], shop: int, square: FakeSquare
) -> None:
    run(session_factory, shop)
    target = next(
        o for o in square.order_list() if o["state"] == "COMPLETED" and len(o["line_items"]) > 1
    )
    assert order_revenue(db, shop, target["id"]) > 0
    new_items = [square.line_item("Mocha", 3, variation="Large")]
    square.update_order(target["id"], line_items=new_items)

    report = run(session_factory, shop)

    assert len(square.searches[-1]["query"]["filter"]["date_time_filter"]) == 1  # incremental
    facts = db.execute(
        select(FactSales.line_no, FactSales.quantity, FactSales.revenue, DimProduct.name)
        .join(DimProduct, DimProduct.product_sk == FactSales.product_sk)
        .where(FactSales.tenant_id == shop, FactSales.order_key == target["id"])
    ).all()
    assert [tuple(row) for row in facts] == [(1, Decimal(3), Decimal("17.25"), "Mocha (Large)")]
    assert report.orders >= 1
    assert loaded_days(db, shop) == plain_days(square)
    bronze = db.scalar(
        select(SquareOrder).where(
            SquareOrder.tenant_id == shop, SquareOrder.order_id == target["id"]
        )
    )
    assert bronze is not None
    assert bronze.version == target["version"] + 1
    assert bronze.payload["line_items"][0]["uid"] == new_items[0]["uid"]
    uids = db.scalars(
        select(SquareLineItem.uid).where(
            SquareLineItem.tenant_id == shop, SquareLineItem.order_id == target["id"]
        )
    ).all()
    assert uids == [new_items[0]["uid"]]


def test_a_refund_nets_out(
    db: Session, session_factory: sessionmaker[Session], shop: int, square: FakeSquare
) -> None:
    run(session_factory, shop)
    before = db.scalar(select(func.sum(FactSales.revenue)).where(FactSales.tenant_id == shop))
    sale = next(o for o in square.order_list() if o["state"] == "COMPLETED")
    paid = order_revenue(db, shop, sale["id"])
    assert paid > 0

    refund = square.refund_order(sale["id"])
    run(session_factory, shop)

    assert order_revenue(db, shop, refund["id"]) == -paid
    assert order_revenue(db, shop, sale["id"], refund["id"]) == 0
    quantity = db.scalar(
        select(func.sum(FactSales.quantity)).where(
            FactSales.tenant_id == shop, FactSales.order_key.in_([sale["id"], refund["id"]])
        )
    )
    assert quantity == 0
    after = db.scalar(select(func.sum(FactSales.revenue)).where(FactSales.tenant_id == shop))
    assert after == before - paid
    assert loaded_days(db, shop)[0] == plain_days(square)[0]


def test_a_cancelled_order_is_removed(
    db: Session, session_factory: sessionmaker[Session], shop: int, square: FakeSquare
) -> None:
    run(session_factory, shop)
    sale = next(o for o in square.order_list() if o["state"] == "COMPLETED")
    assert sale["id"] in fact_keys(db, shop)
    # Real Square never cancels a completed order; the fake allows it, to exercise removal.
    square.update_order(sale["id"], state="CANCELED")

    report = run(session_factory, shop)

    assert sale["id"] not in fact_keys(db, shop)
    assert report.removed == 1
    assert loaded_days(db, shop) == plain_days(square)


def test_a_late_offline_order_is_picked_up_by_the_incremental_sync(
    db: Session, session_factory: sessionmaker[Session], shop: int, square: FakeSquare
) -> None:
    run(session_factory, shop)
    cursor = source_of(db, shop).orders_cursor
    assert cursor is not None
    # Taken offline two days before the last sync; it reaches the API only now, with the
    # updated_at of the moment it was taken, older than the cursor.
    location = square.locations[0]["id"]
    late = square.add_order(
        location, [square.line_item("Latte", 2)], created_at=cursor - timedelta(days=2)
    )
    assert parse_time(late["updated_at"]) < cursor

    run(session_factory, shop, lookback=timedelta(0))
    assert late["id"] not in fact_keys(db, shop)  # without the lookback it is missed

    run(session_factory, shop)
    assert late["id"] in fact_keys(db, shop)
    start = square.searches[-1]["query"]["filter"]["date_time_filter"]["updated_at"]["start_at"]
    assert parse_time(start) == cursor - timedelta(hours=72)
    assert loaded_days(db, shop) == plain_days(square)


def test_a_crash_half_way_then_a_rerun_leaves_the_same_warehouse_as_a_clean_run(
    db: Session,
    session_factory: sessionmaker[Session],
    factory: Factory,
    square: FakeSquare,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clean, crashed = factory.tenant("Clean"), factory.tenant("Crashed")
    for tenant in (clean, crashed):
        connect(db, tenant.id, square)
    run(session_factory, clean.id)

    def crash_after(pages: int) -> None:
        original = Loader.load_orders
        calls = {"n": 0}

        def load_orders(self: Loader, *args: Any, **kwargs: Any) -> Any:
            calls["n"] += 1
            if calls["n"] > pages:
                raise RuntimeError("the machine lost power")
            return original(self, *args, **kwargs)

        monkeypatch.setattr(Loader, "load_orders", load_orders)

    crash_after(2)
    with pytest.raises(RuntimeError, match="lost power"):
        run(session_factory, crashed.id)
    monkeypatch.undo()
    # Two whole pages are in (bronze, facts and their rollups), not a line of the third.
    read = sorted(
        (o for o in square.order_list() if o["state"] in ("COMPLETED", "CANCELED")),
        key=lambda o: (o["updated_at"], o["id"]),
    )
    first_pages = read[: 2 * PAGE]
    assert fact_keys(db, crashed.id) == {o["id"] for o in first_pages if o["state"] == "COMPLETED"}
    assert len(snapshot(db, crashed.id)["bronze_orders"]) == 2 * PAGE
    assert db.scalar(
        select(func.sum(DailySalesSummary.revenue)).where(DailySalesSummary.tenant_id == crashed.id)
    ) == order_revenue(db, crashed.id, *fact_keys(db, crashed.id))
    source = source_of(db, crashed.id)
    assert source.orders_cursor is None  # unchanged: the run did not finish
    assert source.last_sync_status == "error: the machine lost power"

    run(session_factory, crashed.id)
    assert snapshot(db, crashed.id) == snapshot(db, clean.id)
    cursor = source_of(db, clean.id).orders_cursor
    assert source_of(db, crashed.id).orders_cursor == cursor

    # The same in an incremental run over changes: the crash keeps the old cursor.
    completed = [o for o in square.order_list() if o["state"] == "COMPLETED"]
    square.refund_order(completed[-1]["id"])
    square.update_order(completed[-2]["id"], line_items=[square.line_item("Espresso", 2)])
    for offset in range(40):  # enough for two pages
        square.add_order(square.locations[offset % 2]["id"], [square.line_item("Croissant")])
    crash_after(1)
    with pytest.raises(RuntimeError):
        run(session_factory, crashed.id)
    monkeypatch.undo()
    assert source_of(db, crashed.id).orders_cursor == cursor
    run(session_factory, crashed.id)
    run(session_factory, clean.id)
    assert snapshot(db, crashed.id) == snapshot(db, clean.id)
    assert source_of(db, crashed.id).orders_cursor == source_of(db, clean.id).orders_cursor
    assert source_of(db, clean.id).orders_cursor > cursor  # type: ignore[operator]


def test_rate_limiting_is_retried_and_the_sync_completes(
    db: Session,
    session_factory: sessionmaker[Session],
    shop: int,
    square: FakeSquare,
    sleeps: list[float],
) -> None:
    square.rate_limit_next(2, retry_after=3)  # the first request: ListLocations

    def limit_after_first_page(n: int, done: list[int] = []) -> None:  # noqa: B006
        done.append(n)
        if len(done) == 1:
            square.rate_limit_next(2)  # the second page of SearchOrders

    report = run(session_factory, shop, progress=limit_after_first_page)

    assert len(square.requests_to(LOCATIONS)) == 3
    assert len(square.searches) == report.pages + 2
    assert sleeps[:2] == [3.0, 3.0]
    assert len(sleeps) == 4
    assert fact_keys(db, shop) == {
        o["id"] for o in square.order_list() if o["state"] == "COMPLETED"
    }
    assert loaded_days(db, shop) == plain_days(square)
    assert source_of(db, shop).last_sync_status.startswith("ok: ")


def test_a_missing_token_is_refused_clearly(
    db: Session, session_factory: sessionmaker[Session], factory: Factory, square: FakeSquare
) -> None:
    unset = factory.tenant("No token yet")
    blank = factory.tenant("Blank token")
    db.add(AnalyticsSource(tenant_id=blank.id, square_token="", square_base_url=square.url))
    db.commit()

    for tenant in (unset, blank):
        with pytest.raises(SquareNotConfigured, match="no Square access token"):
            run(session_factory, tenant.id)
        status = source_of(db, tenant.id).last_sync_status
        assert status.startswith("error: no Square access token")
    assert square.requests == []
    with pytest.raises(UnknownTenant):
        run(session_factory, 10**9)


def test_a_refused_token_is_a_clear_error_without_the_token(
    db: Session,
    session_factory: sessionmaker[Session],
    factory: Factory,
    square: FakeSquare,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    tenant = factory.tenant("Revoked")
    connect(db, tenant.id, square, token=WRONG_TOKEN)

    with pytest.raises(SquareAuthError) as caught:
        run(session_factory, tenant.id)

    source = source_of(db, tenant.id)
    assert caught.value.status == 401
    assert source.last_sync_status.startswith("error: Square ListLocations answered 401")
    assert "UNAUTHORIZED" in source.last_sync_status
    assert source.orders_cursor is None
    assert fact_keys(db, tenant.id) == set()
    # Even when Square echoes the token back, neither the status nor the logs repeat it.
    echo = {"category": "AUTHENTICATION_ERROR", "code": "ACCESS_TOKEN_REVOKED"}
    square.fail_next(401, {"errors": [{**echo, "detail": f"Token {WRONG_TOKEN} was revoked."}]})
    with pytest.raises(SquareAuthError):
        run(session_factory, tenant.id)
    status = source_of(db, tenant.id).last_sync_status
    assert "ACCESS_TOKEN_REVOKED" in status
    assert "[token]" in status
    for secret in (WRONG_TOKEN, "revoked-secret"):
        assert secret not in status
        assert secret not in caplog.text
    assert square.requests[0].headers["authorization"] == f"Bearer {WRONG_TOKEN}"


def test_a_renamed_customer_gets_a_new_silver_row(
    db: Session, session_factory: sessionmaker[Session], shop: int, square: FakeSquare
) -> None:
    run(session_factory, shop)
    customer = square.customers[3]
    old_name = f"{customer['given_name']} {customer['family_name']}"
    renamed_at = square.tick()
    customer.update(given_name="Zora", updated_at=timestamp(renamed_at), version=1)

    run(session_factory, shop)
    run(session_factory, shop)  # once only

    history = db.execute(
        select(
            SilverCustomer.name,
            SilverCustomer.valid_from,
            SilverCustomer.valid_to,
            SilverCustomer.is_current,
        )
        .where(SilverCustomer.tenant_id == shop, SilverCustomer.customer_key == customer["id"])
        .order_by(SilverCustomer.valid_from)
    ).all()
    created = parse_time(customer["created_at"])
    new_name = f"Zora {customer['family_name']}"
    assert [tuple(row) for row in history] == [
        (old_name, created, renamed_at, False),
        (new_name, renamed_at, None, True),
    ]
    dim = db.scalar(
        select(DimCustomer.name).where(
            DimCustomer.tenant_id == shop, DimCustomer.customer_key == customer["id"]
        )
    )
    assert dim == new_name
    rows = db.scalar(
        select(func.count()).select_from(SilverCustomer).where(SilverCustomer.tenant_id == shop)
    )
    assert rows == len(square.customers) + 1
    assert len(square.requests_to(CUSTOMERS)) == 3  # each run reads every customer


# --- the hourly job -------------------------------------------------------------------------


def test_the_hourly_job_syncs_every_tenant_with_a_token(
    db: Session,
    session_factory: sessionmaker[Session],
    factory: Factory,
    shop: int,
    square: FakeSquare,
) -> None:
    without = factory.tenant("Not connected")
    db.add(AnalyticsSource(tenant_id=without.id, square_token=""))
    db.commit()
    hourly = [schedule for name, schedule, _ in jobs._schedules if name == tasks.SYNC_ALL]
    assert len(hourly) == 1
    fires = [hourly[0](datetime(2026, 1, 1, 0, 0) + timedelta(minutes=m)) for m in range(180)]
    assert sum(fires) == 3  # once an hour

    tasks.sync_square_all(db)
    tasks.sync_square_all(db)  # the same hour: no second job
    queued = db.scalars(select(Job).where(Job.name == tasks.SYNC)).all()
    assert [(job.tenant_id, job.args) for job in queued] == [(shop, {"tenant_id": shop})]

    db.info[jobs.RUNNER_KEY] = SimpleNamespace(factory=session_factory, send=lambda *a: None)
    tasks.sync_square_job(db, tenant_id=shop)
    tasks.sync_square_job(db, tenant_id=without.id)  # recorded, not raised (no retry helps)
    del db.info[jobs.RUNNER_KEY]

    assert fact_keys(db, shop) == {
        o["id"] for o in square.order_list() if o["state"] == "COMPLETED"
    }
    assert source_of(db, shop).last_sync_status.startswith("ok: ")
    assert source_of(db, without.id).last_sync_status.startswith("error: no Square access token")


# --- the command line -----------------------------------------------------------------------


@pytest.fixture
def cli_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with fresh_database(tmp_path, "cli") as url:
        run_migrations(url)
        monkeypatch.setenv("DOORSTEP_DATABASE_URL", url)
        get_settings.cache_clear()
        yield url
        get_settings.cache_clear()


def test_the_cli_stores_a_token_and_syncs(cli_database: str, square: FakeSquare) -> None:
    engine = make_engine(cli_database)
    factory = make_sessionmaker(engine)
    slugs = [f"cafe-{uuid.uuid4().hex[:6]}", f"bar-{uuid.uuid4().hex[:6]}"]
    with factory() as session:
        session.add_all(Tenant(slug=slug, name=slug.title(), timezone="UTC") for slug in slugs)
        session.commit()
    runner = CliRunner()

    nobody = runner.invoke(app, ["sync-square"])
    assert nobody.exit_code == 2
    assert "No tenant has a Square access token" in nobody.output

    stored = runner.invoke(
        app, ["square-token", "--tenant", slugs[0], "--base-url", square.url], input=f"{TOKEN}\n"
    )
    assert stored.exit_code == 0, stored.output
    assert TOKEN not in stored.output
    assert "stored the Square access token" in stored.output
    missing = runner.invoke(app, ["square-token", "--tenant", "nope"], input=f"{TOKEN}\n")
    assert missing.exit_code == 2
    assert "No tenant 'nope'" in missing.output

    synced = runner.invoke(app, ["sync-square", "--all"])  # the one tenant with a token
    assert synced.exit_code == 0, synced.output
    completed = sum(1 for o in square.order_list() if o["state"] == "COMPLETED")
    assert f"synced {completed} orders" in synced.output
    assert TOKEN not in synced.output

    since = runner.invoke(app, ["sync-square", "--tenant", slugs[0], "--since", "2025-03-20"])
    assert since.exit_code == 0, since.output
    start = square.searches[-1]["query"]["filter"]["date_time_filter"]["updated_at"]["start_at"]
    assert start == "2025-03-20T00:00:00.000Z"

    assert runner.invoke(app, ["sync-square", "--all", "--since", "2025-03-20"]).exit_code == 2
    unknown = runner.invoke(app, ["sync-square", "--tenant", "nope"])
    assert unknown.exit_code == 2
    assert "No tenant 'nope'" in unknown.output

    refused = runner.invoke(
        app, ["square-token", "--tenant", slugs[1], "--base-url", square.url],
        input=f"{WRONG_TOKEN}\n",
    )  # fmt: skip
    assert refused.exit_code == 0
    several = runner.invoke(app, ["sync-square"])
    assert several.exit_code == 2
    assert "pass --tenant" in several.output
    auth = runner.invoke(app, ["sync-square", "--tenant", slugs[1]])
    assert auth.exit_code == 2
    assert "Square refused the access token" in auth.output
    assert "401" in auth.output
    assert WRONG_TOKEN not in auth.output

    with factory() as session:
        tokens = dict(
            session.execute(select(AnalyticsSource.tenant_id, AnalyticsSource.square_token)).all()
        )
        facts = session.scalar(select(func.count(FactSales.order_key.distinct())))
    assert sorted(tokens.values()) == sorted([TOKEN, WRONG_TOKEN])
    assert facts == completed
    engine.dispose()
