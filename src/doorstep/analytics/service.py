"""Analytics use cases: the dashboard's KPIs and panels, the export, the locations list.

Every figure is read from the gold rollups (never the line items), scoped to the caller's
tenant. Each panel is computed on its own savepoint: one that fails reports its error and the
others still render (the seed's graceful degradation).

The customer figures (the customers KPI, segments, CLV) come from one computation per
dashboard. For a period that runs to the end of the data (every preset) it reads only the
`customer_lifetime` rows of the customers who bought in it; for one that ends earlier it sums
the customers' months and days in the period."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Subquery,
    case,
    func,
    literal,
    select,
    true,
    union_all,
)
from sqlalchemy.orm import Session

from doorstep.analytics import imports, rules
from doorstep.analytics.models import (
    ALL_LOCATIONS,
    CohortActivity,
    CustomerChurnScore,
    CustomerDaily,
    CustomerLifetime,
    CustomerLtvScore,
    CustomerMonthly,
    DailySalesSummary,
    DemandForecast,
    DimDate,
    DimLocation,
    DimProduct,
    HourlySales,
    ModelRun,
    ProductPerformance,
)
from doorstep.analytics.warehouse import (
    LATEST_RANKS,
    CustomerRecord,
    Loader,
    LoadResult,
    LocationRecord,
)
from doorstep.platform.auth import Principal, Tenant
from doorstep.platform.db import utcnow
from doorstep.platform.errors import Forbidden, NotFound, RuleViolation

log = logging.getLogger(__name__)
ZERO = Decimal(0)
# Figures computed once per dashboard and shared by its panels (see `dashboard`).
_SHARED = "analytics.dashboard.shared"


@dataclass(frozen=True)
class Filters:
    tenant_id: int
    period: rules.Period
    location_sk: int | None = None
    product_sk: int | None = None


# --- access and filters --------------------------------------------------------------------------


def require_viewer(principal: Principal) -> None:
    if principal.role not in rules.VIEWER_ROLES:
        raise Forbidden("Analytics are for the business's admins, brokers and analysts")


def require_manager(principal: Principal) -> None:
    if principal.role not in rules.MANAGER_ROLES:
        raise Forbidden("Only an admin may connect sources or load sales data")


def today_for(session: Session, tenant_id: int) -> date:
    tenant = session.get(Tenant, tenant_id)
    return utcnow().astimezone(tenant.zone).date() if tenant else utcnow().date()


def data_bounds(session: Session, tenant_id: int) -> tuple[date | None, date | None]:
    """The first and last day with sales (the range "all", the data's freshness, "now" for the
    models and the churn alert)."""
    s = DailySalesSummary
    first, last = session.execute(
        select(func.min(s.sale_date), func.max(s.sale_date)).where(s.tenant_id == tenant_id)
    ).one()
    return first, last


def filters(
    session: Session,
    principal: Principal,
    *,
    preset: str | None = None,
    start: date | None = None,
    end: date | None = None,
    location_id: int | None = None,
    product_id: int | None = None,
) -> Filters:
    """Validate the query's filters against the caller's tenant (422 / 404 with the reason)."""
    require_viewer(principal)
    tenant_id = principal.tenant_id
    try:
        chosen = rules.period(
            preset=preset,
            start=start,
            end=end,
            today=today_for(session, tenant_id),
            first=data_bounds(session, tenant_id)[0],
        )
    except rules.FilterError as exc:
        raise RuleViolation(str(exc)) from exc
    for model, key, value in (
        (DimLocation, DimLocation.location_sk, location_id),
        (DimProduct, DimProduct.product_sk, product_id),
    ):
        if value is not None and not session.scalar(
            select(key).where(key == value, model.tenant_id == tenant_id)
        ):
            raise NotFound(f"{model.__name__.removeprefix('Dim').lower()} {value} not found")
    return Filters(tenant_id, chosen, location_id, product_id)


def locations(session: Session, tenant_id: int) -> list[dict[str, Any]]:
    rows = session.execute(
        select(DimLocation.location_sk, DimLocation.name)
        .where(DimLocation.tenant_id == tenant_id)
        .order_by(DimLocation.name)
    )
    return [{"id": sk, "name": name} for sk, name in rows]


# --- building blocks -----------------------------------------------------------------------------


def _at(column: Any, f: Filters) -> ColumnElement[bool]:
    return column == f.location_sk if f.location_sk is not None else true()


def _days(model: Any, f: Filters, period: rules.Period | None = None) -> ColumnElement[bool]:
    p = period or f.period
    return (
        (model.tenant_id == f.tenant_id)
        & model.sale_date.between(p.start, p.end)
        & _at(model.location_sk, f)
    )


def _per_customer(f: Filters, start: date, end: date) -> Subquery:
    """(customer_sk, orders, revenue) over [start, end]: whole months from the monthly rollup,
    the edge days from the daily one."""
    full, edges = rules.split_by_months(start, end)
    m, d = CustomerMonthly, CustomerDaily
    parts = []
    if full:
        parts.append(
            select(m.customer_sk, m.orders, m.revenue).where(
                m.tenant_id == f.tenant_id, m.month.in_(full), _at(m.location_sk, f)
            )
        )
    for lo, hi in edges:
        parts.append(
            select(d.customer_sk, d.orders, d.revenue).where(
                d.tenant_id == f.tenant_id, d.sale_date.between(lo, hi), _at(d.location_sk, f)
            )
        )
    rows = union_all(*parts).subquery()
    return (
        select(
            rows.c.customer_sk,
            func.sum(rows.c.orders).label("orders"),
            func.sum(rows.c.revenue).label("revenue"),
        )
        .group_by(rows.c.customer_sk)
        .subquery()
    )


def _distinct_customers(f: Filters, start: date, end: date) -> Any:
    """How many customers bought in [start, end] (months and edge days, as `_per_customer`)."""
    full, edges = rules.split_by_months(start, end)
    m, d = CustomerMonthly, CustomerDaily
    parts = []
    if full:
        parts.append(
            select(m.customer_sk).where(
                m.tenant_id == f.tenant_id, m.month.in_(full), _at(m.location_sk, f)
            )
        )
    for lo, hi in edges:
        parts.append(
            select(d.customer_sk).where(
                d.tenant_id == f.tenant_id, d.sale_date.between(lo, hi), _at(d.location_sk, f)
            )
        )
    rows = union_all(*parts).subquery()
    return select(func.count(rows.c.customer_sk.distinct()))


@dataclass(frozen=True)
class CustomerFigures:
    customers: int  # who bought in the period
    previous: int  # who bought in the period before it
    segments: dict[str, int]
    clv: dict[str, int]


def _segment(orders: Any) -> Any:
    return case(
        *[(orders >= low, literal(name)) for name, low, _high in rules.SEGMENTS],
        else_=literal(""),
    )


def _clv_bucket(value: Any) -> Any:
    return case(
        *[
            (value < high, literal(name))
            for name, _low, high in rules.CLV_BUCKETS
            if high is not None
        ],
        else_=literal(rules.CLV_BUCKETS[-1][0]),
    )


# A period running to the end of the data reads its segments and CLV buckets off counts of the
# customers' lifetime rows: how many placed at least 10 (5, 2, 1) orders in it, that is whose
# 10th (5th, 2nd, 1st) latest order falls in it, and how many spent less than $50 ($100, ...).
# That holds for segments by descending thresholds and buckets by ascending limits, as rules.py
# lists them, with a latest-order day kept for each threshold; otherwise the general way is used.
_LATEST = {1: "last_date", **LATEST_RANKS}
_LOWS = [low for _name, low, _high in rules.SEGMENTS]
_LIMITS = [high for _name, _low, high in rules.CLV_BUCKETS if high is not None]
_COUNTABLE = (
    all(low in _LATEST for low in _LOWS)
    and sorted(set(_LOWS), reverse=True) == _LOWS
    and sorted(set(_LIMITS)) == _LIMITS
    and [high for *_, high in rules.CLV_BUCKETS[:-1]] == _LIMITS  # only the last is open
)


def customer_figures(session: Session, f: Filters) -> CustomerFigures:
    """Who bought in the period and before it, their segments (orders in the period) and CLV
    buckets (lifetime spend up to the period's end). Once per dashboard: its panels share it."""
    shared = session.info.get(_SHARED)
    if shared is not None and ("customers", f) in shared:
        return shared[("customers", f)]
    p, before = f.period, f.period.previous()
    first, last = data_bounds(session, f.tenant_id)
    customers, previous = 0, 0
    segments: dict[str, int] = {}
    clv: dict[str, int] = {}
    if first is not None and last is not None:
        if before.end >= first and before.start <= last:
            query = _distinct_customers(f, max(before.start, first), min(before.end, last))
            previous = session.scalar(query) or 0
        if p.end >= last and p.start <= last and _COUNTABLE:
            customers, segments, clv = _lifetime_counts(session, f)
        elif p.end >= first and p.start <= last:
            for segment, bucket, n in session.execute(_customer_rows(f, first, last)):
                customers += n
                segments[segment] = segments.get(segment, 0) + n
                clv[bucket] = clv.get(bucket, 0) + n
    figures = CustomerFigures(customers, previous, segments, clv)
    if shared is not None:
        shared[("customers", f)] = figures
    return figures


def _lifetime(f: Filters) -> ColumnElement[bool]:
    lt = CustomerLifetime
    location = f.location_sk if f.location_sk is not None else ALL_LOCATIONS
    return (lt.tenant_id == f.tenant_id) & (lt.location_sk == location)


def _lifetime_counts(session: Session, f: Filters) -> tuple[int, dict[str, int], dict[str, int]]:
    """(customers, segments, CLV buckets) for a period running to the end of the data, in one
    row read from the covering index of the customers' lifetime rows."""
    lt, start = CustomerLifetime, f.period.start
    reached = [func.count(case((getattr(lt, _LATEST[low]) >= start, 1))) for low in _LOWS]
    below = [func.count(case((lt.revenue < limit, 1))) for limit in _LIMITS]
    total, *counts = session.execute(
        select(func.count(), *reached, *below).where(_lifetime(f), lt.last_date >= start)
    ).one()
    at_least, under = counts[: len(_LOWS)], [*counts[len(_LOWS) :], total]
    segments = {
        name: n - more
        for (name, _, _), n, more in zip(rules.SEGMENTS, at_least, [0, *at_least], strict=False)
    }
    clv = {
        name: n - less
        for (name, _, _), n, less in zip(rules.CLV_BUCKETS, under, [0, *under], strict=False)
    }
    return total, segments, clv


def _customer_rows(f: Filters, first: date, last: date) -> Any:
    """(segment, CLV bucket, customers) for the period, which overlaps [first, last], from the
    customers' months and days in it."""
    p, lt = f.period, CustomerLifetime
    active = _per_customer(f, max(p.start, first), min(p.end, last))
    spend: Any
    if p.end >= last:
        spend = lt.revenue
        joined = active.join(lt, _lifetime(f) & (lt.customer_sk == active.c.customer_sk))
    elif (last - p.end).days <= (p.end - first).days:
        # Lifetime spend less what came after the period: the shorter stretch to read.
        after = _per_customer(f, p.end + timedelta(days=1), last)
        spend = lt.revenue - func.coalesce(after.c.revenue, 0)
        joined = active.join(lt, _lifetime(f) & (lt.customer_sk == active.c.customer_sk))
        joined = joined.outerjoin(after, after.c.customer_sk == active.c.customer_sk)
    else:
        upto = _per_customer(f, first, p.end)
        spend = upto.c.revenue
        joined = active.join(upto, upto.c.customer_sk == active.c.customer_sk)
    # Whole cents: SQLite sums money as floats, and $500.00 must not come out as 499.999...
    segment, bucket = _segment(active.c.orders), _clv_bucket(func.round(spend, 2))
    return select(segment, bucket, func.count()).select_from(joined).group_by(segment, bucket)


def _totals(session: Session, f: Filters, period: rules.Period) -> dict[str, Any]:
    s = DailySalesSummary
    orders, revenue = session.execute(
        select(
            func.coalesce(func.sum(s.orders), 0), func.coalesce(func.sum(s.revenue), ZERO)
        ).where(_days(s, f, period))
    ).one()
    revenue = Decimal(revenue).quantize(Decimal("0.01"))
    aov = (revenue / orders).quantize(Decimal("0.01")) if orders else ZERO
    return {"orders": int(orders), "revenue": revenue, "aov": aov}


# --- panels --------------------------------------------------------------------------------------


def kpis(session: Session, f: Filters) -> dict[str, Any]:
    now, before = _totals(session, f, f.period), _totals(session, f, f.period.previous())
    people = customer_figures(session, f)
    now["customers"], before["customers"] = people.customers, people.previous
    cards = {}
    for key in ("orders", "revenue", "aov", "customers"):
        delta = rules.change(now[key], before[key])
        cards[key] = {
            "value": now[key],
            "previous": before[key],
            "change_pct": delta,
            "direction": None if delta is None else ("up" if delta >= 0 else "down"),
        }
    return cards


def revenue_trend(session: Session, f: Filters) -> list[dict[str, Any]]:
    s = DailySalesSummary
    rows = session.execute(
        select(s.sale_date, func.sum(s.revenue), func.sum(s.orders))
        .where(_days(s, f))
        .group_by(s.sale_date)
        .order_by(s.sale_date)
    )
    return [{"date": day, "revenue": Decimal(rev), "orders": int(n)} for day, rev, n in rows]


def cohorts(session: Session, f: Filters) -> dict[str, Any]:
    """Rows: acquisition month; columns: purchase month; values: share of the cohort buying."""
    a = CohortActivity
    first, last = f.period.start.replace(day=1), f.period.end.replace(day=1)
    location = f.location_sk if f.location_sk is not None else ALL_LOCATIONS
    rows = session.execute(
        select(a.cohort_month, a.month, a.customers).where(
            a.tenant_id == f.tenant_id,
            a.location_sk == location,
            a.month.between(first, last),
            a.cohort_month.between(first, last),
        )
    ).all()
    months = sorted({month for _, month, _ in rows})
    if len(months) < 2:
        return {
            "months": [],
            "rows": [],
            "message": "Need multiple months of data: cohort analysis compares at least two.",
        }
    active: dict[tuple[date, date], int] = {(cohort, month): n for cohort, month, n in rows}
    table = []
    for cohort in sorted({cohort for cohort, _ in active}):
        size = active.get((cohort, cohort), 0)
        if not size:
            continue
        values = [
            None if month < cohort else round(100 * active.get((cohort, month), 0) / size, 1)
            for month in months
        ]
        table.append({"cohort": cohort, "customers": size, "values": values})
    return {"months": months, "rows": table, "message": None}


def clv_distribution(session: Session, f: Filters) -> list[dict[str, Any]]:
    """Customers who bought in the period, by their lifetime spend up to its end."""
    counts = customer_figures(session, f).clv
    return [{"bucket": name, "customers": counts.get(name, 0)} for name, _, _ in rules.CLV_BUCKETS]


def segments(session: Session, f: Filters) -> list[dict[str, Any]]:
    counts = customer_figures(session, f).segments
    return [{"segment": name, "customers": counts.get(name, 0)} for name, _, _ in rules.SEGMENTS]


def top_products(session: Session, f: Filters, limit: int = 10) -> list[dict[str, Any]]:
    p, d = ProductPerformance, DimProduct
    revenue = func.sum(p.revenue)
    rows = session.execute(
        select(d.product_sk, d.name, revenue, func.sum(p.quantity))
        .join(d, d.product_sk == p.product_sk)
        .where(_days(p, f))
        .group_by(d.product_sk, d.name)
        .order_by(revenue.desc(), d.name)
        .limit(limit)
    )
    return [
        {"product_id": sk, "product": name, "revenue": Decimal(rev), "quantity": Decimal(qty)}
        for sk, name, rev, qty in rows
    ]


def hourly(session: Session, f: Filters) -> list[dict[str, Any]]:
    h = HourlySales
    found = {
        hour: (Decimal(rev), int(n))
        for hour, rev, n in session.execute(
            select(h.hour, func.sum(h.revenue), func.sum(h.orders))
            .where(_days(h, f))
            .group_by(h.hour)
        )
    }
    return [
        {
            "hour": hour,
            "revenue": found.get(hour, (ZERO, 0))[0],
            "orders": found.get(hour, (0, 0))[1],
        }
        for hour in range(24)
    ]


def weekly(session: Session, f: Filters) -> list[dict[str, Any]]:
    s = DailySalesSummary
    found = {
        weekday: (Decimal(rev), int(n))
        for weekday, rev, n in session.execute(
            select(DimDate.weekday, func.sum(s.revenue), func.sum(s.orders))
            .join(DimDate, DimDate.day == s.sale_date)
            .where(_days(s, f))
            .group_by(DimDate.weekday)
        )
    }
    return [
        {
            "weekday": i,
            "day": name,
            "revenue": found.get(i, (ZERO, 0))[0],
            "orders": found.get(i, (ZERO, 0))[1],
        }
        for i, name in enumerate(rules.WEEKDAYS)
    ]


def by_location(session: Session, f: Filters) -> list[dict[str, Any]]:
    s = DailySalesSummary
    rows = session.execute(
        select(DimLocation.location_sk, DimLocation.name, func.sum(s.revenue), func.sum(s.orders))
        .join(DimLocation, DimLocation.location_sk == s.location_sk)
        .where(_days(s, f))
        .group_by(DimLocation.location_sk, DimLocation.name)
        .order_by(DimLocation.name)
    )
    return [
        {"location_id": sk, "location": name, "revenue": Decimal(rev), "orders": int(n)}
        for sk, name, rev, n in rows
    ]


def product_detail(session: Session, f: Filters) -> dict[str, Any] | None:
    """The drill-down into one product: its days and its locations in the period."""
    if f.product_sk is None:
        return None
    p = ProductPerformance
    mine = _days(p, f) & (p.product_sk == f.product_sk)
    name = session.scalar(select(DimProduct.name).where(DimProduct.product_sk == f.product_sk))
    days = session.execute(
        select(p.sale_date, func.sum(p.revenue), func.sum(p.quantity))
        .where(mine)
        .group_by(p.sale_date)
        .order_by(p.sale_date)
    )
    places = session.execute(
        select(DimLocation.name, func.sum(p.revenue), func.sum(p.quantity))
        .join(DimLocation, DimLocation.location_sk == p.location_sk)
        .where(mine)
        .group_by(DimLocation.name)
        .order_by(DimLocation.name)
    )
    return {
        "product_id": f.product_sk,
        "product": name,
        "days": [
            {"date": day, "revenue": Decimal(r), "quantity": Decimal(q)} for day, r, q in days
        ],
        "locations": [
            {"location": loc, "revenue": Decimal(r), "quantity": Decimal(q)} for loc, r, q in places
        ],
    }


def insights(session: Session, tenant_id: int) -> dict[str, Any]:
    """The AI insights: churn alert, top demand forecast, average predicted LTV, with freshness.
    They describe the customer base and catalogue as a whole (not the date or location filter)."""
    runs = {
        run.model: run
        for run in session.scalars(
            select(ModelRun)
            .where(ModelRun.tenant_id == tenant_id)
            .order_by(ModelRun.created_at, ModelRun.id)
        )
    }
    out: dict[str, Any] = {"available": bool(runs), "churn": None, "demand": None, "ltv": None}
    if (run := runs.get("churn")) is not None:
        # Of the customers still active (a purchase in the last ACTIVE_DAYS of the data): those
        # long gone score high too, but there is no one left to win back among them.
        c, life = CustomerChurnScore, CustomerLifetime
        last = data_bounds(session, tenant_id)[1]
        since = last - timedelta(days=rules.ACTIVE_DAYS - 1) if last else date.max
        active = (
            select(func.count(), func.count().filter(c.probability > rules.CHURN_ALERT))
            .select_from(c)
            .join(
                life,
                (life.tenant_id == c.tenant_id)
                & (life.customer_sk == c.customer_sk)
                & (life.location_sk == ALL_LOCATIONS),
            )
            .where(
                c.tenant_id == tenant_id,
                c.model_version == run.model_version,
                life.last_date >= since,
            )
        )
        scored, at_risk = session.execute(active).one()
        out["churn"] = {
            "at_risk": at_risk or 0,
            "scored": scored or 0,
            "threshold": rules.CHURN_ALERT,
            "active_days": rules.ACTIVE_DAYS,
            **_freshness(run),
        }
    if (run := runs.get("demand")) is not None:
        d = DemandForecast
        total = func.sum(d.predicted_quantity)
        top = session.execute(
            select(DimProduct.name, total, func.sum(d.lower_bound), func.sum(d.upper_bound))
            .join(DimProduct, DimProduct.product_sk == d.product_sk)
            .where(d.tenant_id == tenant_id, d.model_version == run.model_version)
            .group_by(DimProduct.name)
            .order_by(total.desc())
            .limit(1)
        ).first()
        if top is not None:
            out["demand"] = {
                "product": top[0],
                "units": round(float(top[1])),
                "lower": round(float(top[2])),
                "upper": round(float(top[3])),
                **_freshness(run),
            }
    if (run := runs.get("ltv")) is not None:
        v = CustomerLtvScore
        average = session.scalar(
            select(func.avg(v.predicted_ltv)).where(
                v.tenant_id == tenant_id, v.model_version == run.model_version
            )
        )
        if average is not None:
            out["ltv"] = {
                "average": Decimal(average).quantize(Decimal("0.01")),
                **_freshness(run),
            }
    return out


def _freshness(run: ModelRun) -> dict[str, Any]:
    return {
        "model_version": run.model_version,
        "created_at": run.created_at,
        "metrics": run.metrics,
    }


PANELS: dict[str, Callable[[Session, Filters], Any]] = {
    "kpis": kpis,
    "revenue_trend": revenue_trend,
    "cohorts": cohorts,
    "clv_distribution": clv_distribution,
    "top_products": top_products,
    "segments": segments,
    "hourly": hourly,
    "weekly": weekly,
    "by_location": by_location,
}


def dashboard(session: Session, f: Filters, *, only: set[str] | None = None) -> dict[str, Any]:
    """Every KPI and panel for the filters; a failing panel becomes `{"error": ...}`."""
    out: dict[str, Any] = {
        "filters": {
            "start": f.period.start,
            "end": f.period.end,
            "label": f.period.label,
            "location_id": f.location_sk,
            "product_id": f.product_sk,
        },
        "data_through": data_bounds(session, f.tenant_id)[1],
        "errors": {},
    }
    jobs: dict[str, Callable[[Session, Filters], Any]] = {
        **PANELS,
        "insights": lambda s, flt: insights(s, flt.tenant_id),
        "product": product_detail,
    }
    session.info[_SHARED] = {}  # the customer figures, computed by the first panel needing them
    try:
        for name, job in jobs.items():
            if only is not None and name not in only:
                continue
            try:
                with session.begin_nested():
                    out[name] = job(session, f)
            except Exception as exc:
                log.exception("analytics panel %s failed", name)
                out[name] = None
                out["errors"][name] = f"This panel could not be computed ({type(exc).__name__})."
    finally:
        session.info.pop(_SHARED, None)
    return out


# --- export --------------------------------------------------------------------------------------

EXPORT_HEADER = ("date", "location", "product", "quantity", "revenue", "order_count")


def export_rows(session: Session, f: Filters) -> Iterator[tuple[Any, ...]]:
    """The filtered data, one row per day, location and product, read in batches."""
    p = ProductPerformance
    stmt = (
        select(p.sale_date, DimLocation.name, DimProduct.name, p.quantity, p.revenue, p.orders)
        .join(DimLocation, DimLocation.location_sk == p.location_sk)
        .join(DimProduct, DimProduct.product_sk == p.product_sk)
        .where(_days(p, f))
        .order_by(p.sale_date, DimLocation.name, DimProduct.name)
    )
    if f.product_sk is not None:
        stmt = stmt.where(p.product_sk == f.product_sk)
    for row in session.execute(stmt, execution_options={"yield_per": 5000}):
        yield tuple(row)


def as_of(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# --- loading data --------------------------------------------------------------------------------


@dataclass
class ImportReport:
    dry_run: bool
    rows: int
    orders: int
    problems: list[imports.Problem]
    loaded: LoadResult | None


def import_orders_csv(
    session: Session, principal: Principal, text: str, *, dry_run: bool
) -> ImportReport:
    """Check (dry run) or load an orders CSV (format in analytics/imports.py)."""
    require_manager(principal)
    tenant = session.get(Tenant, principal.tenant_id)
    assert tenant is not None
    try:
        parsed = imports.parse_orders_csv(text, tenant.zone)
    except imports.CsvFormatError as exc:
        raise RuleViolation(str(exc)) from exc
    loaded = None
    if not dry_run and parsed.orders:
        loader = Loader(session, tenant.id, default_timezone=tenant.timezone)
        loader.upsert_locations(
            LocationRecord(imports.SOURCE, name, name, tenant.timezone)
            for name in sorted(parsed.locations)
        )
        loader.upsert_customers(
            CustomerRecord(imports.SOURCE, key, name)
            for key, name in parsed.customers.items()
            if name
        )
        loaded = loader.load_orders(parsed.orders)
    return ImportReport(dry_run, parsed.rows, len(parsed.orders), parsed.problems, loaded)
