"""Chart specs (Vega-Lite, built with Altair) shared by pages and reports.

A spec carries its data inline, so the page embeds it as JSON and vega-embed draws it; a report
renders the same spec to PNG or SVG. Where a chart drills down, its `usermeta.drill` names the
query parameter a click sets and the datum field that holds the value (static/js/charts.js).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import altair as alt

Spec = dict[str, Any]
GREEN, BLUE, ORANGE = "#2fb344", "#206bc4", "#f76707"


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _values(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{key: _plain(value) for key, value in row.items()} for row in rows]


def _finish(chart: alt.TopLevelMixin, *, drill: tuple[str, str] | None = None) -> Spec:
    spec: Spec = chart.to_dict()
    spec.pop("$schema", None)  # the page's vega-lite build is the schema
    if drill is not None:
        spec["usermeta"] = {"drill": {"param": drill[0], "field": drill[1]}}
    return spec


def _base(values: list[dict[str, Any]], height: int = 240) -> alt.Chart:
    return alt.Chart(alt.Data(values=values)).properties(width="container", height=height)


def revenue_trend(rows: Iterable[Mapping[str, Any]]) -> Spec:
    """Daily revenue as bars (left axis) and order count as a line (right axis)."""
    base = _base(_values(rows)).encode(
        x=alt.X("date:T", title=None, axis=alt.Axis(format="%b %d")),
        tooltip=[
            alt.Tooltip("date:T", title="Date", format="%a %b %d, %Y"),
            alt.Tooltip("revenue:Q", title="Revenue", format="$,.2f"),
            alt.Tooltip("orders:Q", title="Orders", format=","),
        ],
    )
    bars = base.mark_bar(color=BLUE, opacity=0.8, cursor="pointer").encode(
        y=alt.Y("revenue:Q", title="Revenue ($)", axis=alt.Axis(format="$,.0f"))
    )
    line = base.mark_line(color=ORANGE, point=True).encode(
        y=alt.Y("orders:Q", title="Orders", axis=alt.Axis(titleColor=ORANGE))
    )
    return _finish(alt.layer(bars, line).resolve_scale(y="independent"), drill=("day", "date"))


def cohort_heatmap(months: list[date], rows: list[Mapping[str, Any]]) -> Spec:
    cells = [
        {
            "cohort": row["cohort"].strftime("%b %Y"),
            "cohort_order": row["cohort"].isoformat(),
            "month": month.strftime("%b %Y"),
            "month_order": month.isoformat(),
            "retention": value,
        }
        for row in rows
        for month, value in zip(months, row["values"], strict=True)
        if value is not None
    ]
    base = _base(cells, height=max(120, 24 * len(rows))).encode(
        x=alt.X("month:O", title="Purchase month", sort=alt.SortField("month_order")),
        y=alt.Y("cohort:O", title="Acquisition cohort", sort=alt.SortField("cohort_order")),
    )
    heat = base.mark_rect().encode(
        color=alt.Color(
            "retention:Q",
            title="Retention %",
            scale=alt.Scale(scheme="redyellowgreen", domain=[0, 100]),
        ),
        tooltip=[
            alt.Tooltip("cohort:O", title="Cohort"),
            alt.Tooltip("month:O", title="Month"),
            alt.Tooltip("retention:Q", title="Retention %", format=".1f"),
        ],
    )
    labels = base.mark_text(fontSize=10).encode(text=alt.Text("retention:Q", format=".0f"))
    return _finish(heat + labels)


def histogram(rows: Iterable[Mapping[str, Any]], *, x: str, y: str, title: str) -> Spec:
    values = _values(rows)
    order = [row[x] for row in values]
    chart = (
        _base(values)
        .mark_bar(color=GREEN)
        .encode(
            x=alt.X(f"{x}:N", title=None, sort=order, axis=alt.Axis(labelAngle=0)),
            y=alt.Y(f"{y}:Q", title=title),
            tooltip=[alt.Tooltip(f"{x}:N"), alt.Tooltip(f"{y}:Q", format=",")],
        )
    )
    return _finish(chart)


def top_products(rows: Iterable[Mapping[str, Any]]) -> Spec:
    values = _values(rows)
    base = _base(values, height=max(120, 26 * len(values))).encode(
        y=alt.Y("product:N", title=None, sort="-x"),
        x=alt.X("revenue:Q", title="Revenue ($)", axis=alt.Axis(format="$,.0f")),
        tooltip=[
            alt.Tooltip("product:N", title="Product"),
            alt.Tooltip("revenue:Q", title="Revenue", format="$,.2f"),
            alt.Tooltip("quantity:Q", title="Units", format=","),
        ],
    )
    bars = base.mark_bar(color=BLUE, cursor="pointer")
    labels = base.mark_text(align="left", dx=4, fontSize=11).encode(
        text=alt.Text("revenue:Q", format="$,.0f")
    )
    return _finish(bars + labels, drill=("product_id", "product_id"))


def pie(rows: Iterable[Mapping[str, Any]], *, category: str, value: str) -> Spec:
    values = _values(rows)
    chart = (
        _base(values)
        .mark_arc(innerRadius=40)
        .encode(
            theta=alt.Theta(f"{value}:Q", stack=True),
            color=alt.Color(
                f"{category}:N",
                sort=[row[category] for row in values],
                legend=alt.Legend(title=None, orient="right"),
            ),
            tooltip=[alt.Tooltip(f"{category}:N"), alt.Tooltip(f"{value}:Q", format=",")],
        )
    )
    return _finish(chart)


def bars(
    rows: Iterable[Mapping[str, Any]],
    *,
    x: str,
    y: str,
    x_title: str | None = None,
    money: bool = True,
    drill: tuple[str, str] | None = None,
) -> Spec:
    values = _values(rows)
    y_format = "$,.0f" if money else ","
    chart = (
        _base(values)
        .mark_bar(color=BLUE, cursor="pointer" if drill else "default")
        .encode(
            x=alt.X(f"{x}:O", title=x_title, sort=None, axis=alt.Axis(labelAngle=0)),
            y=alt.Y(f"{y}:Q", title=None, axis=alt.Axis(format=y_format)),
            tooltip=[
                alt.Tooltip(f"{x}:O", title=x_title or x),
                alt.Tooltip(f"{y}:Q", format="$,.2f" if money else ","),
            ],
        )
    )
    return _finish(chart, drill=drill)


def valuation_comparison(rows: Iterable[Mapping[str, Any]], *, label: str = "Method") -> Spec:
    """Seed 002: each method's (or company's: `label`) value as a bar with its low-high range
    (rows: method, value, low, high)."""
    values = _values(rows)
    base = _base(values).encode(x=alt.X("method:N", title=None, axis=alt.Axis(labelAngle=0)))
    tooltip = [
        alt.Tooltip("method:N", title=label),
        alt.Tooltip("value:Q", title="Value", format="$,.0f"),
        alt.Tooltip("low:Q", title="Low", format="$,.0f"),
        alt.Tooltip("high:Q", title="High", format="$,.0f"),
    ]
    bars = base.mark_bar(color=BLUE, opacity=0.85).encode(
        y=alt.Y("value:Q", title="Value ($)", axis=alt.Axis(format="$,.2s")), tooltip=tooltip
    )
    ranges = base.mark_rule(color=ORANGE, strokeWidth=2).encode(y="low:Q", y2="high:Q")
    ticks = base.mark_tick(color=ORANGE, thickness=2, size=18).encode(y="high:Q")
    low_ticks = base.mark_tick(color=ORANGE, thickness=2, size=18).encode(y="low:Q")
    return _finish(bars + ranges + ticks + low_ticks)


def growth_projections(rows: Iterable[Mapping[str, Any]]) -> Spec:
    """Seed 002: monthly revenue, actual then projected by scenario (rows: month, revenue,
    scenario in actual/low/base/high)."""
    values = _values(rows)
    chart = (
        _base(values)
        .mark_line(point=True)
        .encode(
            x=alt.X("month:T", title=None, axis=alt.Axis(format="%b %Y")),
            y=alt.Y("revenue:Q", title="Revenue ($)", axis=alt.Axis(format="$,.2s")),
            color=alt.Color(
                "scenario:N",
                sort=["actual", "low", "base", "high"],
                scale=alt.Scale(
                    domain=["actual", "low", "base", "high"],
                    range=[BLUE, "#d63939", ORANGE, GREEN],
                ),
                legend=alt.Legend(title=None, orient="top"),
            ),
            strokeDash=alt.condition(
                alt.datum.scenario == "actual", alt.value([1, 0]), alt.value([5, 3])
            ),
            tooltip=[
                alt.Tooltip("month:T", title="Month", format="%B %Y"),
                alt.Tooltip("scenario:N", title="Scenario"),
                alt.Tooltip("revenue:Q", title="Revenue", format="$,.0f"),
            ],
        )
    )
    return _finish(chart)


def benchmark_analysis(rows: Iterable[Mapping[str, Any]]) -> Spec:
    """Seed 002: the company against its industry's 25th-75th percentile band and median, one
    row per metric (rows: metric, company, p25, p50, p75; fractions shown as percentages)."""
    values = _values(rows)
    base = _base(values, height=max(120, 48 * len(values))).encode(
        y=alt.Y("metric:N", title=None, sort=None)
    )
    band = base.mark_bar(color="#d0def5", height=16).encode(
        x=alt.X("p25:Q", title=None, axis=alt.Axis(format="%")), x2="p75:Q"
    )
    median = base.mark_tick(color=BLUE, thickness=2, size=20).encode(x="p50:Q")
    company = base.mark_point(color=ORANGE, filled=True, size=120, shape="diamond").encode(
        x="company:Q",
        tooltip=[
            alt.Tooltip("metric:N", title="Metric"),
            alt.Tooltip("company:Q", title="Company", format=".1%"),
            alt.Tooltip("p25:Q", title="25th percentile", format=".1%"),
            alt.Tooltip("p50:Q", title="Median", format=".1%"),
            alt.Tooltip("p75:Q", title="75th percentile", format=".1%"),
        ],
    )
    return _finish(band + median + company)
