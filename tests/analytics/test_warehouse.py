"""The warehouse loader and every dashboard figure, checked against a plain computation over the
same random orders (no rollups, no SQL), in both database modes."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from doorstep.analytics import rules, service
from doorstep.analytics.models import (
    CustomerMonthly,
    DailySalesSummary,
    DimCustomer,
    DimLocation,
    FactSales,
    SilverCustomer,
)
from doorstep.analytics.warehouse import (
    BATCH,
    CustomerRecord,
    Loader,
    LocationRecord,
    SaleLine,
    SaleOrder,
)
from tests.conftest import Brokerage

ZONES = {"north": "America/Los_Angeles", "south": "America/New_York"}
PRODUCTS = [("latte", "Latte"), ("mocha", "Mocha"), ("scone", "Scone"), ("tea", "Tea")]
CENT = Decimal("0.01")


def random_orders(seed: int, *, days: int = 120, end: date = date(2026, 6, 30)) -> list[SaleOrder]:
    rng = random.Random(seed)
    orders = []
    for n in range(900):
        day = end - timedelta(days=rng.randrange(days))
        location = rng.choice(list(ZONES))
        local = datetime(day.year, day.month, day.day, rng.randrange(24), rng.randrange(60),
                         tzinfo=ZoneInfo(ZONES[location]))  # fmt: skip
        lines = tuple(
            SaleLine(
                key,
                name,
                Decimal(rng.randint(1, 3)),
                Decimal(rng.randint(150, 2500)) / 100,
            )
            for key, name in rng.sample(PRODUCTS, rng.randint(1, 3))
        )
        customer = f"c{rng.randrange(60)}" if rng.random() < 0.7 else None
        orders.append(
            SaleOrder("square", f"o{n}", location, local.astimezone(UTC), lines, customer)
        )
    return orders


def load(db: Session, tenant_id: int, orders: list[SaleOrder]) -> Loader:
    loader = Loader(db, tenant_id)
    loader.upsert_locations(
        LocationRecord("square", key, key.title(), z) for key, z in ZONES.items()
    )
    loader.load_orders(orders)
    db.flush()
    return loader


def local_day(order: SaleOrder) -> date:
    return order.ts.astimezone(ZoneInfo(ZONES[order.location_key])).date()


def plain(orders: list[SaleOrder], start: date, end: date, location: str | None = None):
    """The figures, computed the obvious way."""
    chosen = [
        o for o in orders
        if start <= local_day(o) <= end and (location is None or o.location_key == location)
    ]  # fmt: skip
    revenue = sum((line.revenue for o in chosen for line in o.lines), Decimal(0))
    per_customer = Counter(o.customer_key for o in chosen if o.customer_key)
    return chosen, revenue, per_customer


@pytest.fixture
def shop(db: Session, brokerage: Brokerage) -> tuple[int, list[SaleOrder], Filters]:
    orders = random_orders(7)
    load(db, brokerage.tenant.id, orders)
    return brokerage.tenant.id, orders


Filters = service.Filters


def test_every_figure_matches_a_plain_computation(db: Session, shop) -> None:
    tenant_id, orders = shop
    sks = dict(db.execute(select(DimLocation.location_key, DimLocation.location_sk)).all())
    for start, end, location in [
        (date(2026, 6, 1), date(2026, 6, 30), None),
        (date(2026, 3, 15), date(2026, 6, 10), "north"),
        (date(2026, 1, 1), date(2026, 6, 30), "south"),
        (date(2026, 5, 31), date(2026, 5, 31), None),
    ]:
        f = Filters(tenant_id, rules.Period(start, end, "x"), sks[location] if location else None)
        board = service.dashboard(db, f)
        assert board["errors"] == {}
        chosen, revenue, per_customer = plain(orders, start, end, location)
        kpis = board["kpis"]
        assert kpis["orders"]["value"] == len(chosen)
        assert kpis["revenue"]["value"] == revenue.quantize(CENT)
        assert kpis["customers"]["value"] == len(per_customer)
        if chosen:
            assert kpis["aov"]["value"] == (revenue / len(chosen)).quantize(CENT)
        # previous period of the same length
        prev = rules.Period(start, end, "x").previous()
        before, _, _ = plain(orders, prev.start, prev.end, location)
        assert kpis["orders"]["previous"] == len(before)
        expected = rules.change(len(chosen), len(before))
        assert kpis["orders"]["change_pct"] == expected
        # trend
        by_day: dict[date, Decimal] = defaultdict(Decimal)
        for o in chosen:
            by_day[local_day(o)] += sum(line.revenue for line in o.lines)
        assert {r["date"]: r["revenue"] for r in board["revenue_trend"]} == dict(by_day)
        # segments
        seg = Counter(rules.segment_of(n) for n in per_customer.values())
        assert {s["segment"]: s["customers"] for s in board["segments"]} == {
            name: seg.get(name, 0) for name, _, _ in rules.SEGMENTS
        }
        # CLV: lifetime spend up to the end, of those who bought in the period
        lifetime: dict[str, Decimal] = defaultdict(Decimal)
        for o in orders:
            if (
                o.customer_key
                and local_day(o) <= end
                and (location is None or o.location_key == location)
            ):
                lifetime[o.customer_key] += sum(line.revenue for line in o.lines)
        clv = Counter(rules.clv_bucket(lifetime[c]) for c in per_customer)
        assert {b["bucket"]: b["customers"] for b in board["clv_distribution"]} == {
            name: clv.get(name, 0) for name, _, _ in rules.CLV_BUCKETS
        }
        # top products
        product_revenue: dict[str, Decimal] = defaultdict(Decimal)
        for o in chosen:
            for line in o.lines:
                product_revenue[line.product_name] += line.revenue
        top = sorted(product_revenue.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
        assert [(p["product"], p["revenue"]) for p in board["top_products"]] == top
        # hourly and weekly
        hours: dict[int, Decimal] = defaultdict(Decimal)
        weekdays: dict[int, Decimal] = defaultdict(Decimal)
        for o in chosen:
            local = o.ts.astimezone(ZoneInfo(ZONES[o.location_key]))
            total = sum((line.revenue for line in o.lines), Decimal(0))
            hours[local.hour] += total
            weekdays[(local.weekday() + 1) % 7] += total
        assert [h["revenue"] for h in board["hourly"]] == [hours[h] for h in range(24)]
        assert [w["revenue"] for w in board["weekly"]] == [weekdays[d] for d in range(7)]
        assert board["weekly"][0]["day"] == "Sunday"


def test_cohorts_match_a_plain_computation(db: Session, shop) -> None:
    tenant_id, orders = shop
    start, end = date(2026, 3, 1), date(2026, 6, 30)
    board = service.dashboard(db, Filters(tenant_id, rules.Period(start, end, "x")))
    first: dict[str, date] = {}
    active: dict[date, set[str]] = defaultdict(set)
    for o in sorted(orders, key=local_day):
        if o.customer_key:
            first.setdefault(o.customer_key, local_day(o).replace(day=1))
            active[local_day(o).replace(day=1)].add(o.customer_key)
    cohorts = board["cohorts"]
    assert cohorts["message"] is None
    months = rules.months_between(start, end)
    assert cohorts["months"] == months
    for row in cohorts["rows"]:
        members = {c for c, m in first.items() if m == row["cohort"]}
        assert row["customers"] == len(members & active[row["cohort"]])
        for month, value in zip(months, row["values"], strict=True):
            if month < row["cohort"]:
                assert value is None
            else:
                share = 100 * len(members & active[month]) / len(members)
                assert value == round(share, 1)


def test_loading_again_changes_nothing_and_a_new_version_replaces_the_old(
    db: Session, shop
) -> None:
    tenant_id, orders = shop

    def snapshot() -> tuple:
        return (
            db.scalar(select(func.count()).select_from(FactSales)),
            db.scalar(select(func.sum(FactSales.revenue))),
            db.scalar(select(func.sum(DailySalesSummary.revenue))),
            db.scalar(select(func.sum(CustomerMonthly.orders))),
        )

    before = snapshot()
    again = Loader(db, tenant_id).load_orders(orders[:300])
    assert again.removed == 0
    assert snapshot() == before
    # A changed order (new total, new day) and a cancelled one.
    changed = orders[0]
    bigger = SaleOrder(
        changed.source, changed.order_key, changed.location_key,
        changed.ts - timedelta(days=40), (SaleLine("tea", "Tea", Decimal(1), Decimal("100.00")),),
        changed.customer_key,
    )  # fmt: skip
    gone = SaleOrder(orders[1].source, orders[1].order_key, "north", orders[1].ts, (), None,
                     state="CANCELED")  # fmt: skip
    result = Loader(db, tenant_id).load_orders([bigger, gone])
    assert result.removed == 1
    expected_total = (
        before[1]
        - sum(line.revenue for line in changed.lines)
        - sum(line.revenue for line in orders[1].lines)
        + Decimal("100.00")
    )
    assert db.scalar(select(func.sum(FactSales.revenue))) == expected_total
    assert db.scalar(select(func.sum(DailySalesSummary.revenue))) == expected_total
    assert db.scalar(select(func.sum(CustomerMonthly.revenue))) == db.scalar(
        select(func.sum(FactSales.revenue)).where(FactSales.customer_sk.is_not(None))
    )


def test_customers_are_kept_as_scd_type_2(db: Session, brokerage: Brokerage) -> None:
    loader = Loader(db, brokerage.tenant.id)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    assert (
        loader.upsert_customers(
            [CustomerRecord("square", "c1", "Ann Lee", "ann@example.com", "", t0)]
        )
        == 1
    )
    assert (
        loader.upsert_customers(
            [CustomerRecord("square", "c1", "Ann Lee", "ann@example.com", "", t0)]
        )
        == 0
    )
    t1 = t0 + timedelta(days=30)
    assert (
        loader.upsert_customers(
            [CustomerRecord("square", "c1", "Ann Lee-Park", "ann@example.com", "", t1)]
        )
        == 1
    )
    rows = db.scalars(select(SilverCustomer).order_by(SilverCustomer.valid_from)).all()
    assert [(r.name, r.is_current, r.valid_to) for r in rows] == [
        ("Ann Lee", False, t1),
        ("Ann Lee-Park", True, None),
    ]
    assert db.scalar(select(DimCustomer.name)) == "Ann Lee-Park"


def test_customers_load_in_batches_and_keep_every_change(db: Session, brokerage: Brokerage) -> None:
    # More customers than one batch; then, in the second batch, one customer renamed twice and
    # one sent again unchanged.
    loader = Loader(db, brokerage.tenant.id)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    day = timedelta(days=1)
    records = [
        CustomerRecord("square", f"k{i}", f"Customer {i}", "", "", t0) for i in range(BATCH + 1)
    ]
    records += [
        CustomerRecord("square", "k0", "Renamed once", "", "", t0 + day),
        CustomerRecord("square", "k0", "Renamed twice", "", "", t0 + 2 * day),
        CustomerRecord("square", "k1", "Customer 1", "", "", t0 + 3 * day),
    ]
    assert loader.upsert_customers(records) == BATCH + 3
    history = db.scalars(
        select(SilverCustomer)
        .where(SilverCustomer.customer_key == "k0")
        .order_by(SilverCustomer.valid_from)
    ).all()
    assert [(r.name, r.is_current, r.valid_to) for r in history] == [
        ("Customer 0", False, t0 + day),
        ("Renamed once", False, t0 + 2 * day),
        ("Renamed twice", True, None),
    ]
    current = select(func.count()).where(SilverCustomer.is_current.is_(True))
    assert db.scalar(current.select_from(SilverCustomer)) == BATCH + 1
    names = dict(db.execute(select(DimCustomer.customer_key, DimCustomer.name)).all())
    assert len(names) == BATCH + 1
    assert (names["k0"], names["k1"], names[f"k{BATCH}"]) == (
        "Renamed twice",
        "Customer 1",
        f"Customer {BATCH}",
    )


def test_an_empty_warehouse_gives_empty_panels_not_errors(
    db: Session, brokerage: Brokerage
) -> None:
    f = Filters(brokerage.tenant.id, rules.Period(date(2026, 1, 1), date(2026, 1, 31), "x"))
    board = service.dashboard(db, f)
    assert board["errors"] == {}
    assert board["kpis"]["orders"] == {
        "value": 0,
        "previous": 0,
        "change_pct": None,
        "direction": None,
    }
    assert board["revenue_trend"] == []
    assert board["top_products"] == []
    assert board["cohorts"]["message"].startswith("Need multiple months of data")
    assert board["insights"]["available"] is False
    assert all(h["revenue"] == 0 for h in board["hourly"])


def test_one_failing_panel_leaves_the_others(db: Session, shop, monkeypatch) -> None:
    tenant_id, _ = shop

    def broken(session: Session, f: Filters) -> None:
        session.execute(select(func.no_such_function()))

    monkeypatch.setitem(service.PANELS, "cohorts", broken)
    board = service.dashboard(
        db, Filters(tenant_id, rules.Period(date(2026, 6, 1), date(2026, 6, 30), "x"))
    )
    assert set(board["errors"]) == {"cohorts"}
    assert board["cohorts"] is None
    assert board["kpis"]["orders"]["value"] > 0
    assert board["top_products"]


def test_another_tenant_sees_none_of_it(db: Session, shop, rival: Brokerage) -> None:
    f = Filters(rival.tenant.id, rules.Period(date(2026, 1, 1), date(2026, 6, 30), "x"))
    board = service.dashboard(db, f)
    assert board["kpis"]["orders"]["value"] == 0
    assert board["top_products"] == []
