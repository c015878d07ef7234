"""Demo data of seed 002: companies, valuations, metrics history and market benchmarks.

Riley Realty (the brokerage) values itself, from its own closings in its analytics warehouse
(filled by the analytics demo, which runs first), and three client companies with 24 months of
figures and two years of quarterly valuations by the three methods. Two of them give the live
dashboard something to say: Harborview's latest valuation (a DCF redone after the quarter) fell
16%, and Bayside's monthly churn has climbed past its industry's 75th percentile. Morning Ritual
Coffee values itself from its point-of-sale warehouse. Both tenants get the sample benchmarks
(data/benchmarks_sample.csv) through the CSV import.

Deterministic (its own seeded generator) and idempotent: a company that exists is left alone
(its warehouse metrics are refreshed, which changes nothing when the sales have not changed),
and benchmarks are imported only into a tenant that has none.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from doorstep.demo import DemoContext
from doorstep.platform.auth import Principal, Role, Tenant, User
from doorstep.platform.db import utcnow
from doorstep.reports import data, rules
from doorstep.reports.models import (
    Company,
    CompanyMetric,
    MarketBenchmark,
    UserActivity,
    Valuation,
)

SEED = 20261125  # this seeder's own stream
SAMPLE = Path(__file__).parent / "data" / "benchmarks_sample.csv"
MONTHS = 24
QUARTERS = 8
CENT = Decimal("0.01")
RATIO = Decimal("0.0001")

BROKERAGE = ("riley-realty", "admin@doorstep.demo", "analyst@doorstep.demo")
CAFE = ("morning-ritual", "owner@doorstep.demo", "analyst@morningritual.demo")
# Method: (factor on the base value, half-width of the range, confidence). The methods agree
# within a few percent, so only a real fall reads as one.
METHOD_SHAPE = {
    "revenue_multiple": (Decimal("1.00"), Decimal("0.15"), Decimal("0.72")),
    "ebitda_multiple": (Decimal("0.97"), Decimal("0.12"), Decimal("0.78")),
    "dcf": (Decimal("1.03"), Decimal("0.20"), Decimal("0.64")),
}


@dataclass(frozen=True)
class ClientPlan:
    name: str
    industry: str
    description: str
    revenue: float  # a month, at the start
    growth: float  # a year
    season: tuple[float, ...]  # 12 monthly factors, January first
    margin: float
    churn: tuple[float, float]  # at the start and in the last months
    customers: int
    orders_per_customer: float
    multiple: float  # the value as times trailing revenue
    fall: float = 0.0  # a revaluation after the last quarter, this much below it (DCF)


FLAT = (1.0,) * 12
CLIENTS = (
    ClientPlan(
        "Harborview Property Management",
        "Property management",
        "Manages 1,400 rental doors across the East Bay; fees are 8% of rent collected.",
        180_000,
        0.07,
        FLAT,
        0.17,
        (0.012, 0.013),
        420,
        1.0,
        1.6,
        fall=0.16,  # a large owner gave notice after the quarter: the dashboard's alert
    ),
    ClientPlan(
        "Bayside Home Services",
        "Home services",
        "HVAC, plumbing and electrical repairs; maintenance plans for homeowners.",
        95_000,
        0.09,
        (0.8, 0.8, 0.9, 1.0, 1.1, 1.25, 1.35, 1.3, 1.1, 0.95, 0.85, 0.9),
        0.13,
        (0.035, 0.072),  # churn has climbed past the industry's 75th percentile
        1100,
        0.55,
        1.1,
    ),
    ClientPlan(
        "Cedar Street Bakery",
        "Coffee shops / Restaurants",
        "Neighbourhood bakery and café with wholesale bread to four restaurants.",
        62_000,
        0.08,
        (0.9, 0.88, 0.95, 1.0, 1.02, 1.0, 0.97, 0.96, 1.0, 1.03, 1.08, 1.25),
        0.12,
        (0.37, 0.36),
        2400,
        2.9,
        1.1,
    ),
)


def _quarter_ends(today: date, count: int) -> list[date]:
    """The last days of the `count` complete calendar quarters before today, oldest first."""
    first, _ = rules.quarter_of(today)
    ends = []
    end = first - timedelta(days=1)
    for _ in range(count):
        ends.append(end)
        end = rules.quarter_of(end)[0] - timedelta(days=1)
    return ends[::-1]


def _person(ctx: DemoContext, email: str) -> User | None:
    return ctx.users.get(email) or ctx.session.scalar(select(User).where(User.email == email))


def _tenant(ctx: DemoContext, slug: str) -> Tenant | None:
    return ctx.tenants.get(slug) or ctx.session.scalar(select(Tenant).where(Tenant.slug == slug))


def _company(session: Session, tenant_id: int, name: str) -> Company | None:
    return session.scalar(
        select(Company).where(Company.tenant_id == tenant_id, Company.name == name)
    )


def _benchmarks(session: Session, principal: Principal) -> None:
    has = session.scalar(
        select(func.count()).where(MarketBenchmark.tenant_id == principal.tenant_id)
    )
    if not has:
        data.import_benchmarks_csv(session, principal, SAMPLE.read_text(encoding="utf-8"))


def _client_metrics(
    session: Session, rng: random.Random, plan: ClientPlan, company: Company, today: date
) -> None:
    """24 months of figures as a client company reports them (typed in: source "manual")."""
    last = rules.month_start(today, -1)
    monthly = (1 + plan.growth) ** (1 / 12)
    previous: Decimal | None = None
    customers = plan.customers
    for i in range(MONTHS):
        period = rules.month_start(last, -(MONTHS - 1 - i))
        level = plan.revenue * monthly**i * plan.season[period.month - 1]
        revenue = Decimal(level * rng.uniform(0.97, 1.03)).quantize(CENT)
        share = i / (MONTHS - 1)
        # Churn moves from its start to its end over the last third only.
        late = max(0.0, (share - 2 / 3) * 3)
        churn = plan.churn[0] + (plan.churn[1] - plan.churn[0]) * late
        churn *= rng.uniform(0.93, 1.07)
        customers = max(
            1, round(customers * (1 + plan.growth / 12 - 0.002) * rng.uniform(0.99, 1.01))
        )
        row = CompanyMetric(
            tenant_id=company.tenant_id,
            company_id=company.id,
            period=period,
            revenue=revenue,
            growth=((revenue - previous) / previous).quantize(RATIO) if previous else None,
            margin=Decimal(plan.margin + rng.uniform(-0.015, 0.015)).quantize(RATIO),
            churn=Decimal(churn).quantize(RATIO),
            customers=customers,
            orders=round(customers * plan.orders_per_customer * plan.season[period.month - 1]),
            source="manual",
        )
        session.add(row)
        previous = revenue


def _trailing_revenue(metrics: list[CompanyMetric], end: date) -> Decimal:
    """Revenue of the 12 months up to `end`, scaled up when fewer months are known."""
    window = [m for m in metrics if rules.month_start(end, -11) <= m.period <= end]
    if not window:
        return Decimal(0)
    total = sum((m.revenue for m in window), Decimal(0))
    return total * 12 / len(window)


def _valuations(
    session: Session,
    rng: random.Random,
    company: Company,
    *,
    multiple: float,
    fallback: Decimal,
    today: date,
) -> None:
    """Every method at each of the last eight quarter ends, from trailing revenue."""
    metrics = list(
        session.scalars(
            select(CompanyMetric)
            .where(CompanyMetric.company_id == company.id)
            .order_by(CompanyMetric.period)
        )
    )
    for end in _quarter_ends(today, QUARTERS):
        trailing = _trailing_revenue(metrics, end) or fallback
        base = trailing * Decimal(str(multiple))
        for method, (factor, spread, confidence) in METHOD_SHAPE.items():
            value = (base * factor * Decimal(str(rng.uniform(0.985, 1.015)))).quantize(CENT)
            session.add(
                Valuation(
                    tenant_id=company.tenant_id,
                    company_id=company.id,
                    method=method,
                    value=value,
                    low=(value * (1 - spread)).quantize(CENT),
                    high=(value * (1 + spread)).quantize(CENT),
                    confidence=(confidence + Decimal(str(rng.uniform(-0.04, 0.04)))).quantize(
                        Decimal("0.001")
                    ),
                    valued_on=end,
                    notes=f"{rules.METHODS[method]}, quarter ending {end:%d %b %Y}",
                )
            )
    session.flush()


def _revaluation(session: Session, company: Company, fall: float, today: date) -> None:
    """A DCF redone three weeks after the last quarter's review, `fall` below it: the newest
    valuation fell, by its own method and against the one before it."""
    last = session.scalars(
        select(Valuation)
        .where(Valuation.company_id == company.id, Valuation.method == "dcf")
        .order_by(Valuation.valued_on.desc())
        .limit(1)
    ).one()
    value = (last.value * Decimal(str(1 - fall))).quantize(CENT)
    spread = METHOD_SHAPE["dcf"][1]
    session.add(
        Valuation(
            tenant_id=company.tenant_id,
            company_id=company.id,
            method="dcf",
            value=value,
            low=(value * (1 - spread)).quantize(CENT),
            high=(value * (1 + spread)).quantize(CENT),
            confidence=Decimal("0.580"),
            valued_on=min(today, last.valued_on + timedelta(days=21)),
            notes="Revalued after the largest owner (about a fifth of the doors) gave notice",
        )
    )
    session.flush()


def _activity(session: Session, analyst: User, company: Company, today: date) -> None:
    """What the analyst did at the last quarter's review, back-dated to its days."""
    latest = session.scalars(
        select(Valuation)
        .where(Valuation.company_id == company.id)
        .order_by(Valuation.valued_on.desc(), Valuation.id.desc())
        .limit(len(rules.METHODS))
    ).all()
    now = utcnow()
    for n, v in enumerate(reversed(latest)):
        session.add(
            UserActivity(
                tenant_id=company.tenant_id,
                user_id=analyst.id,
                action="valuation.added",
                subject=f"{company.name}: {rules.METHODS[v.method]} {v.value:,.0f} on "
                f"{v.valued_on.isoformat()}",
                at=now - timedelta(days=(today - v.valued_on).days - 3, minutes=40 - 7 * n),
            )
        )


def _linked(
    ctx: DemoContext,
    rng: random.Random,
    principal: Principal,
    *,
    name: str,
    industry: str,
    description: str,
    multiple: float,
    fallback: Decimal,
    today: date,
) -> None:
    """A company computed from its own tenant's warehouse, with valuations from that revenue."""
    session = ctx.session
    company = _company(session, principal.tenant_id, name)
    if company is not None:
        if company.warehouse_tenant_id is not None:
            data.refresh_metrics(session, company)
        return
    company = data.create_company(
        session,
        principal,
        name=name,
        industry=industry,
        description=description,
        warehouse_tenant_id=principal.tenant_id,  # refreshed on creation
    )
    _valuations(session, rng, company, multiple=multiple, fallback=fallback, today=today)


def seed_demo(ctx: DemoContext) -> None:
    session = ctx.session
    rng = random.Random(SEED)
    today = utcnow().date()

    slug, admin_email, analyst_email = BROKERAGE
    tenant, admin, analyst = (
        _tenant(ctx, slug),
        _person(ctx, admin_email),
        _person(ctx, analyst_email),
    )
    if tenant is not None and admin is not None and analyst is not None:
        principal = Principal.of(analyst if analyst.role == Role.analyst else admin)
        _benchmarks(session, principal)
        _linked(
            ctx,
            rng,
            principal,
            name="Riley Realty",
            industry="Real estate brokerage",
            description="Josh Riley's brokerage: commissions from its closed deals, by month.",
            multiple=0.9,
            fallback=Decimal(2_400_000),
            today=today,
        )
        for plan in CLIENTS:
            if _company(session, tenant.id, plan.name) is not None:
                continue
            company = data.create_company(
                session,
                principal,
                name=plan.name,
                industry=plan.industry,
                description=plan.description,
            )
            _client_metrics(session, rng, plan, company, today)
            session.flush()
            _valuations(
                session,
                rng,
                company,
                multiple=plan.multiple,
                fallback=Decimal(plan.revenue * 12),
                today=today,
            )
            if plan.fall:
                _revaluation(session, company, plan.fall, today)
            _activity(session, analyst, company, today)
        ctx.progress("Riley Realty valuations")

    slug, admin_email, analyst_email = CAFE
    tenant, owner, cafe_analyst = (
        _tenant(ctx, slug),
        _person(ctx, admin_email),
        _person(ctx, analyst_email),
    )
    if tenant is not None and owner is not None:
        principal = Principal.of(cafe_analyst or owner)
        _benchmarks(session, principal)
        _linked(
            ctx,
            rng,
            principal,
            name="Morning Ritual Coffee",
            industry="Coffee shops / Restaurants",
            description="Three Los Angeles cafés: Downtown LA, Santa Monica and Pasadena.",
            multiple=1.2,
            fallback=Decimal(3_600_000),
            today=today,
        )
        ctx.progress("Morning Ritual Coffee valuations")
    session.flush()
