"""The analytics rules, free of I/O: who may look, which days a filter means, how customers are
bucketed (the seed's segments and CLV buckets), and how a change between periods is read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from doorstep.platform.auth import Role

# The brokerage's analytics are business figures: its admin, broker and analysts see them;
# agents (whose colleagues' production they would reveal) and clients do not.
VIEWER_ROLES = frozenset({Role.admin, Role.broker, Role.analyst})
# Who connects a Square account and uploads orders.
MANAGER_ROLES = frozenset({Role.admin})

PRESETS = {"7d": 7, "30d": 30, "90d": 90}
DEFAULT_PRESET = "30d"
MAX_DAYS = 366 * 10

# The seed's segmentation by orders in the period, and CLV buckets by lifetime spend.
SEGMENTS: tuple[tuple[str, int, int | None], ...] = (
    ("VIP (10+)", 10, None),
    ("Loyal (5-9)", 5, 9),
    ("Regular (2-4)", 2, 4),
    ("New (1)", 1, 1),
)
CLV_BUCKETS: tuple[tuple[str, Decimal, Decimal | None], ...] = (
    ("$0-50", Decimal(0), Decimal(50)),
    ("$50-100", Decimal(50), Decimal(100)),
    ("$100-250", Decimal(100), Decimal(250)),
    ("$250-500", Decimal(250), Decimal(500)),
    ("$500+", Decimal(500), None),
)
CHURN_ALERT = 0.7
# The churn alert counts customers who bought in this many last days of the data.
ACTIVE_DAYS = 90
WEEKDAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")


class FilterError(ValueError):
    """A filter that cannot be read; its message says what to send instead."""


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive
    label: str

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        """The period of the same length just before (the KPI cards compare with it)."""
        end = self.start - timedelta(days=1)
        return Period(end - timedelta(days=self.days - 1), end, "previous period")


def period(
    *, preset: str | None, start: date | None, end: date | None, today: date, first: date | None
) -> Period:
    """A preset (7d, 30d, 90d, ytd, all) ending today, or custom dates (both inclusive).

    `first` is the first day with data, for "all"."""
    if start is not None or end is not None:
        if start is None or end is None:
            raise FilterError("give both start and end (YYYY-MM-DD), or neither")
        if start > end:
            raise FilterError("start must be on or before end")
        if (end - start).days >= MAX_DAYS:
            raise FilterError(f"a range may span at most {MAX_DAYS} days")
        return Period(start, end, f"{start.isoformat()} to {end.isoformat()}")
    name = (preset or DEFAULT_PRESET).lower()
    if name in PRESETS:
        days = PRESETS[name]
        return Period(today - timedelta(days=days - 1), today, f"Last {days} days")
    if name == "ytd":
        return Period(today.replace(month=1, day=1), today, "Year to date")
    if name == "all":
        return Period(min(first or today, today), today, "All time")
    raise FilterError("period must be one of 7d, 30d, 90d, ytd, all")


def change(current: Decimal | float | int, previous: Decimal | float | int) -> float | None:
    """Percent change against the previous period (None when there is nothing to compare)."""
    if not previous:
        return None
    return round((float(current) - float(previous)) / float(previous) * 100, 1)


def segment_of(orders: int) -> str | None:
    for name, low, high in SEGMENTS:
        if orders >= low and (high is None or orders <= high):
            return name
    return None


def clv_bucket(value: Decimal) -> str:
    for name, low, high in CLV_BUCKETS:
        if value >= low and (high is None or value < high):
            return name
    return CLV_BUCKETS[0][0]  # a refund-heavy customer below zero counts as entry level


def next_month(day: date) -> date:
    """The first day of the month after `day`'s."""
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def months_between(first: date, last: date) -> list[date]:
    """First days of the months from `first`'s to `last`'s, inclusive."""
    months, month = [], first.replace(day=1)
    while month <= last:
        months.append(month)
        month = next_month(month)
    return months


def split_by_months(start: date, end: date) -> tuple[list[date], list[tuple[date, date]]]:
    """The calendar months that lie wholly inside [start, end], and the edge day ranges left.

    Long ranges read per-customer monthly rollups for the months and daily ones for the edges."""
    full: list[date] = []
    edges: list[tuple[date, date]] = []
    for month in months_between(start, end):
        last = next_month(month) - timedelta(days=1)
        lo, hi = max(month, start), min(last, end)
        if lo == month and hi == last:
            full.append(month)
        elif edges and edges[-1][1] + timedelta(days=1) == lo:
            edges[-1] = (edges[-1][0], hi)
        else:
            edges.append((lo, hi))
    return full, edges
