"""Use cases of seed 002's valuation data: companies, their valuations and monthly metrics (typed
in, or computed from the tenant's own sales warehouse), market benchmarks (CSV import) and the
activity log. Reads go through `readable()`; writes need `rules.EDITOR_ROLES`; services flush,
the caller commits.

The benchmarks CSV (a header row names the columns, in any order):

| column     | meaning                                                                      |
|------------|------------------------------------------------------------------------------|
| `industry` | the industry's name as companies use it (e.g. `Coffee shops / Restaurants`)  |
| `metric`   | one of `rules.BENCHMARK_METRICS`                                             |
| `p25`      | 25th percentile; growth, margin and churn as fractions (0.12 = 12%),         |
| `p50`      | median;           multiples as times (2.5 = 2.5x)                            |
| `p75`      | 75th percentile; p25 <= p50 <= p75                                           |
| `as_of`    | the date the figures describe, ISO (YYYY-MM-DD)                              |
| `source`   | where the figures come from (shown next to them)                             |

Every problem is reported with its line number and nothing is imported unless the whole file is
good. A row with the same (industry, metric, as_of) as an earlier import replaces it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from doorstep.analytics import rules as analytics_rules
from doorstep.analytics.models import CustomerMonthly, DailySalesSummary
from doorstep.platform import events
from doorstep.platform.access import get_readable, readable
from doorstep.platform.auth import Principal, Tenant
from doorstep.platform.db import utcnow
from doorstep.platform.errors import Conflict, Forbidden, RuleViolation
from doorstep.reports import rules
from doorstep.reports.models import (
    Company,
    CompanyMetric,
    MarketBenchmark,
    UserActivity,
    Valuation,
)

BENCHMARK_COLUMNS = ("industry", "metric", "p25", "p50", "p75", "as_of", "source")
MAX_BENCHMARK_ROWS = 10_000
# Plausible ranges, so that "12" typed for 12% is caught instead of stored as 1,200%.
BENCHMARK_RANGES: dict[str, tuple[Decimal, Decimal]] = {
    "revenue_growth": (Decimal(-1), Decimal(10)),
    "ebitda_margin": (Decimal(-1), Decimal(1)),
    "monthly_churn": (Decimal(0), Decimal(1)),
    "revenue_multiple": (Decimal(0), Decimal(1000)),
    "ebitda_multiple": (Decimal(-1000), Decimal(1000)),
}
# CompanyMetric.growth / churn are Numeric(8, 4): a month after a near-empty one can grow more.
RATIO_CAP = Decimal("9999.9999")
RATIO = Decimal("0.0001")
WAREHOUSE = "warehouse"


# --- who may do what ----------------------------------------------------------------------------


def require_viewer(principal: Principal) -> None:
    if principal.role not in rules.VIEWER_ROLES:
        raise Forbidden("Valuation data is for the business's admins, brokers and analysts")


def require_editor(principal: Principal) -> None:
    if principal.role not in rules.EDITOR_ROLES:
        raise Forbidden("Only an admin or an analyst may change valuation data")


# --- activity and events ------------------------------------------------------------------------


def record_activity(
    session: Session, principal: Principal, action: str, subject: str
) -> UserActivity:
    """The seed's `UserActivity`: one thing a person did (report generated, valuation added)."""
    row = UserActivity(
        tenant_id=principal.tenant_id,
        user_id=principal.user_id,
        action=action[:48],
        subject=subject[:200],
        at=utcnow(),
    )
    session.add(row)
    session.flush()
    return row


def recent_activity(
    session: Session, principal: Principal, *, limit: int = 20
) -> list[UserActivity]:
    """The latest activity the principal may read (an admin: everyone's; others: their own)."""
    stmt = readable(select(UserActivity), principal)
    return list(
        session.scalars(stmt.order_by(UserActivity.at.desc(), UserActivity.id.desc()).limit(limit))
    )


def _announce(session: Session, tenant_id: int, type_: str, data: dict[str, Any]) -> None:
    """Tell the tenant's live dashboards (the people who may read valuation data) to refresh."""
    events.record(
        session,
        tenant_id=tenant_id,
        channels=[f"tenant:{tenant_id}"],
        type=type_,
        data=data,
        audience=events.Audience(roles=tuple(sorted(rules.VIEWER_ROLES))),
    )


# --- companies ----------------------------------------------------------------------------------


def list_companies(
    session: Session,
    principal: Principal,
    *,
    search: str | None = None,
    page: int = 1,
    per_page: int = 25,
) -> tuple[list[Company], int]:
    """A page of the tenant's companies by name; `search` matches name or industry."""
    require_viewer(principal)
    stmt = readable(select(Company), principal)
    if search and search.strip():
        like = f"%{search.strip().lower()}%"
        stmt = stmt.where(
            func.lower(Company.name).like(like) | func.lower(Company.industry).like(like)
        )
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    rows = session.scalars(
        stmt.order_by(Company.name, Company.id).offset((page - 1) * per_page).limit(per_page)
    )
    return list(rows), int(total)


def get_company(session: Session, principal: Principal, company_id: int) -> Company:
    """One company (404 when it is another tenant's or does not exist; 403 for roles that may
    read none)."""
    require_viewer(principal)
    return get_readable(session, Company, company_id, principal)


def _check_name_free(session: Session, tenant_id: int, name: str, *, but: int | None) -> None:
    stmt = select(Company.id).where(
        Company.tenant_id == tenant_id, func.lower(Company.name) == name.lower()
    )
    if but is not None:
        stmt = stmt.where(Company.id != but)
    if session.scalar(stmt.limit(1)) is not None:
        raise Conflict(f"A company named '{name}' already exists")


def _check_warehouse(principal: Principal, warehouse_tenant_id: int | None) -> None:
    """A company may only read its own tenant's sales: never another tenant's warehouse."""
    if warehouse_tenant_id is not None and warehouse_tenant_id != principal.tenant_id:
        raise Forbidden("A company can only be linked to your own business's sales warehouse")


def create_company(
    session: Session,
    principal: Principal,
    *,
    name: str,
    industry: str,
    description: str | None = None,
    warehouse_tenant_id: int | None = None,
) -> Company:
    require_editor(principal)
    _check_warehouse(principal, warehouse_tenant_id)
    _check_name_free(session, principal.tenant_id, name, but=None)
    company = Company(
        tenant_id=principal.tenant_id,
        name=name,
        industry=industry,
        description=description,
        warehouse_tenant_id=warehouse_tenant_id,
    )
    session.add(company)
    session.flush()
    if company.warehouse_tenant_id is not None:
        refresh_metrics(session, company)
    record_activity(session, principal, "company.created", company.name)
    _announce(
        session, company.tenant_id, "company.created", {"company_id": company.id, "name": name}
    )
    return company


COMPANY_FIELDS = frozenset({"name", "industry", "description", "warehouse_tenant_id"})


def update_company(
    session: Session, principal: Principal, company_id: int, *, changes: Mapping[str, Any]
) -> Company:
    """Change the given fields (a PATCH: fields left out stay as they are)."""
    require_editor(principal)
    unknown = set(changes) - COMPANY_FIELDS
    if unknown:
        raise RuleViolation(f"Cannot change: {', '.join(sorted(unknown))}")
    company = get_readable(session, Company, company_id, principal)
    if "warehouse_tenant_id" in changes:
        _check_warehouse(principal, changes["warehouse_tenant_id"])
    if changes.get("name") is not None:
        _check_name_free(session, company.tenant_id, changes["name"], but=company.id)
    for key in ("name", "industry"):
        if key in changes and changes[key] is None:
            raise RuleViolation(f"{key} cannot be empty")
    linking = (
        changes.get("warehouse_tenant_id") is not None
        and changes["warehouse_tenant_id"] != company.warehouse_tenant_id
    )
    for key, value in changes.items():
        setattr(company, key, value)
    session.flush()
    if linking:
        refresh_metrics(session, company)
    record_activity(session, principal, "company.updated", company.name)
    _announce(
        session,
        company.tenant_id,
        "company.updated",
        {"company_id": company.id, "fields": sorted(changes)},
    )
    return company


# --- valuations ---------------------------------------------------------------------------------


def add_valuation(
    session: Session,
    principal: Principal,
    company_id: int,
    *,
    method: str,
    value: Decimal,
    low: Decimal,
    high: Decimal,
    confidence: Decimal,
    valued_on: date,
    notes: str | None = None,
) -> Valuation:
    require_editor(principal)
    company = get_readable(session, Company, company_id, principal)
    if method not in rules.METHODS:
        raise RuleViolation(f"method must be one of: {', '.join(rules.METHODS)}")
    rules.check_valuation(value, low, high, confidence)
    valuation = Valuation(
        tenant_id=company.tenant_id,
        company_id=company.id,
        method=method,
        value=value,
        low=low,
        high=high,
        confidence=confidence,
        valued_on=valued_on,
        notes=notes,
    )
    session.add(valuation)
    session.flush()
    record_activity(
        session,
        principal,
        "valuation.added",
        f"{company.name}: {rules.METHODS[method]} {value:,.0f} on {valued_on.isoformat()}",
    )
    _announce(
        session,
        company.tenant_id,
        "valuation.created",
        {
            "company_id": company.id,
            "valuation_id": valuation.id,
            "method": method,
            "value": str(value),
            "valued_on": valued_on.isoformat(),
        },
    )
    return valuation


def list_valuations(session: Session, principal: Principal, company_id: int) -> list[Valuation]:
    """A company's valuations, newest first."""
    company = get_company(session, principal, company_id)
    stmt = readable(select(Valuation), principal).where(Valuation.company_id == company.id)
    return list(session.scalars(stmt.order_by(Valuation.valued_on.desc(), Valuation.id.desc())))


# --- metrics history ----------------------------------------------------------------------------


def list_metrics(session: Session, principal: Principal, company_id: int) -> list[CompanyMetric]:
    """A company's monthly figures, oldest month first."""
    company = get_company(session, principal, company_id)
    stmt = readable(select(CompanyMetric), principal).where(CompanyMetric.company_id == company.id)
    return list(session.scalars(stmt.order_by(CompanyMetric.period)))


@dataclass(frozen=True)
class MonthFigures:
    period: date
    revenue: Decimal
    orders: int
    customers: int
    growth: Decimal | None
    churn: Decimal | None


def _ratio(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    if denominator <= 0:
        return None
    value = (numerator / denominator).quantize(RATIO)
    return max(-RATIO_CAP, min(RATIO_CAP, value))


def warehouse_months(session: Session, tenant_id: int, *, before: date) -> list[MonthFigures]:
    """A tenant's complete calendar months before `before`, from its gold tables: revenue and
    orders, distinct customers, growth on the month before, and churn (customers of the month
    before who did not come back this month, over the month before's customers). Months without
    sales between the first and the last are there, at zero."""
    daily = session.execute(
        select(
            DailySalesSummary.sale_date,
            func.sum(DailySalesSummary.revenue),
            func.sum(DailySalesSummary.orders),
        )
        .where(DailySalesSummary.tenant_id == tenant_id, DailySalesSummary.sale_date < before)
        .group_by(DailySalesSummary.sale_date)
    ).all()
    revenue: dict[date, Decimal] = {}
    orders: dict[date, int] = {}
    for day, amount, count in daily:
        month = day.replace(day=1)
        revenue[month] = revenue.get(month, Decimal(0)) + Decimal(amount or 0)
        orders[month] = orders.get(month, 0) + int(count or 0)
    if not revenue:
        return []
    m = CustomerMonthly
    customers: dict[date, int] = {
        month: int(count)
        for month, count in session.execute(
            select(m.month, func.count(m.customer_sk.distinct()))
            .where(m.tenant_id == tenant_id, m.month < before)
            .group_by(m.month)
        )
    }
    months: list[date] = []
    month = min(revenue)
    while month <= max(revenue):
        months.append(month)
        month = analytics_rules.next_month(month)
    out: list[MonthFigures] = []
    for i, month in enumerate(months):
        rev = revenue.get(month, Decimal(0)).quantize(Decimal("0.01"))
        growth = churn = None
        if i:
            previous = months[i - 1]
            prev_rev = revenue.get(previous, Decimal(0))
            if prev_rev > 0:
                growth = _ratio(rev - prev_rev, prev_rev)
            prev_customers = int(customers.get(previous, 0))
            if prev_customers:
                stayed = _returning(session, tenant_id, previous, month)
                churn = _ratio(Decimal(prev_customers - stayed), Decimal(prev_customers))
        out.append(
            MonthFigures(
                month, rev, orders.get(month, 0), int(customers.get(month, 0)), growth, churn
            )
        )
    return out


def _returning(session: Session, tenant_id: int, previous: date, month: date) -> int:
    """Customers active in `previous` who were active again in `month` (at any location)."""
    a, b = CustomerMonthly.__table__.alias("a"), CustomerMonthly.__table__.alias("b")
    found = session.scalar(
        select(func.count(a.c.customer_sk.distinct())).where(
            a.c.tenant_id == tenant_id,
            a.c.month == previous,
            a.c.customer_sk.in_(
                select(b.c.customer_sk).where(b.c.tenant_id == tenant_id, b.c.month == month)
            ),
        )
    )
    return int(found or 0)


def refresh_metrics(session: Session, company: Company, *, today: date | None = None) -> int:
    """Recompute a linked company's monthly rows (source "warehouse") from its warehouse, for
    every complete month (the current month is left out until it ends). Upserts by (company,
    month), so running it again changes nothing; a margin typed in by hand is kept (the
    warehouse has no costs). Returns the number of months written."""
    tenant_id = company.warehouse_tenant_id
    if tenant_id is None:
        raise RuleViolation(f"{company.name} is not linked to a sales warehouse")
    # Defence in depth: linking is checked when it is made; never read another tenant's sales.
    if tenant_id != company.tenant_id:
        raise Forbidden("A company can only read its own business's sales warehouse")
    if today is None:
        tenant = session.get(Tenant, tenant_id)
        today = utcnow().astimezone(tenant.zone).date() if tenant else utcnow().date()
    figures = warehouse_months(session, tenant_id, before=today.replace(day=1))
    existing = {
        row.period: row
        for row in session.scalars(
            select(CompanyMetric).where(CompanyMetric.company_id == company.id)
        )
    }
    for f in figures:
        row = existing.get(f.period)
        if row is None:
            row = CompanyMetric(tenant_id=company.tenant_id, company_id=company.id, period=f.period)
            session.add(row)
        row.revenue, row.orders, row.customers = f.revenue, f.orders, f.customers
        row.growth, row.churn, row.source = f.growth, f.churn, WAREHOUSE
    kept = {f.period for f in figures}
    stale = [p for p, row in existing.items() if row.source == WAREHOUSE and p not in kept]
    if stale:
        session.execute(
            delete(CompanyMetric).where(
                CompanyMetric.company_id == company.id, CompanyMetric.period.in_(stale)
            )
        )
    session.flush()
    return len(figures)


def refresh_company_metrics(
    session: Session, principal: Principal, company_id: int, *, today: date | None = None
) -> int:
    """The refresh as a person asks for it: an editor, on a company of their tenant."""
    require_editor(principal)
    company = get_readable(session, Company, company_id, principal)
    months = refresh_metrics(session, company, today=today)
    record_activity(session, principal, "metrics.refreshed", f"{company.name}: {months} months")
    _announce(
        session,
        company.tenant_id,
        "metrics.refreshed",
        {"company_id": company.id, "months": months},
    )
    return months


# --- market benchmarks --------------------------------------------------------------------------


def list_benchmarks(
    session: Session,
    principal: Principal,
    *,
    industry: str | None = None,
    metric: str | None = None,
) -> list[MarketBenchmark]:
    require_viewer(principal)
    stmt = readable(select(MarketBenchmark), principal)
    if industry:
        stmt = stmt.where(func.lower(MarketBenchmark.industry) == industry.strip().lower())
    if metric:
        if metric not in rules.BENCHMARK_METRICS:
            raise RuleViolation(f"metric must be one of: {', '.join(rules.BENCHMARK_METRICS)}")
        stmt = stmt.where(MarketBenchmark.metric == metric)
    return list(
        session.scalars(
            stmt.order_by(
                MarketBenchmark.industry, MarketBenchmark.metric, MarketBenchmark.as_of.desc()
            )
        )
    )


@dataclass(frozen=True)
class BenchmarkRow:
    line: int
    industry: str
    metric: str
    p25: Decimal
    p50: Decimal
    p75: Decimal
    as_of: date
    source: str


@dataclass(frozen=True)
class BenchmarkImport:
    rows: int
    created: int
    updated: int


class BenchmarkCsvInvalid(RuleViolation):
    """The file has problems; `errors` lists every one as {"line": n, "errors": [...]}."""

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        lines = ", ".join(str(p["line"]) for p in problems[:20])
        more = "" if len(problems) <= 20 else f" and {len(problems) - 20} more"
        super().__init__(
            f"Nothing was imported: {len(problems)} line(s) have problems "
            f"(line {lines}{more}); see errors"
        )
        self.errors = problems


def _percentile(text: str, name: str, errors: list[str]) -> Decimal | None:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        errors.append(f"{name} must be a number, got {text!r}")
        return None
    if not value.is_finite() or abs(value) >= Decimal(10) ** 12:
        errors.append(f"{name} must be a finite number, got {text!r}")
        return None
    if value != value.quantize(RATIO):
        errors.append(f"{name} may have at most 4 decimal places, got {text!r}")
        return None
    return value


def parse_benchmarks_csv(text: str) -> tuple[list[BenchmarkRow], list[dict[str, Any]]]:
    """The file's rows and its problems ({"line", "errors"}), every line checked."""
    reader = csv.DictReader(io.StringIO(text))
    header = [(h or "").strip().lower() for h in reader.fieldnames or []]
    if not header:
        raise RuleViolation(
            f"The file is empty: the first row must name the columns {', '.join(BENCHMARK_COLUMNS)}"
        )
    missing = [c for c in BENCHMARK_COLUMNS if c not in header]
    unknown = [c for c in header if c not in BENCHMARK_COLUMNS]
    if missing or unknown:
        parts = [f"missing column(s): {', '.join(missing)}"] if missing else []
        parts += [f"unknown column(s): {', '.join(unknown)}"] if unknown else []
        raise RuleViolation(
            f"Line 1: {'; '.join(parts)}. The columns are: {', '.join(BENCHMARK_COLUMNS)}"
        )
    reader.fieldnames = header
    rows: list[BenchmarkRow] = []
    problems: list[dict[str, Any]] = []
    seen: dict[tuple[str, str, date], int] = {}
    for count, record in enumerate(reader, start=1):
        line = reader.line_num
        if count > MAX_BENCHMARK_ROWS:
            raise RuleViolation(f"The file has more than {MAX_BENCHMARK_ROWS:,} rows: split it")
        if None in record:
            problems.append({"line": line, "errors": ["the row has more fields than the header"]})
            continue
        values = {k: (v or "").strip() for k, v in record.items()}
        if not any(values.values()):
            continue  # a blank line
        errors = [f"{c} is empty" for c in BENCHMARK_COLUMNS if not values.get(c)]
        industry, metric, source = values["industry"], values["metric"], values["source"]
        if len(industry) > 64:
            errors.append("industry may be at most 64 characters")
        if len(source) > 200:
            errors.append("source may be at most 200 characters")
        if metric and metric not in rules.BENCHMARK_METRICS:
            errors.append(f"metric {metric!r} is not one of: {', '.join(rules.BENCHMARK_METRICS)}")
        p = {
            name: _percentile(values[name], name, errors) if values[name] else None
            for name in ("p25", "p50", "p75")
        }
        as_of: date | None = None
        if values["as_of"]:
            try:
                as_of = date.fromisoformat(values["as_of"])
            except ValueError:
                errors.append(f"as_of must be an ISO date (YYYY-MM-DD), got {values['as_of']!r}")
        p25, p50, p75 = p["p25"], p["p50"], p["p75"]
        if p25 is not None and p50 is not None and p75 is not None:
            try:
                rules.check_benchmark(p25, p50, p75)
            except RuleViolation as exc:
                errors.append(f"{exc.detail} (got {p25}, {p50}, {p75})")
            bounds = BENCHMARK_RANGES.get(metric)
            if bounds and not all(bounds[0] <= v <= bounds[1] for v in (p25, p50, p75)):
                errors.append(
                    f"{metric} percentiles must lie between {bounds[0]} and {bounds[1]}"
                    + (" (fractions: 0.12 is 12%)" if bounds[1] <= 10 else "")
                )
        if as_of is not None and industry and metric:
            key = (industry.lower(), metric, as_of)
            if key in seen:
                errors.append(f"the same industry, metric and as_of as line {seen[key]}")
            else:
                seen[key] = line
        if errors:
            problems.append({"line": line, "errors": errors})
            continue
        if p25 is None or p50 is None or p75 is None or as_of is None:
            continue  # unreachable: each has reported an error above
        rows.append(BenchmarkRow(line, industry, metric, p25, p50, p75, as_of, source))
    return rows, problems


def import_benchmarks_csv(session: Session, principal: Principal, text: str) -> BenchmarkImport:
    """Import market benchmarks (format in the module docstring): all or nothing."""
    require_editor(principal)
    rows, problems = parse_benchmarks_csv(text)
    if problems:
        raise BenchmarkCsvInvalid(problems)
    if not rows:
        raise RuleViolation("The file has a header but no rows")
    existing = {
        (b.industry.lower(), b.metric, b.as_of): b
        for b in session.scalars(
            select(MarketBenchmark).where(MarketBenchmark.tenant_id == principal.tenant_id)
        )
    }
    created = updated = 0
    for row in rows:
        found = existing.get((row.industry.lower(), row.metric, row.as_of))
        if found is None:
            found = MarketBenchmark(
                tenant_id=principal.tenant_id,
                industry=row.industry,
                metric=row.metric,
                as_of=row.as_of,
            )
            session.add(found)
            created += 1
        else:
            updated += 1
        found.p25, found.p50, found.p75, found.source = row.p25, row.p50, row.p75, row.source
    session.flush()
    result = BenchmarkImport(rows=len(rows), created=created, updated=updated)
    industries = len({r.industry.lower() for r in rows})
    record_activity(
        session,
        principal,
        "benchmarks.imported",
        f"{len(rows)} benchmarks of {industries} industries ({created} new, {updated} updated)",
    )
    _announce(
        session,
        principal.tenant_id,
        "benchmarks.imported",
        {"rows": len(rows), "created": created, "updated": updated},
    )
    return result
