"""Valuation data of seed 002 (reports/data.py and /api/companies, /api/benchmarks): who may do
what, tenant isolation, validation, the benchmarks CSV import, metrics computed from the
tenant's own sales warehouse, and the demo seed's idempotence."""

from __future__ import annotations

import random
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from doorstep.analytics.warehouse import Loader, LocationRecord, SaleLine, SaleOrder
from doorstep.demo import DemoContext
from doorstep.platform.audit import AuditEntry
from doorstep.platform.auth import Role
from doorstep.platform.errors import Forbidden, NotFound, RuleViolation
from doorstep.platform.events import Event
from doorstep.reports import data, demo, rules
from doorstep.reports.models import (
    Company,
    CompanyMetric,
    MarketBenchmark,
    UserActivity,
    Valuation,
)
from tests.conftest import Brokerage, bearer, principal_of

ZONE = "America/Los_Angeles"
GOOD_CSV = (
    "industry,metric,p25,p50,p75,as_of,source\n"
    "Retail,revenue_growth,0.01,0.04,0.09,2025-01-15,Sample\n"
    "Retail,monthly_churn,0.04,0.06,0.09,2025-01-15,Sample\n"
    "Home services,ebitda_margin,0.08,0.14,0.2,2025-01-15,Sample\n"
)


def _company(db: Session, tenant: Brokerage, name: str = "Acme Bakery") -> Company:
    company = data.create_company(
        db, principal_of(tenant.analyst), name=name, industry="Coffee shops / Restaurants"
    )
    db.commit()
    return company


# --- who may do what ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "read", "write"),
    [
        (Role.admin, True, True),
        (Role.analyst, True, True),
        (Role.broker, True, False),
        (Role.agent, False, False),
        (Role.client, False, False),
    ],
)
def test_who_may_read_and_change(
    client: TestClient, db: Session, brokerage: Brokerage, role: Role, read: bool, write: bool
) -> None:
    company = _company(db, brokerage)
    headers = bearer(client, brokerage.by_role(role))
    reads = [
        "/api/companies",
        f"/api/companies/{company.id}",
        f"/api/companies/{company.id}/valuations",
        f"/api/companies/{company.id}/metrics",
        "/api/benchmarks",
    ]
    for path in reads:
        assert client.get(path, headers=headers).status_code == (200 if read else 403), path
    created = client.post(
        "/api/companies", json={"name": f"New {role}", "industry": "Retail"}, headers=headers
    )
    assert created.status_code == (201 if write else 403), created.text
    patched = client.patch(
        f"/api/companies/{company.id}", json={"description": "x"}, headers=headers
    )
    assert patched.status_code == (200 if write else 403)
    valuation = client.post(
        f"/api/companies/{company.id}/valuations",
        json={
            "method": "dcf",
            "value": "100000",
            "low": "90000",
            "high": "120000",
            "confidence": "0.7",
            "valued_on": "2026-09-30",
        },
        headers=headers,
    )
    assert valuation.status_code == (201 if write else 403), valuation.text
    imported = client.post(
        "/api/benchmarks/import",
        files={"file": ("b.csv", GOOD_CSV.encode(), "text/csv")},
        headers=headers,
    )
    assert imported.status_code == (200 if write else 403), imported.text
    refresh = client.post(f"/api/companies/{company.id}/metrics/refresh", headers=headers)
    # Not linked to a warehouse: editors are told so (422), the others are refused first.
    assert refresh.status_code == (422 if write else 403)


def test_a_company_of_another_tenant_is_not_found_and_never_listed(
    client: TestClient, db: Session, brokerage: Brokerage, rival: Brokerage
) -> None:
    ours = _company(db, brokerage, "Ours")
    theirs = _company(db, rival, "Theirs")
    headers = bearer(client, brokerage.admin)
    listed = client.get("/api/companies", headers=headers).json()
    assert [c["name"] for c in listed["items"]] == ["Ours"]
    assert listed["total"] == 1
    for path in (
        f"/api/companies/{theirs.id}",
        f"/api/companies/{theirs.id}/valuations",
        f"/api/companies/{theirs.id}/metrics",
    ):
        assert client.get(path, headers=headers).status_code == 404, path
    assert (
        client.patch(
            f"/api/companies/{theirs.id}", json={"name": "Mine now"}, headers=headers
        ).status_code
        == 404
    )
    body = {
        "method": "dcf",
        "value": "1",
        "low": "1",
        "high": "1",
        "confidence": "0.5",
        "valued_on": "2026-01-01",
    }
    answer = client.post(f"/api/companies/{theirs.id}/valuations", json=body, headers=headers)
    assert answer.status_code == 404
    assert client.post(f"/api/companies/{theirs.id}/metrics/refresh", headers=headers).status_code
    assert db.scalar(select(func.count()).select_from(Valuation)) == 0
    assert db.get(Company, theirs.id).name == "Theirs"  # type: ignore[union-attr]
    # The same name is free in another tenant.
    assert (
        client.post(
            "/api/companies", json={"name": "Theirs", "industry": "Retail"}, headers=headers
        ).status_code
        == 201
    )
    assert ours.id != theirs.id
    with pytest.raises(NotFound):
        data.get_company(db, principal_of(brokerage.analyst), theirs.id)


def test_search_and_pages(client: TestClient, db: Session, brokerage: Brokerage) -> None:
    for name in ("Alpha Cafe", "Beta Retail", "Gamma Cafe"):
        _company(db, brokerage, name)
    headers = bearer(client, brokerage.broker)
    found = client.get("/api/companies?search=cafe", headers=headers).json()
    assert [c["name"] for c in found["items"]] == ["Alpha Cafe", "Gamma Cafe"]
    page2 = client.get("/api/companies?per_page=2&page=2", headers=headers).json()
    assert page2["total"] == 3
    assert [c["name"] for c in page2["items"]] == ["Gamma Cafe"]
    assert client.get("/api/companies?per_page=0", headers=headers).status_code == 422


# --- validation ---------------------------------------------------------------------------------


def test_company_names_are_unique_per_tenant(
    client: TestClient, db: Session, brokerage: Brokerage
) -> None:
    _company(db, brokerage, "Acme")
    other = _company(db, brokerage, "Other")
    headers = bearer(client, brokerage.analyst)
    dup = client.post("/api/companies", json={"name": "acme", "industry": "x"}, headers=headers)
    assert dup.status_code == 409
    assert "already exists" in dup.json()["detail"]
    renamed = client.patch(f"/api/companies/{other.id}", json={"name": "Acme"}, headers=headers)
    assert renamed.status_code == 409
    empty = client.post("/api/companies", json={"name": "", "industry": "x"}, headers=headers)
    assert empty.status_code == 422
    extra = client.post(
        "/api/companies", json={"name": "Z", "industry": "x", "owner": 1}, headers=headers
    )
    assert extra.status_code == 422
    nulled = client.patch(f"/api/companies/{other.id}", json={"name": None}, headers=headers)
    assert nulled.status_code == 422


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"value": "abc"}, "value"),
        ({"value": "NaN"}, "value"),
        ({"value": "12.345"}, "value"),
        ({"value": "-5", "low": "-10"}, "value"),
        ({"confidence": "1.5"}, "confidence"),
        ({"method": "gut_feeling"}, "method"),
        ({"valued_on": "2026-13-01"}, "valued_on"),
        ({"low": "150000"}, "between its low and high"),  # low > high (and > value)
        ({"value": "130000"}, "between its low and high"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_valuation_validation(
    client: TestClient, db: Session, brokerage: Brokerage, change: dict, fragment: str
) -> None:
    company = _company(db, brokerage)
    body = {
        "method": "revenue_multiple",
        "value": "100000",
        "low": "90000",
        "high": "120000",
        "confidence": "0.7",
        "valued_on": "2026-09-30",
    } | change
    answer = client.post(
        f"/api/companies/{company.id}/valuations",
        json=body,
        headers=bearer(client, brokerage.admin),
    )
    assert answer.status_code == 422, answer.text
    assert fragment in answer.text
    assert db.scalar(select(func.count()).select_from(Valuation)) == 0


def test_valuations_newest_first_with_activity_and_events(
    client: TestClient, db: Session, brokerage: Brokerage
) -> None:
    company = _company(db, brokerage)
    headers = bearer(client, brokerage.analyst)
    for day, value in (("2026-03-31", "100000.50"), ("2026-09-30", "120000"), ("2026-06-30", "9")):
        body = {
            "method": "ebitda_multiple",
            "value": value,
            "low": "1",
            "high": "200000",
            "confidence": "0.8",
            "valued_on": day,
        }
        answer = client.post(f"/api/companies/{company.id}/valuations", json=body, headers=headers)
        assert answer.status_code == 201, answer.text
    listed = client.get(f"/api/companies/{company.id}/valuations", headers=headers).json()
    assert [v["valued_on"] for v in listed] == ["2026-09-30", "2026-06-30", "2026-03-31"]
    assert Decimal(listed[2]["value"]) == Decimal("100000.50")
    actions = db.scalars(
        select(UserActivity.action).where(UserActivity.tenant_id == brokerage.tenant.id)
    ).all()
    assert actions.count("valuation.added") == 3
    assert "company.created" in actions
    outbox = db.scalars(select(Event).where(Event.tenant_id == brokerage.tenant.id)).all()
    created = [e for e in outbox if e.type == "valuation.created"]
    assert len(created) == 3
    assert created[0].channels == [f"tenant:{brokerage.tenant.id}"]
    assert set(created[0].audience["roles"]) == {str(r) for r in rules.VIEWER_ROLES}
    assert any(e.type == "company.created" for e in outbox)


# --- benchmarks ---------------------------------------------------------------------------------


def _upload(client: TestClient, user: object, text: str) -> object:
    return client.post(
        "/api/benchmarks/import",
        files={"file": ("benchmarks.csv", text.encode(), "text/csv")},
        headers=bearer(client, user),  # type: ignore[arg-type]
    )


def test_benchmarks_import_filter_and_upsert(
    client: TestClient, db: Session, brokerage: Brokerage, rival: Brokerage
) -> None:
    first = _upload(client, brokerage.analyst, GOOD_CSV)
    assert first.status_code == 200, first.text  # type: ignore[attr-defined]
    assert first.json() == {"rows": 3, "created": 3, "updated": 0}  # type: ignore[attr-defined]
    changed = GOOD_CSV.replace("0.01,0.04,0.09", "0.02,0.05,0.1")
    again = _upload(client, brokerage.analyst, changed)
    assert again.json() == {"rows": 3, "created": 0, "updated": 3}  # type: ignore[attr-defined]
    headers = bearer(client, brokerage.broker)
    retail = client.get("/api/benchmarks?industry=retail", headers=headers).json()
    assert [b["metric"] for b in retail] == ["monthly_churn", "revenue_growth"]
    growth = client.get("/api/benchmarks?metric=revenue_growth", headers=headers).json()
    assert [(b["industry"], Decimal(b["p50"])) for b in growth] == [("Retail", Decimal("0.05"))]
    assert client.get("/api/benchmarks?metric=nope", headers=headers).status_code == 422
    # Another tenant sees none of them.
    assert client.get("/api/benchmarks", headers=bearer(client, rival.admin)).json() == []
    activity = db.scalars(
        select(UserActivity.action).where(UserActivity.tenant_id == brokerage.tenant.id)
    ).all()
    assert activity.count("benchmarks.imported") == 2


def test_a_bad_benchmarks_file_reports_every_line_and_imports_nothing(
    client: TestClient, db: Session, brokerage: Brokerage
) -> None:
    text = (
        "industry,metric,p25,p50,p75,as_of,source\n"
        "Retail,revenue_growth,0.01,0.04,0.09,2025-01-15,Sample\n"  # line 2: fine
        "Retail,customer_happiness,1,2,3,2025-01-15,Sample\n"  # line 3: unknown metric
        "Retail,ebitda_margin,0.05,0.09,0.14,2025-01-15,Sample\n"  # line 4: fine
        "Retail,revenue_multiple,1.5,0.8,0.4,2025-01-15,Sample\n"  # line 5: unordered
        "Retail,ebitda_multiple,6,9.5,14,15/01/2025,Sample\n"  # line 6: not an ISO date
    )
    answer = _upload(client, brokerage.admin, text)
    assert answer.status_code == 422  # type: ignore[attr-defined]
    body = answer.json()  # type: ignore[attr-defined]
    assert [p["line"] for p in body["errors"]] == [3, 5, 6]
    assert "customer_happiness" in body["errors"][0]["errors"][0]
    assert "ordered" in body["errors"][1]["errors"][0]
    assert "ISO" in body["errors"][2]["errors"][0]
    assert "line 3, 5, 6" in body["detail"]
    assert db.scalar(select(func.count()).select_from(MarketBenchmark)) == 0


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("industry,metric\nRetail,revenue_growth\n", "missing column"),
        ("", "empty"),
        ("industry,metric,p25,p50,p75,as_of,source\n", "no rows"),
        (
            "industry,metric,p25,p50,p75,as_of,source\nRetail,monthly_churn,4,6,9,2025-01-15,S\n",
            "fractions",
        ),
        (
            "industry,metric,p25,p50,p75,as_of,source\n"
            "Retail,monthly_churn,0.1,x,0.3,2025-01-15,S\n"
            "Retail,monthly_churn,0.1,0.2,0.3,2025-01-15,S\n"
            "Retail,monthly_churn,0.1,0.2,0.3,2025-01-15,\n",
            "same industry, metric and as_of as line 2",
        ),
    ],
)
def test_benchmark_file_problems(
    db: Session, brokerage: Brokerage, text: str, fragment: str
) -> None:
    with pytest.raises(RuleViolation) as caught:
        data.import_benchmarks_csv(db, principal_of(brokerage.analyst), text)
    assert fragment in str(caught.value.detail) + str(caught.value.errors)


def test_benchmark_upload_limits(client: TestClient, brokerage: Brokerage) -> None:
    big = GOOD_CSV + "x" * (5 * 1024 * 1024)
    assert _upload(client, brokerage.admin, big).status_code == 422  # type: ignore[attr-defined]
    latin = _upload(client, brokerage.admin, "industry\n")
    assert latin.status_code == 422  # type: ignore[attr-defined]


# --- metrics from the warehouse -----------------------------------------------------------------


def _orders(seed: int) -> list[SaleOrder]:
    """Sales in January, February and April 2026 (none in March), at noon local time."""
    rng = random.Random(seed)
    orders = []
    for n in range(240):
        month = rng.choice((1, 2, 4))
        day = rng.randint(1, 28)
        ts = datetime(2026, month, day, 12, rng.randrange(60), tzinfo=ZoneInfo(ZONE))
        lines = tuple(
            SaleLine(p, p.title(), Decimal(1), Decimal(rng.randint(150, 2500)) / 100)
            for p in rng.sample(["latte", "mocha", "scone"], rng.randint(1, 2))
        )
        customer = f"c{rng.randrange(25)}" if rng.random() < 0.8 else None
        orders.append(SaleOrder("square", f"o{n}", "north", ts, lines, customer))
    return orders


def _load(db: Session, tenant_id: int, orders: list[SaleOrder]) -> None:
    loader = Loader(db, tenant_id)
    loader.upsert_locations([LocationRecord("square", "north", "North", ZONE)])
    loader.load_orders(orders)
    db.flush()


def _plain(orders: list[SaleOrder]) -> dict[date, dict[str, object]]:
    """The figures computed the obvious way, month by month from January to April."""
    months = [date(2026, m, 1) for m in (1, 2, 3, 4)]
    out: dict[date, dict[str, object]] = {}
    previous: dict[str, object] | None = None
    for month in months:
        mine = [o for o in orders if o.ts.month == month.month]
        revenue = sum((line.revenue for o in mine for line in o.lines), Decimal(0))
        customers = {o.customer_key for o in mine if o.customer_key}
        figures: dict[str, object] = {
            "revenue": revenue,
            "orders": len(mine),
            "customers": len(customers),
            "growth": None,
            "churn": None,
        }
        if previous is not None:
            prev_rev = previous["revenue"]
            assert isinstance(prev_rev, Decimal)
            if prev_rev:
                figures["growth"] = ((revenue - prev_rev) / prev_rev).quantize(Decimal("0.0001"))
            prev_customers = previous["set"]
            assert isinstance(prev_customers, set)
            if prev_customers:
                lost = len(prev_customers - customers)
                figures["churn"] = (Decimal(lost) / len(prev_customers)).quantize(Decimal("0.0001"))
        figures["set"] = customers
        out[month] = figures
        previous = figures
    return out


def test_refresh_metrics_matches_a_plain_computation(
    client: TestClient, db: Session, brokerage: Brokerage
) -> None:
    orders = _orders(7)
    _load(db, brokerage.tenant.id, orders)
    company = _company(db, brokerage)
    headers = bearer(client, brokerage.analyst)
    linked = client.patch(
        f"/api/companies/{company.id}",
        json={"warehouse_tenant_id": brokerage.tenant.id},
        headers=headers,
    )
    assert linked.status_code == 200, linked.text
    rows = client.get(f"/api/companies/{company.id}/metrics", headers=headers).json()
    expected = _plain(orders)
    assert [r["period"] for r in rows] == [m.isoformat() for m in expected]
    for row in rows:
        want = expected[date.fromisoformat(row["period"])]
        assert Decimal(row["revenue"]) == want["revenue"]
        assert row["orders"] == want["orders"]
        assert row["customers"] == want["customers"]
        for key in ("growth", "churn"):
            got = None if row[key] is None else Decimal(row[key])
            assert got == want[key], (row["period"], key)
        assert row["margin"] is None
        assert row["source"] == "warehouse"
    # March had no sales: everyone of February churned, and April's growth has no base.
    march = rows[2]
    assert Decimal(march["revenue"]) == 0
    assert Decimal(march["churn"]) == 1
    assert rows[3]["growth"] is None

    # Idempotent, and a typed-in margin survives a refresh.
    row = db.scalar(select(CompanyMetric).where(CompanyMetric.company_id == company.id))
    assert row is not None
    row.margin = Decimal("0.1234")
    db.commit()
    again = client.post(f"/api/companies/{company.id}/metrics/refresh", headers=headers)
    assert again.json() == {"company_id": company.id, "months": 4}
    assert db.scalar(select(func.count()).where(CompanyMetric.company_id == company.id)) == 4
    db.refresh(row)
    assert row.margin == Decimal("0.1234")

    # The month still running is left out until it ends.
    db.refresh(company)
    # (March, without sales, now ends the data: months run from the first sale to the last.)
    assert data.refresh_metrics(db, company, today=date(2026, 4, 10)) == 2
    periods = db.scalars(
        select(CompanyMetric.period).where(CompanyMetric.company_id == company.id)
    ).all()
    assert max(periods) == date(2026, 2, 1)


def test_a_company_cannot_read_another_tenants_sales(
    client: TestClient, db: Session, brokerage: Brokerage, rival: Brokerage
) -> None:
    _load(db, rival.tenant.id, _orders(3))
    company = _company(db, brokerage)
    headers = bearer(client, brokerage.admin)
    patched = client.patch(
        f"/api/companies/{company.id}",
        json={"warehouse_tenant_id": rival.tenant.id},
        headers=headers,
    )
    assert patched.status_code == 403
    created = client.post(
        "/api/companies",
        json={"name": "Spy", "industry": "Retail", "warehouse_tenant_id": rival.tenant.id},
        headers=headers,
    )
    assert created.status_code == 403
    # A broker may not link even to their own warehouse (read-only).
    own = client.patch(
        f"/api/companies/{company.id}",
        json={"warehouse_tenant_id": brokerage.tenant.id},
        headers=bearer(client, brokerage.broker),
    )
    assert own.status_code == 403
    # Even a link forced into the table is refused when the metrics are computed.
    company.warehouse_tenant_id = rival.tenant.id
    db.commit()
    with pytest.raises(Forbidden):
        data.refresh_metrics(db, company)
    refresh = client.post(f"/api/companies/{company.id}/metrics/refresh", headers=headers)
    assert refresh.status_code == 403
    assert db.scalar(select(func.count()).select_from(CompanyMetric)) == 0


# --- the demo -----------------------------------------------------------------------------------


def _counts(db: Session) -> dict[str, int]:
    return {
        model.__name__: db.scalar(select(func.count()).select_from(model)) or 0
        for model in (
            Company,
            Valuation,
            CompanyMetric,
            MarketBenchmark,
            UserActivity,
            Event,
            AuditEntry,
        )
    }


def test_demo_seed_is_complete_and_idempotent(
    db: Session, brokerage: Brokerage, rival: Brokerage
) -> None:
    _load(db, brokerage.tenant.id, _orders(5))
    _load(db, rival.tenant.id, _orders(6))
    ctx = DemoContext(
        session=db,
        rng=random.Random(1),
        password_hash="unused",
        tenants={"riley-realty": brokerage.tenant, "morning-ritual": rival.tenant},
        users={
            "admin@doorstep.demo": brokerage.admin,
            "analyst@doorstep.demo": brokerage.analyst,
            "owner@doorstep.demo": rival.admin,
            "analyst@morningritual.demo": rival.analyst,
        },
    )
    demo.seed_demo(ctx)
    db.flush()
    first = _counts(db)
    demo.seed_demo(ctx)
    db.flush()
    assert _counts(db) == first

    companies = {c.name: c for c in db.scalars(select(Company))}
    assert set(companies) == {
        "Riley Realty",
        "Harborview Property Management",
        "Bayside Home Services",
        "Cedar Street Bakery",
        "Morning Ritual Coffee",
    }
    riley, cafe = companies["Riley Realty"], companies["Morning Ritual Coffee"]
    assert riley.warehouse_tenant_id == brokerage.tenant.id
    assert cafe.tenant_id == cafe.warehouse_tenant_id == rival.tenant.id
    for linked in (riley, cafe):
        metrics = db.scalars(
            select(CompanyMetric).where(CompanyMetric.company_id == linked.id)
        ).all()
        assert len(metrics) == 4
        assert {m.source for m in metrics} == {"warehouse"}
    analyst = principal_of(brokerage.analyst)
    for name in ("Harborview Property Management", "Bayside Home Services", "Cedar Street Bakery"):
        company = companies[name]
        assert len(data.list_metrics(db, analyst, company.id)) == demo.MONTHS
        valuations = data.list_valuations(db, analyst, company.id)
        extra = 1 if name.startswith("Harborview") else 0  # the revaluation after the quarter
        assert len(valuations) == demo.QUARTERS * len(rules.METHODS) + extra
        assert all(v.low <= v.value <= v.high and 0 < v.confidence < 1 for v in valuations)
        assert len({v.valued_on for v in valuations}) == demo.QUARTERS + extra
    assert len(data.list_valuations(db, analyst, riley.id)) == demo.QUARTERS * len(rules.METHODS)

    def drop(name: str) -> Decimal:
        valuations = data.list_valuations(db, analyst, companies[name].id)
        latest_day = valuations[0].valued_on
        latest = [v.value for v in valuations if v.valued_on == latest_day]
        before = [v.value for v in valuations if v.valued_on < latest_day][: len(latest)]
        return 1 - sum(latest, Decimal(0)) / sum(before, Decimal(0))

    assert drop("Harborview Property Management") > rules.VALUATION_DROP
    assert drop("Bayside Home Services") < rules.VALUATION_DROP
    assert drop("Cedar Street Bakery") < rules.VALUATION_DROP
    # The live dashboard compares the two newest rows whatever their method: Harborview's fall
    # shows there too, and a steady company's methods of one day never read as a fall.
    for name, alert in (
        ("Harborview Property Management", True),
        ("Bayside Home Services", False),
        ("Cedar Street Bakery", False),
    ):
        newest = data.list_valuations(db, analyst, companies[name].id)
        fell = rules.valuation_drop(newest[1].value, newest[0].value)
        assert (fell is not None and fell > rules.VALUATION_DROP) is alert, name

    bayside = data.list_metrics(db, analyst, companies["Bayside Home Services"].id)
    (home,) = data.list_benchmarks(db, analyst, industry="Home services", metric="monthly_churn")
    assert bayside[-1].churn is not None
    assert rules.under_benchmark("monthly_churn", bayside[-1].churn, home.p25, home.p75)
    for name in ("Harborview Property Management", "Cedar Street Bakery"):
        company = companies[name]
        (bench,) = data.list_benchmarks(
            db, analyst, industry=company.industry, metric="monthly_churn"
        )
        latest = data.list_metrics(db, analyst, company.id)[-1].churn
        assert latest is not None
        assert not rules.under_benchmark("monthly_churn", latest, bench.p25, bench.p75)

    sample_rows = demo.SAMPLE.read_text().count("\n") - 1
    for tenant in (brokerage.tenant, rival.tenant):
        count = db.scalar(select(func.count()).where(MarketBenchmark.tenant_id == tenant.id))
        assert count == sample_rows
    assert first["UserActivity"] >= 5
