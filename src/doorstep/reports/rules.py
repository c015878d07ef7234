"""The rules of seed 002: templates and their sections, formats, valuation methods, schedules,
who may do what, and the alerts and recommendations the dashboard derives from the data."""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from doorstep.platform.auth import Role
from doorstep.platform.errors import RuleViolation

# --- templates ----------------------------------------------------------------------------------

SECTION_TITLES = {
    "summary": "Summary",
    "financials": "Financials",
    "benchmarks": "Benchmarks",
    "valuation": "Valuation",
    "growth_projections": "Growth projections",
    "risks": "Risks",
    "recommendations": "Recommendations",
    # brokerage templates (fed by the broker KPIs of seed 004)
    "pipeline": "Leads pipeline",
    "appointments": "Appointment activity",
    "production": "Production",
    "leaderboard": "Leaderboard",
    "trend": "Month by month",
}
COMPANY_SECTIONS = (
    "summary",
    "financials",
    "benchmarks",
    "valuation",
    "growth_projections",
    "risks",
    "recommendations",
)


@dataclass(frozen=True)
class Template:
    key: str
    name: str
    description: str
    subject: str  # "company", "agent" or "team"
    sections: tuple[str, ...]  # the ones it may have, in the order they appear
    default_sections: tuple[str, ...]


TEMPLATES: dict[str, Template] = {
    t.key: t
    for t in (
        Template(
            "executive_summary",
            "Executive Summary",
            "High-level overview for C-suite executives",
            "company",
            COMPANY_SECTIONS,
            ("summary", "financials", "benchmarks", "valuation", "recommendations"),
        ),
        Template(
            "investor_pitch",
            "Investor Pitch",
            "Detailed analysis for investment presentations",
            "company",
            COMPANY_SECTIONS,
            ("summary", "financials", "growth_projections", "valuation", "benchmarks"),
        ),
        Template(
            "quarterly_review",
            "Quarterly Review",
            "Regular performance assessment of the last quarter",
            "company",
            COMPANY_SECTIONS,
            ("summary", "financials", "benchmarks", "growth_projections", "recommendations"),
        ),
        Template(
            "due_diligence",
            "Due Diligence",
            "Comprehensive evaluation for M&A activities",
            "company",
            COMPANY_SECTIONS,
            COMPANY_SECTIONS,
        ),
        Template(
            "agent_performance",
            "Agent Performance",
            "One agent's pipeline, appointments and production (broker KPIs)",
            "agent",
            ("summary", "pipeline", "appointments", "production", "trend", "recommendations"),
            ("summary", "pipeline", "appointments", "production", "trend", "recommendations"),
        ),
        Template(
            "broker_quarterly_review",
            "Broker Quarterly Review",
            "The brokerage team's quarter: production, leaderboard and pipeline",
            "team",
            ("summary", "production", "leaderboard", "pipeline", "trend", "recommendations"),
            ("summary", "production", "leaderboard", "pipeline", "trend", "recommendations"),
        ),
    )
}
FORMATS = ("pdf", "docx", "xlsx", "pptx", "json")
METHODS = {
    "revenue_multiple": "Revenue multiple",
    "ebitda_multiple": "EBITDA multiple",
    "dcf": "Discounted cash flow",
}
BENCHMARK_METRICS = {
    "revenue_growth": "Revenue growth (yearly)",
    "ebitda_margin": "EBITDA margin",
    "monthly_churn": "Customer churn (monthly)",
    "revenue_multiple": "EV / revenue",
    "ebitda_multiple": "EV / EBITDA",
}
CADENCES = ("weekly", "monthly", "quarterly")
STATUSES = ("queued", "running", "done", "failed")
PENDING_STATUSES = frozenset({"queued", "running"})

# Who may read companies, valuations and reports, and who may change them.
VIEWER_ROLES = frozenset({Role.admin, Role.broker, Role.analyst})
EDITOR_ROLES = frozenset({Role.admin, Role.analyst})
# Brokerage templates: an agent's report for their broker and admins; the team review for the
# broker of the team.
BROKERAGE_ROLES = frozenset({Role.admin, Role.broker})
_GENERATORS = {
    "company": VIEWER_ROLES,
    "agent": BROKERAGE_ROLES,
    "team": frozenset({Role.broker}),
}
GENERATIONS_PER_HOUR = 30  # per user


def _listing(values: Iterable[object]) -> str:
    return ", ".join(str(v) for v in values)


def template(key: str) -> Template:
    found = TEMPLATES.get(key)
    if found is None:
        raise RuleViolation(f"template must be one of: {_listing(TEMPLATES)}")
    return found


def may_generate(role: Role, tpl: Template) -> bool:
    """Whether a role may ask for reports of this template (the builder page offers these)."""
    return role in _GENERATORS[tpl.subject]


def generator_roles(tpl: Template) -> frozenset[Role]:
    return _GENERATORS[tpl.subject]


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise RuleViolation(f"format must be one of: {_listing(FORMATS)}")
    return fmt


def choose_sections(tpl: Template, sections: list[str] | None) -> tuple[str, ...]:
    """The sections asked for, in the template's order; the template's defaults when none."""
    if not sections:
        return tpl.default_sections
    unknown = [s for s in sections if s not in tpl.sections]
    if unknown:
        raise RuleViolation(
            f"unknown section(s) {_listing(unknown)} for {tpl.key}; "
            f"valid sections: {_listing(tpl.sections)}"
        )
    return tuple(s for s in tpl.sections if s in sections)


def check_cadence(cadence: str) -> str:
    if cadence not in CADENCES:
        raise RuleViolation(f"cadence must be one of: {_listing(CADENCES)}")
    return cadence


def month_start(day: date, shift: int = 0) -> date:
    """The first day of `day`'s month, moved `shift` months (negative: back)."""
    index = day.year * 12 + day.month - 1 + shift
    return date(index // 12, index % 12 + 1, 1)


def next_run(after: datetime, cadence: str) -> datetime:
    """The next run of a schedule: a week, a calendar month or a quarter after `after`."""
    if cadence == "weekly":
        return after + timedelta(days=7)
    months = 1 if cadence == "monthly" else 3
    month0 = after.month - 1 + months
    year, month = after.year + month0 // 12, month0 % 12 + 1
    day = min(after.day, calendar.monthrange(year, month)[1])
    return after.replace(year=year, month=month, day=day)


def check_valuation(value: Decimal, low: Decimal, high: Decimal, confidence: Decimal) -> None:
    if not low <= value <= high:
        raise RuleViolation("a valuation's value must lie between its low and high")
    if low < 0:
        raise RuleViolation("a valuation cannot be negative")
    if not 0 <= confidence <= 1:
        raise RuleViolation("confidence is a fraction between 0 and 1")


def check_benchmark(p25: Decimal, p50: Decimal, p75: Decimal) -> None:
    if not p25 <= p50 <= p75:
        raise RuleViolation("percentiles must be ordered: p25 <= p50 <= p75")


# --- alerts and recommendations ------------------------------------------------------------------

VALUATION_DROP = Decimal("0.10")  # a valuation that fell more than 10% since the previous one
# Metrics where a low figure is bad (churn is the other way round).
HIGHER_IS_BETTER = {"revenue_growth": True, "ebitda_margin": True, "monthly_churn": False}


@dataclass(frozen=True)
class Alert:
    level: str  # "warning" | "danger" | "info"
    company_id: int
    company: str
    kind: str
    message: str


def valuation_drop(previous: Decimal, latest: Decimal) -> Decimal | None:
    """The fall from the previous valuation to the latest as a fraction, if it is a fall."""
    if previous <= 0 or latest >= previous:
        return None
    return (previous - latest) / previous


def under_benchmark(metric: str, value: Decimal, p25: Decimal, p75: Decimal) -> bool:
    """Whether the company sits in the worst quarter of its industry for the metric."""
    if HIGHER_IS_BETTER.get(metric, True):
        return value < p25
    return value > p75


def recommendation_for(metric: str) -> str:
    return {
        "revenue_growth": "Growth is in the industry's bottom quarter: review pricing and "
        "the channels that bring new customers.",
        "ebitda_margin": "Margin is in the industry's bottom quarter: look at cost of goods "
        "and labour scheduling against peak hours.",
        "monthly_churn": "Churn is in the industry's worst quarter: a win-back offer for "
        "customers at risk (the analytics churn scores) is the cheapest revenue.",
    }.get(metric, "Below the industry's 25th percentile: worth a closer look.")


def quarter_of(day: date) -> tuple[date, date]:
    """The calendar quarter that contains `day` (first and last day)."""
    first_month = 3 * ((day.month - 1) // 3) + 1
    first = date(day.year, first_month, 1)
    last_month = first_month + 2
    last = date(day.year, last_month, calendar.monthrange(day.year, last_month)[1])
    return first, last
