"""The live dashboard's API (seed 002): who may read it, what it holds, its alert rules, and
that its system figures are this process's real ones."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from doorstep.platform.auth import Role, Tenant
from doorstep.platform.db import utcnow
from doorstep.platform.jobs import Job
from doorstep.reports.models import (
    Company,
    CompanyMetric,
    MarketBenchmark,
    Report,
    UserActivity,
    Valuation,
)
from tests.conftest import Brokerage, bearer, web_login


def company(db: Session, tenant: Tenant, name: str, industry: str = "Coffee shops") -> Company:
    row = Company(tenant_id=tenant.id, name=name, industry=industry)
    db.add(row)
    db.flush()
    return row


def valuation(db: Session, c: Company, value: int, on: date, confidence: str = "0.8") -> Valuation:
    row = Valuation(
        tenant_id=c.tenant_id,
        company_id=c.id,
        method="revenue_multiple",
        value=Decimal(value),
        low=Decimal(value) * Decimal("0.9"),
        high=Decimal(value) * Decimal("1.1"),
        confidence=Decimal(confidence),
        valued_on=on,
    )
    db.add(row)
    db.flush()
    return row


def month(db: Session, c: Company, period: date, revenue: int, **figures: str) -> CompanyMetric:
    row = CompanyMetric(
        tenant_id=c.tenant_id,
        company_id=c.id,
        period=period,
        revenue=Decimal(revenue),
        **{k: Decimal(v) for k, v in figures.items()},
    )
    db.add(row)
    db.flush()
    return row


def benchmark(db: Session, tenant: Tenant, metric: str, p25: str, p50: str, p75: str) -> None:
    db.add(
        MarketBenchmark(
            tenant_id=tenant.id,
            industry="Coffee shops",
            metric=metric,
            p25=Decimal(p25),
            p50=Decimal(p50),
            p75=Decimal(p75),
            as_of=date(2025, 6, 30),
            source="Test survey 2025",
        )
    )
    db.flush()


@pytest.fixture
def portfolio(db: Session, brokerage: Brokerage, rival: Brokerage) -> dict[str, Company]:
    """Alpha's companies: one whose valuation fell 20%, one that fell 9%, one under the growth
    and margin benchmarks; the rival tenant has a company of its own."""
    t = brokerage.tenant
    falling = company(db, t, "Falling Beans")
    valuation(db, falling, 1_000_000, date(2025, 3, 31))
    valuation(db, falling, 800_000, date(2025, 6, 30), confidence="0.6")
    slipping = company(db, t, "Slipping Cups")
    valuation(db, slipping, 500_000, date(2025, 3, 31))
    valuation(db, slipping, 455_000, date(2025, 6, 30))
    lagging = company(db, t, "Lagging Latte")
    valuation(db, lagging, 300_000, date(2025, 6, 30), confidence="0.7")
    # Yearly growth 2% (June vs June a year earlier), margin 5%: both under p25.
    month(db, lagging, date(2024, 6, 1), 100_000)
    month(db, lagging, date(2025, 5, 1), 101_000)
    month(db, lagging, date(2025, 6, 1), 102_000, growth="0.0099", margin="0.05", churn="0.02")
    benchmark(db, t, "revenue_growth", "0.08", "0.15", "0.25")
    benchmark(db, t, "ebitda_margin", "0.10", "0.15", "0.20")
    benchmark(db, t, "monthly_churn", "0.02", "0.04", "0.06")
    db.add(
        UserActivity(
            tenant_id=t.id,
            user_id=brokerage.analyst.id,
            action="report.generated",
            subject="Executive Summary: Falling Beans",
        )
    )
    db.add(
        UserActivity(
            tenant_id=t.id,
            user_id=brokerage.admin.id,
            action="valuation.created",
            subject="Lagging Latte",
        )
    )
    db.add(
        Report(
            tenant_id=t.id,
            requested_by=brokerage.analyst.id,
            template="due_diligence",
            format="pdf",
            sections=["summary"],
            company_id=falling.id,
            title="Due Diligence: Falling Beans",
            status="done",
        )
    )
    foreign = company(db, rival.tenant, "Rival Roastery")
    valuation(db, foreign, 9_000_000, date(2025, 6, 30))
    db.commit()
    return {"falling": falling, "slipping": slipping, "lagging": lagging, "foreign": foreign}


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
@pytest.mark.parametrize(
    "path",
    [
        "/api/realtime/dashboard-data",
        "/api/realtime/metrics/live",
        "/api/realtime/notifications",
    ],
)
def test_who_may_read_the_live_dashboard(
    client: TestClient, brokerage: Brokerage, role: Role, allowed: bool, path: str
) -> None:
    response = client.get(path, headers=bearer(client, brokerage.by_role(role)))
    assert response.status_code == (200 if allowed else 403), response.text
    if not allowed:
        assert response.json()["code"] == "forbidden"


def test_signed_out_is_refused(client: TestClient) -> None:
    assert client.get("/api/realtime/dashboard-data").status_code == 401
    assert client.get("/api/realtime/metrics/live").status_code == 401


@pytest.mark.parametrize("role", [Role.admin, Role.broker, Role.analyst])
def test_the_dashboard_data_has_the_seed_shape_and_only_this_tenant(
    client: TestClient, brokerage: Brokerage, portfolio: dict[str, Company], role: Role
) -> None:
    user = brokerage.by_role(role)
    data = client.get("/api/realtime/dashboard-data", headers=bearer(client, user)).json()
    assert set(data) >= {
        "timestamp",
        "user_id",
        "summary",
        "companies",
        "recent_activity",
        "alerts",
        "recommendations",
    }
    assert data["user_id"] == user.id
    assert data["summary"] == {
        "total_companies": 3,
        "total_valuations": 5,
        # latest valuations: 0.6, 0.8, 0.7
        "avg_confidence": 0.7,
        "portfolio_value": 800_000 + 455_000 + 300_000,
    }
    names = [c["name"] for c in data["companies"]]
    assert names == ["Falling Beans", "Lagging Latte", "Slipping Cups"]
    assert "Rival Roastery" not in str(data)
    falling = data["companies"][0]
    assert falling["valuation"]["value"] == 800_000
    assert falling["valuation"]["date"] == "2025-06-30"
    assert falling["valuation_change"] == -0.2
    lagging = data["companies"][1]
    assert lagging["revenue"] == {"period": "2025-06-01", "value": 102_000, "growth": 0.0099}
    # Activity: an admin reads everyone's, the others only their own; reports of companies
    # are read by every viewer.
    subjects = {a["subject"] for a in data["recent_activity"]}
    assert "Due Diligence: Falling Beans" in subjects
    assert ("Lagging Latte" in subjects) == (role == Role.admin)
    assert ("Executive Summary: Falling Beans" in subjects) == (role in (Role.admin, Role.analyst))


def test_alert_rules_drop_over_ten_percent_and_metrics_under_the_worst_quarter(
    client: TestClient, brokerage: Brokerage, portfolio: dict[str, Company]
) -> None:
    data = client.get(
        "/api/realtime/dashboard-data", headers=bearer(client, brokerage.broker)
    ).json()
    kinds = {(a["company"], a["kind"], a.get("metric")) for a in data["alerts"]}
    assert kinds == {
        ("Falling Beans", "valuation_drop", None),  # -20%
        ("Lagging Latte", "under_benchmark", "revenue_growth"),  # 2% a year < p25 8%
        ("Lagging Latte", "under_benchmark", "ebitda_margin"),  # 5% < p25 10%
    }
    # Slipping Cups fell 9%: no alert. Churn 2% is not above p75 (6%): none either.
    growth = next(a for a in data["alerts"] if a.get("metric") == "revenue_growth")
    assert growth["basis"] == "year over year"
    assert growth["value"] == pytest.approx(0.02)
    drop = next(a for a in data["alerts"] if a["kind"] == "valuation_drop")
    assert drop["level"] == "danger"
    assert "20.0%" in drop["message"]
    assert {r["metric"] for r in data["recommendations"]} == {"revenue_growth", "ebitda_margin"}
    assert all(r["message"] for r in data["recommendations"])


def test_growth_without_a_year_of_history_is_the_monthly_growth_annualised(
    client: TestClient, db: Session, brokerage: Brokerage
) -> None:
    c = company(db, brokerage.tenant, "Young Brew")
    # 0.5% a month is about 6.2% a year: under p25 (8%). As a monthly figure it would not be
    # compared with a yearly benchmark at all.
    month(db, c, date(2025, 6, 1), 50_000, growth="0.005")
    benchmark(db, brokerage.tenant, "revenue_growth", "0.08", "0.15", "0.25")
    db.commit()
    data = client.get(
        "/api/realtime/notifications", headers=bearer(client, brokerage.analyst)
    ).json()
    (alert,) = data["alerts"]
    assert alert["basis"] == "latest month, annualised"
    assert alert["value"] == pytest.approx(1.005**12 - 1, abs=1e-4)


def test_notifications_limit_is_validated(
    client: TestClient, brokerage: Brokerage, portfolio: dict[str, Company]
) -> None:
    headers = bearer(client, brokerage.admin)
    one = client.get("/api/realtime/notifications?limit=1", headers=headers).json()
    assert len(one["alerts"]) == 1
    assert one["total_alerts"] == 3
    for bad in ("0", "101", "ten", "-1"):
        response = client.get(f"/api/realtime/notifications?limit={bad}", headers=headers)
        assert response.status_code == 422, bad


def test_the_cache_is_dropped_when_the_tenant_data_changes(
    client: TestClient, db: Session, brokerage: Brokerage, portfolio: dict[str, Company]
) -> None:
    headers = bearer(client, brokerage.admin)
    before = client.get("/api/realtime/dashboard-data", headers=headers).json()
    assert client.get("/api/realtime/dashboard-data", headers=headers).json() == before
    valuation(db, portfolio["slipping"], 200_000, date(2025, 9, 30))
    db.commit()
    after = client.get("/api/realtime/dashboard-data", headers=headers).json()
    assert after["summary"]["total_valuations"] == before["summary"]["total_valuations"] + 1
    assert any(a["company"] == "Slipping Cups" for a in after["alerts"])


def test_system_metrics_are_this_process_figures(
    client: TestClient, db: Session, brokerage: Brokerage
) -> None:
    headers = bearer(client, brokerage.analyst)
    first = client.get("/api/realtime/metrics/live", headers=headers).json()
    db.add(Job(name="reports.generate", args={}, tenant_id=brokerage.tenant.id))
    db.add(Job(name="reports.generate", args={}, run_after=utcnow() + timedelta(hours=1)))
    db.commit()
    for _ in range(7):
        assert client.get("/healthz").status_code == 200
    second = client.get("/api/realtime/metrics/live", headers=headers).json()
    # The 7 health checks and the first metrics request itself, at least.
    assert second["requests"]["requests_total"] >= first["requests"]["requests_total"] + 8
    assert second["requests"]["window_requests"] >= 8
    assert second["requests"]["p50_ms"] is not None
    assert second["requests"]["p95_ms"] >= second["requests"]["p50_ms"]
    assert second["jobs"]["pending"] == first["jobs"]["pending"] + 1
    assert second["jobs"]["scheduled"] == first["jobs"]["scheduled"] + 1
    assert second["connections"] == {"websocket": 0, "socketio": 0}
    assert second["uptime_seconds"] >= 0


def test_the_page_renders_the_first_paint_and_refuses_agents(
    client: TestClient, brokerage: Brokerage, portfolio: dict[str, Company]
) -> None:
    web_login(client, brokerage.broker)
    page = client.get("/realtime-dashboard")
    assert page.status_code == 200
    for text in (
        "Falling Beans",
        "Portfolio value",
        "Market Data",
        "System Metrics",
        "Notifications",
        "Test survey 2025",
        "realtime_dashboard.js",
    ):
        assert text in page.text, text
    assert "Rival Roastery" not in page.text
    client.cookies.clear()
    web_login(client, brokerage.agent)
    assert client.get("/realtime-dashboard").status_code == 403


def test_an_empty_portfolio_shows_empty_states(client: TestClient, brokerage: Brokerage) -> None:
    web_login(client, brokerage.analyst)
    page = client.get("/realtime-dashboard")
    assert page.status_code == 200
    assert "No companies yet" in page.text
    assert "No alerts" in page.text


def test_a_change_is_measured_within_one_method(
    client: TestClient, db: Session, brokerage: Brokerage
) -> None:
    """Three methods valued on one day differ by design; only a method's own previous value
    measures a fall (here: the DCF is 30% under the revenue multiple, and 2.8% under June's)."""
    c = Company(tenant_id=brokerage.tenant.id, name="Steady Roast", industry="Coffee shops")
    db.add(c)
    db.flush()
    valuation(db, c, 720_000, date(2026, 6, 30)).method = "dcf"
    valuation(db, c, 1_000_000, date(2026, 9, 30))
    valuation(db, c, 700_000, date(2026, 9, 30)).method = "dcf"
    db.commit()
    data = client.get(
        "/api/realtime/dashboard-data", headers=bearer(client, brokerage.admin)
    ).json()
    assert not [a for a in data["alerts"] if a["company"] == "Steady Roast"]
    [row] = [r for r in data["companies"] if r["name"] == "Steady Roast"]
    assert row["valuation"]["method"] == "dcf"
    assert row["valuation_change"] == pytest.approx(-20_000 / 720_000, abs=1e-4)  # vs June DCF
