"""Sample report documents for the tests and bench/report_render.py, their charts made by
`doorstep.web.charts` so that the real specs are rendered."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from PIL import Image, ImageDraw
from sqlalchemy.orm import Session

from doorstep.reports.document import Branding, Chart, Metric, ReportDocument, Section, Table
from doorstep.reports.models import Company, CompanyMetric, MarketBenchmark, Valuation
from doorstep.web import charts

GENERATED_AT = datetime(2025, 10, 3, 14, 30, tzinfo=UTC)
BRAND = "#0f766e"


def logo_png(color: str = BRAND) -> bytes:
    """A small logo: a coloured square with a white house shape."""
    image = Image.new("RGB", (120, 60), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 59, 59), fill=color)
    draw.polygon([(10, 30), (30, 10), (50, 30)], fill="white")
    draw.rectangle((16, 30, 44, 50), fill="white")
    draw.rectangle((66, 20, 116, 40), fill=color)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def valuation_chart(scale: float = 1.0) -> Chart:
    methods = [
        ("DCF", 12_400_000),
        ("Comparables", 11_250_000),
        ("Precedents", 13_100_000),
        ("Asset-based", 8_900_000),
    ]
    methods = [(name, round(value * scale)) for name, value in methods]
    return Chart(
        title="Valuation by method",
        spec=charts.bars(
            [{"method": name, "value": value} for name, value in methods],
            x="method",
            y="value",
            x_title="Method",
        ),
        kind="column_clustered",
        data=Table(
            title="Valuation by method",
            columns=("Method", "Valuation"),
            rows=tuple(methods),
            number_formats=(None, "$#,##0"),
        ),
    )


def revenue_chart(months: int = 12, scale: float = 1.0) -> Chart:
    start = date(2024, 10, 1)
    rows = [
        {
            "date": start + timedelta(days=31 * i),
            "revenue": round((80_000 + 4_250.5 * i) * scale, 2),
            "orders": 900 + 37 * i,
        }
        for i in range(months)
    ]
    return Chart(
        title="Monthly revenue and orders",
        spec=charts.revenue_trend(rows),
        kind="line",
        data=Table(
            title="Monthly revenue",
            columns=("Month", "Revenue", "Orders"),
            rows=tuple(
                (row["date"].strftime("%b %Y"), row["revenue"], row["orders"]) for row in rows
            ),
            number_formats=(None, "$#,##0.00", "#,##0"),
        ),
    )


def mix_chart() -> Chart:
    mix = [
        ("Subscriptions", 612_000),
        ("Services", 254_000),
        ("Hardware", 98_500),
        ("Other", 31_200),
    ]
    return Chart(
        title="Revenue mix",
        spec=charts.pie(
            [{"line": n, "revenue": v} for n, v in mix], category="line", value="revenue"
        ),
        kind="pie",
        data=Table(
            title="Revenue mix",
            columns=("Line", "Revenue"),
            rows=tuple(mix),
            number_formats=(None, "$#,##0"),
        ),
    )


def financials_table(years: int = 4) -> Table:
    rows = tuple(
        (
            str(2021 + i),
            1_234_567 + 310_000 * i,
            201_000.4 + 52_000 * i,
            0.163 + 0.012 * i,
            1_250 + 340 * i,
        )
        for i in range(years)
    )
    return Table(
        title="Financial history",
        columns=("Year", "Revenue", "EBITDA", "EBITDA margin", "Customers"),
        rows=rows,
        number_formats=(None, "$#,##0", "$#,##0", "0.0%", "#,##0"),
    )


def executive_summary(
    *,
    logo: bytes | None = None,
    subject: str = "Acme Cloud Telephony, Inc.",
    title: str = "Executive Summary",
    template: str = "executive_summary",
    scale: float = 1.0,
    months: int = 12,
) -> ReportDocument:
    """Three sections, eight metrics, a table and three charts (one, two, none per section)."""
    return ReportDocument(
        title=title,
        subtitle="Valuation and performance overview",
        template=template,
        subject=subject,
        period_label="Q3 2025",
        generated_at=GENERATED_AT,
        branding=Branding(name="Northwind Advisory", primary_color=BRAND, logo=logo),
        sections=(
            Section(
                key="summary",
                title="Summary",
                paragraphs=(
                    "Acme's blended valuation stands at $12.4M, up 18% on the year, driven "
                    "by recurring subscription revenue and a rising EBITDA margin.",
                    "The comparables method sits below the DCF because listed peers trade "
                    "at compressed multiples this quarter.",
                ),
                metrics=(
                    Metric("Valuation", "$12.4M", "blended, 3 methods"),
                    Metric("Revenue growth", "+18.2%", "year on year"),
                    Metric("EBITDA margin", "21.5%"),
                    Metric("EV / Revenue", "4.2x"),
                ),
                charts=(valuation_chart(scale),),
            ),
            Section(
                key="financials",
                title="Financials",
                paragraphs=("Revenue grew every month of the period; orders followed.",),
                tables=(financials_table(),),
                charts=(revenue_chart(months, scale), mix_chart()),
            ),
            Section(
                key="recommendations",
                title="Recommendations",
                metrics=(
                    Metric("Confidence", "82%"),
                    Metric("Churn", "2.1%", "monthly"),
                    Metric("Net retention", "112%"),
                    Metric("Payback", "14 months"),
                ),
                bullets=(
                    "Raise prices on the legacy plan by 6% at renewal.",
                    "Shift hardware to a rental model to lift recurring revenue.",
                    "Re-run the valuation after the Q4 audit closes.",
                ),
            ),
        ),
    )


# The six documents of one reporting run: four company templates, two brokerage templates.
TEMPLATES = (
    ("executive_summary", "Executive Summary"),
    ("investor_pitch", "Investor Pitch"),
    ("quarterly_review", "Quarterly Review"),
    ("due_diligence", "Due Diligence"),
    ("brokerage_overview", "Brokerage Overview"),
    ("agent_performance", "Agent Performance"),
)


def all_templates(logo: bytes | None = None) -> list[ReportDocument]:
    return [
        executive_summary(logo=logo, title=title, template=key, scale=1 + i / 10, months=12 + i)
        for i, (key, title) in enumerate(TEMPLATES)
    ]


def sample_company(db: Session, tenant_id: int, name: str = "Cedar Street Bakery") -> Company:
    """24 months of growing revenue with rising churn, three methods valued twice (the revenue
    multiple fell 20%), and the bakery industry's benchmarks."""
    company = Company(tenant_id=tenant_id, name=name, industry="Restaurants")
    db.add(company)
    db.flush()
    first = date(2024, 11, 1)
    for k in range(24):
        month0 = first.month - 1 + k
        period = date(first.year + month0 // 12, month0 % 12 + 1, 1)
        db.add(
            CompanyMetric(
                tenant_id=tenant_id,
                company_id=company.id,
                period=period,
                revenue=Decimal(40_000 + 1_000 * k),
                growth=Decimal("0.02"),
                margin=Decimal("0.06"),
                churn=Decimal("0.05") + Decimal(k) / 1000,
                customers=800 + 10 * k,
            )
        )
    for when, factor in ((date(2026, 6, 30), Decimal(1)), (date(2026, 9, 30), Decimal("0.8"))):
        for method, value in (
            ("revenue_multiple", 1_000_000),
            ("ebitda_multiple", 900_000),
            ("dcf", 1_100_000),
        ):
            v = Decimal(value) * (factor if method == "revenue_multiple" else 1)
            db.add(
                Valuation(
                    tenant_id=tenant_id,
                    company_id=company.id,
                    method=method,
                    value=v,
                    low=v * Decimal("0.85"),
                    high=v * Decimal("1.15"),
                    confidence=Decimal("0.7"),
                    valued_on=when,
                )
            )
    for metric, p25, p50, p75 in (
        ("revenue_growth", "0.03", "0.08", "0.15"),
        ("ebitda_margin", "0.08", "0.12", "0.18"),
        ("monthly_churn", "0.03", "0.05", "0.06"),
    ):
        db.add(
            MarketBenchmark(
                tenant_id=tenant_id,
                industry="Restaurants",
                metric=metric,
                p25=Decimal(p25),
                p50=Decimal(p50),
                p75=Decimal(p75),
                as_of=date(2026, 1, 1),
                source="Test sample",
            )
        )
    db.commit()
    return company
