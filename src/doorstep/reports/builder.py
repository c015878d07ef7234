"""The report builder (the seed's `CustomReportBuilder`): gathers what a template's sections
need (a company's metrics, valuations and benchmarks; or the broker KPIs of seed 004) into a
`ReportDocument`, which `render` then writes in any format. Reads only what the principal who
asked may see."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, undefer

from doorstep.broker import service as broker
from doorstep.platform.access import get_readable, readable
from doorstep.platform.auth import Principal, Role, Tenant, User
from doorstep.platform.db import utcnow
from doorstep.platform.errors import NotFound
from doorstep.reports import rules
from doorstep.reports.document import Branding, Chart, Metric, ReportDocument, Section, Table
from doorstep.reports.models import Company, CompanyMetric, MarketBenchmark, Report, Valuation
from doorstep.web import charts


def team_agent(db: Session, principal: Principal, agent_id: int) -> User:
    """An agent the principal may report on: of the tenant, and of the broker's own team."""
    agent = db.get(User, agent_id)
    if agent is None or agent.tenant_id != principal.tenant_id or agent.role != Role.agent:
        raise NotFound(f"Agent {agent_id} not found")
    if principal.role == Role.broker and agent.broker_id != principal.user_id:
        raise NotFound(f"Agent {agent_id} not found")
    return agent


def reportable_agents(db: Session, principal: Principal) -> list[User]:
    """The agents `team_agent` admits for the principal: a broker's own team, or every agent
    of the tenant for an admin."""
    if principal.role == Role.broker:
        return broker.team(db, principal, None)[1]
    if principal.role != Role.admin:
        return []
    return list(
        db.scalars(
            select(User)
            .where(User.tenant_id == principal.tenant_id, User.role == Role.agent)
            .order_by(User.full_name, User.id)
        )
    )


def _branding(db: Session, tenant_id: int) -> Branding:
    tenant = db.scalar(select(Tenant).options(undefer(Tenant.logo)).where(Tenant.id == tenant_id))
    assert tenant is not None
    return Branding(
        name=tenant.name,
        primary_color=tenant.primary_color,
        logo=tenant.logo,
        logo_content_type=tenant.logo_content_type,
    )


def _money(value: Decimal | float | None) -> str:
    if value is None:
        return "—"
    amount = float(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(amount) >= limit:
            return f"${amount / limit:,.1f}{suffix}"
    return f"${amount:,.0f}"


def _pct(value: Decimal | float | None, *, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{float(value):+.1%}" if signed else f"{float(value):.1%}"


def build_document(db: Session, principal: Principal, report: Report) -> ReportDocument:
    tpl = rules.template(report.template)
    branding = _branding(db, report.tenant_id)
    now = utcnow()
    if tpl.subject == "company":
        assert report.company_id is not None
        company = get_readable(db, Company, report.company_id, principal)
        subject, period, sections = _company_sections(db, principal, company, report.sections)
    elif tpl.subject == "agent":
        assert report.agent_id is not None
        subject, period, sections = _agent_sections(db, principal, report.agent_id, report.sections)
    else:
        subject, period, sections = _team_sections(db, principal, report.sections)
    return ReportDocument(
        title=tpl.name,
        subtitle=tpl.description,
        template=tpl.key,
        subject=subject,
        period_label=period,
        generated_at=now,
        branding=branding,
        sections=tuple(sections),
    )


# company templates


@dataclass(frozen=True)
class CompanyData:
    company: Company
    metrics: list[CompanyMetric]  # oldest first, at most 24 months
    valuations: list[Valuation]  # newest first
    benchmarks: dict[str, MarketBenchmark]  # latest per metric for the company's industry


def company_data(db: Session, principal: Principal, company: Company) -> CompanyData:
    metrics = db.scalars(
        readable(select(CompanyMetric), principal)
        .where(CompanyMetric.company_id == company.id)
        .order_by(CompanyMetric.period.desc())
        .limit(24)
    ).all()
    valuations = db.scalars(
        readable(select(Valuation), principal)
        .where(Valuation.company_id == company.id)
        .order_by(Valuation.valued_on.desc(), Valuation.id.desc())
    ).all()
    benchmarks: dict[str, MarketBenchmark] = {}
    for row in db.scalars(
        readable(select(MarketBenchmark), principal)
        .where(MarketBenchmark.industry == company.industry)
        .order_by(MarketBenchmark.as_of)
    ):
        benchmarks[row.metric] = row  # the latest as_of wins
    return CompanyData(company, list(reversed(metrics)), list(valuations), benchmarks)


def company_position(data: CompanyData) -> dict[str, Decimal]:
    """The company's figure for each benchmarked metric: yearly revenue growth (last 12 months
    against the 12 before), the last 12 months' average margin, the latest monthly churn."""
    out: dict[str, Decimal] = {}
    metrics = data.metrics
    if len(metrics) >= 24:
        last, before = metrics[-12:], metrics[-24:-12]
        prior = sum((m.revenue for m in before), Decimal(0))
        if prior > 0:
            out["revenue_growth"] = sum((m.revenue for m in last), Decimal(0)) / prior - 1
    margins = [m.margin for m in metrics[-12:] if m.margin is not None]
    if margins:
        out["ebitda_margin"] = sum(margins, Decimal(0)) / len(margins)
    churns = [m.churn for m in metrics if m.churn is not None]
    if churns:
        out["monthly_churn"] = churns[-1]
    return out


def latest_by_method(valuations: list[Valuation]) -> list[Valuation]:
    seen: dict[str, Valuation] = {}
    for v in valuations:  # newest first
        seen.setdefault(v.method, v)
    return [seen[m] for m in rules.METHODS if m in seen]


def projections(metrics: list[CompanyMetric], months: int = 12) -> list[dict[str, Any]]:
    """Actual revenue of the last 12 months, then `months` projected at the compound monthly
    growth rate of the last 12 months (base), half of it (low) and one and a half (high)."""
    recent = metrics[-13:]
    if len(recent) < 2 or recent[0].revenue <= 0:
        return []
    steps = len(recent) - 1
    cmgr = (float(recent[-1].revenue) / float(recent[0].revenue)) ** (1 / steps) - 1
    rows = [
        {"month": m.period, "revenue": float(m.revenue), "scenario": "actual"}
        for m in metrics[-12:]
    ]
    start, revenue = metrics[-1].period, float(metrics[-1].revenue)
    for scenario, rate in (("low", cmgr * 0.5), ("base", cmgr), ("high", cmgr * 1.5)):
        rows.append({"month": start, "revenue": revenue, "scenario": scenario})
        for k in range(1, months + 1):
            rows.append(
                {
                    "month": rules.month_start(start, k),
                    "revenue": round(revenue * (1 + rate) ** k, 2),
                    "scenario": scenario,
                }
            )
    return rows


def _company_sections(
    db: Session, principal: Principal, company: Company, keys: Sequence[str]
) -> tuple[str, str, list[Section]]:
    data = company_data(db, principal, company)
    metrics = data.metrics
    period = (
        f"{metrics[0].period:%B %Y} to {metrics[-1].period:%B %Y}" if metrics else "No metrics yet"
    )
    builders = {
        "summary": _summary,
        "financials": _financials,
        "benchmarks": _benchmarks,
        "valuation": _valuation,
        "growth_projections": _growth,
        "risks": _risks,
        "recommendations": _recommendations,
    }
    return company.name, period, [builders[key](data) for key in keys]


def _ttm(metrics: list[CompanyMetric]) -> Decimal:
    return sum((m.revenue for m in metrics[-12:]), Decimal(0))


def _summary(data: CompanyData) -> Section:
    company, metrics = data.company, data.metrics
    position = company_position(data)
    latest = data.valuations[0] if data.valuations else None
    figures = [
        Metric("Revenue, last 12 months", _money(_ttm(metrics)) if metrics else "—"),
        Metric("Yearly growth", _pct(position.get("revenue_growth"), signed=True)),
        Metric(
            "Latest valuation",
            _money(latest.value) if latest else "—",
            rules.METHODS[latest.method] if latest else None,
        ),
        Metric("Customers (latest month)", f"{metrics[-1].customers:,}")
        if metrics and metrics[-1].customers is not None
        else Metric("Customers (latest month)", "—"),
    ]
    text = [f"{company.name} is a {company.industry.lower()} business."]
    if metrics:
        text.append(
            f"Over the last {min(12, len(metrics))} months it took {_money(_ttm(metrics))} "
            f"in revenue; the latest month, {metrics[-1].period:%B %Y}, "
            f"{_money(metrics[-1].revenue)}."
        )
    if latest:
        text.append(
            f"The latest valuation ({rules.METHODS[latest.method].lower()}, "
            f"{latest.valued_on:%B %d, %Y}) puts it at {_money(latest.value)}, in a range of "
            f"{_money(latest.low)} to {_money(latest.high)}, with "
            f"{float(latest.confidence):.0%} confidence."
        )
    return Section("summary", rules.SECTION_TITLES["summary"], tuple(text), tuple(figures))


def _financials(data: CompanyData) -> Section:
    rows = data.metrics[-12:]
    table = Table(
        "Monthly figures",
        ("Month", "Revenue", "Growth", "Margin", "Churn", "Customers"),
        tuple(
            (
                f"{m.period:%b %Y}",
                float(m.revenue),
                float(m.growth) if m.growth is not None else None,
                float(m.margin) if m.margin is not None else None,
                float(m.churn) if m.churn is not None else None,
                m.customers,
            )
            for m in rows
        ),
        (None, "$#,##0", "0.0%", "0.0%", "0.0%", "#,##0"),
    )
    chart_rows: list[dict[str, Any]] = [
        {"month": f"{m.period:%b %y}", "revenue": float(m.revenue)} for m in rows
    ]
    chart = Chart(
        "Revenue by month",
        charts.bars(chart_rows, x="month", y="revenue"),
        "column_clustered",
        Table(
            "Revenue by month",
            ("Month", "Revenue"),
            tuple((r["month"], r["revenue"]) for r in chart_rows),
            (None, "$#,##0"),
        ),
    )
    paragraphs = (
        ("No monthly figures have been recorded for this company yet.",)
        if not rows
        else (f"The last {len(rows)} months, as recorded in the company's metrics history.",)
    )
    return Section(
        "financials",
        rules.SECTION_TITLES["financials"],
        paragraphs,
        tables=(table,) if rows else (),
        charts=(chart,) if rows else (),
    )


def _benchmarks(data: CompanyData) -> Section:
    position = company_position(data)
    rows, chart_rows = [], []
    for metric, label in rules.BENCHMARK_METRICS.items():
        bench = data.benchmarks.get(metric)
        if bench is None or metric not in position:
            continue
        value = position[metric]
        low = rules.under_benchmark(metric, value, bench.p25, bench.p75)
        rows.append(
            (
                label,
                float(value),
                float(bench.p25),
                float(bench.p50),
                float(bench.p75),
                "worst quarter" if low else "within range",
            )
        )
        chart_rows.append(
            {
                "metric": label,
                "company": float(value),
                "p25": float(bench.p25),
                "p50": float(bench.p50),
                "p75": float(bench.p75),
            }
        )
    sources = sorted({b.source for b in data.benchmarks.values()})
    if not rows:
        return Section(
            "benchmarks",
            rules.SECTION_TITLES["benchmarks"],
            (f"No benchmarks for the {data.company.industry} industry match this company's data.",),
        )
    table = Table(
        f"{data.company.industry}: company against the industry",
        ("Metric", "Company", "25th pct", "Median", "75th pct", "Position"),
        tuple(rows),
        (None, "0.0%", "0.0%", "0.0%", "0.0%", None),
    )
    chart = Chart(
        "Benchmark analysis",
        charts.benchmark_analysis(chart_rows),
        "bar",
        Table(
            "Benchmark analysis",
            ("Metric", "Company", "25th pct", "Median", "75th pct"),
            tuple(r[:5] for r in rows),
            (None, "0.0%", "0.0%", "0.0%", "0.0%"),
        ),
    )
    return Section(
        "benchmarks",
        rules.SECTION_TITLES["benchmarks"],
        (f"Sources: {'; '.join(sources)}.",),
        tables=(table,),
        charts=(chart,),
    )


def _valuation(data: CompanyData) -> Section:
    latest = latest_by_method(data.valuations)
    if not latest:
        return Section(
            "valuation", rules.SECTION_TITLES["valuation"], ("No valuations recorded yet.",)
        )
    rows = tuple(
        (
            rules.METHODS[v.method],
            float(v.value),
            float(v.low),
            float(v.high),
            float(v.confidence),
            v.valued_on.isoformat(),
        )
        for v in latest
    )
    chart = Chart(
        "Valuation comparison",
        charts.valuation_comparison(
            [{"method": r[0], "value": r[1], "low": r[2], "high": r[3]} for r in rows]
        ),
        "column_clustered",
        Table(
            "Valuation comparison",
            ("Method", "Value", "Low", "High"),
            tuple(r[:4] for r in rows),
            (None, "$#,##0", "$#,##0", "$#,##0"),
        ),
    )
    weights = sum((v.confidence for v in latest), Decimal(0))
    blended = (
        sum((v.value * v.confidence for v in latest), Decimal(0)) / weights if weights else None
    )
    metrics = (
        Metric("Confidence-weighted value", _money(blended)),
        *(
            Metric(rules.METHODS[v.method], _money(v.value), f"{_money(v.low)} to {_money(v.high)}")
            for v in latest
        ),
    )
    return Section(
        "valuation",
        rules.SECTION_TITLES["valuation"],
        ("The latest valuation by each method, with its range and confidence.",),
        metrics,
        (
            Table(
                "Latest valuation by method",
                ("Method", "Value", "Low", "High", "Confidence", "Date"),
                rows,
                (None, "$#,##0", "$#,##0", "$#,##0", "0%", None),
            ),
        ),
        (chart,),
    )


def _growth(data: CompanyData) -> Section:
    rows = projections(data.metrics)
    if not rows:
        return Section(
            "growth_projections",
            rules.SECTION_TITLES["growth_projections"],
            ("At least two months of revenue are needed for a projection.",),
        )
    ends = {r["scenario"]: r["revenue"] for r in rows}
    months = sorted({r["month"] for r in rows})
    table_rows = tuple(
        (
            f"{m:%b %Y}",
            *[
                next(
                    (r["revenue"] for r in rows if r["month"] == m and r["scenario"] == s),
                    None,
                )
                for s in ("actual", "low", "base", "high")
            ],
        )
        for m in months
    )
    chart = Chart(
        "Growth projections",
        charts.growth_projections(rows),
        "line",
        Table(
            "Growth projections",
            ("Month", "Actual", "Low", "Base", "High"),
            table_rows,
            (None, "$#,##0", "$#,##0", "$#,##0", "$#,##0"),
        ),
    )
    return Section(
        "growth_projections",
        rules.SECTION_TITLES["growth_projections"],
        (
            "Monthly revenue projected for twelve months at the compound monthly growth rate of "
            "the last twelve (base), half of it (low) and one and a half times it (high).",
        ),
        (
            Metric("Base case in 12 months", _money(ends["base"]), "monthly revenue"),
            Metric("Low case", _money(ends["low"])),
            Metric("High case", _money(ends["high"])),
        ),
        charts=(chart,),
    )


def findings(data: CompanyData) -> tuple[list[str], list[str]]:
    """Risks and recommendations from the rules over the company's data."""
    risks, advice = [], []
    for method, label in rules.METHODS.items():
        history = [v for v in data.valuations if v.method == method]  # newest first
        drop = (
            rules.valuation_drop(history[1].value, history[0].value) if len(history) > 1 else None
        )
        if drop is not None and drop > rules.VALUATION_DROP:
            risks.append(
                f"The {label.lower()} valuation fell {float(drop):.0%} from the previous one "
                f"({_money(history[1].value)} to {_money(history[0].value)})."
            )
            advice.append("Revisit the valuation's assumptions before sharing it with investors.")
    position = company_position(data)
    for metric, value in position.items():
        bench = data.benchmarks.get(metric)
        if bench is not None and rules.under_benchmark(metric, value, bench.p25, bench.p75):
            label = rules.BENCHMARK_METRICS[metric]
            risks.append(
                f"{label} ({_pct(value)}) is in the worst quarter of the "
                f"{data.company.industry} industry (25th to 75th percentile: "
                f"{_pct(bench.p25)} to {_pct(bench.p75)})."
            )
            advice.append(rules.recommendation_for(metric))
    low_confidence = [v for v in latest_by_method(data.valuations) if v.confidence < Decimal("0.6")]
    for v in low_confidence:
        risks.append(
            f"The {rules.METHODS[v.method].lower()} valuation has low confidence "
            f"({float(v.confidence):.0%})."
        )
    declines = [m for m in data.metrics[-3:] if m.growth is not None and m.growth < 0]
    if len(declines) >= 2:
        risks.append("Revenue fell in two or more of the last three months.")
        advice.append("Find which products or locations drove the decline (the analytics page).")
    return risks, advice


def _risks(data: CompanyData) -> Section:
    risks, _ = findings(data)
    return Section(
        "risks",
        rules.SECTION_TITLES["risks"],
        () if risks else ("No risks flagged by the rules over this company's data.",),
        bullets=tuple(risks),
    )


def _recommendations(data: CompanyData) -> Section:
    _, advice = findings(data)
    if not advice:
        advice = ["Keep the current course; the figures sit within the industry's range."]
    return Section(
        "recommendations", rules.SECTION_TITLES["recommendations"], bullets=tuple(advice)
    )


# brokerage templates (seed 004's KPIs)


def _kpi_table(title: str, rows: list[broker.AgentKpis]) -> Table:
    return Table(
        title,
        (
            "Agent",
            "Leads",
            "Converted",
            "Conversion",
            "Appointments",
            "Show rate",
            "Escrows",
            "Volume",
            "Commission",
        ),
        tuple(
            (
                k.name,
                k.total_leads,
                k.converted_leads,
                (k.conversion_rate or 0) / 100 if k.conversion_rate is not None else None,
                k.appointments,
                (k.show_rate or 0) / 100 if k.show_rate is not None else None,
                k.escrows,
                float(k.volume),
                float(k.commission),
            )
            for k in rows
        ),
        (None, "#,##0", "#,##0", "0.0%", "#,##0", "0.0%", "#,##0", "$#,##0", "$#,##0"),
    )


def _agent_sections(
    db: Session, principal: Principal, agent_id: int, keys: Sequence[str]
) -> tuple[str, str, list[Section]]:
    agent = team_agent(db, principal, agent_id)
    window = broker.period_window(
        db, tenant_id=principal.tenant_id, period="ytd", start_date=None, end_date=None
    )
    kpis, months = broker.agent_report(db, principal=principal, agent_id=agent.id, window=window)
    return agent.full_name, window.label, [_kpi_section(key, [kpis], months) for key in keys]


def _team_sections(
    db: Session, principal: Principal, keys: Sequence[str]
) -> tuple[str, str, list[Section]]:
    zone = broker.zone_of(db, principal.tenant_id)
    today = utcnow().astimezone(zone).date()
    first, _last = rules.quarter_of(today)
    window = broker.calendar_window(
        first, today, zone, f"Q{(first.month - 1) // 3 + 1} {first.year}"
    )
    team = broker.agent_kpis(db, principal=principal, window=window)
    return (
        f"{principal.full_name}'s team",
        f"{window.label} to {today:%B %d}",
        [_kpi_section(key, team, []) for key in keys],
    )


def _kpi_section(key: str, team: list[broker.AgentKpis], months: Sequence[Any]) -> Section:
    title = rules.SECTION_TITLES[key]
    total_volume = sum((k.volume for k in team), Decimal(0))
    escrows = sum(k.escrows for k in team)
    leads = sum(k.total_leads for k in team)
    converted = sum(k.converted_leads for k in team)
    appts = sum(k.appointments for k in team)
    completed = sum(k.completed_appointments for k in team)
    if key == "summary":
        return Section(
            key,
            title,
            (
                f"{len(team)} agent(s): {escrows} escrow(s) worth {_money(total_volume)}, "
                f"{leads} lead(s) of which {converted} converted, {appts} appointment(s).",
            ),
            (
                Metric("Volume", _money(total_volume)),
                Metric("Escrows", f"{escrows:,}"),
                Metric("Conversion", f"{converted / leads:.1%}" if leads else "—"),
                Metric("Show rate", f"{completed / appts:.1%}" if appts else "—"),
            ),
        )
    if key in ("pipeline", "appointments", "production", "leaderboard"):
        ordered = sorted(team, key=lambda k: (-k.volume, k.name))
        top = ordered[:15]
        measure, field, money = (
            ("Leads", "total_leads", False) if key == "pipeline" else ("Volume", "volume", True)
        )
        points = [(k.name, float(getattr(k, field))) for k in top]
        chart = Chart(
            f"{measure} by agent",
            charts.bars(
                [{"agent": name, "value": value} for name, value in points],
                x="agent",
                y="value",
                money=money,
            ),
            "column_clustered",
            Table(
                f"{measure} by agent",
                ("Agent", measure),
                tuple(points),
                (None, "$#,##0" if money else "#,##0"),
            ),
        )
        return Section(
            key,
            title,
            tables=(_kpi_table(title, ordered),),
            charts=(chart,) if key in ("production", "pipeline") and top else (),
        )
    if key == "trend":
        snapshots: list[tuple[str, int, float, int]] = [
            (f"{m.period_start:%b %Y}", m.total_escrows, float(m.total_volume), m.total_leads)
            for m in months
        ]
        if not snapshots:
            return Section(key, title, ("Month-by-month snapshots appear after a month closes.",))
        return Section(
            key,
            title,
            tables=(
                Table(
                    "Monthly snapshots",
                    ("Month", "Escrows", "Volume", "Leads"),
                    tuple(snapshots),
                    (None, "#,##0", "$#,##0", "#,##0"),
                ),
            ),
            charts=(
                Chart(
                    "Volume by month",
                    charts.bars(
                        [{"month": m, "volume": v} for m, _e, v, _l in snapshots],
                        x="month",
                        y="volume",
                    ),
                    "column_clustered",
                    Table(
                        "Volume by month",
                        ("Month", "Volume"),
                        tuple((m, v) for m, _e, v, _l in snapshots),
                        (None, "$#,##0"),
                    ),
                ),
            ),
        )
    advice = []
    for k in team:
        if k.total_leads >= 10 and (k.conversion_rate or 0) < 5:
            advice.append(
                f"{k.name}: conversion under 5% on {k.total_leads} leads; coach on follow-up."
            )
        if k.appointments >= 5 and (k.show_rate or 0) < 70:
            advice.append(f"{k.name}: show rate under 70%; confirm appointments the day before.")
    if not advice:
        advice = ["No agent stands out below the coaching thresholds this period."]
    return Section(key, title, bullets=tuple(advice))
