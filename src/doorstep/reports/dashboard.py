"""The live dashboard's figures (seed 002's `DashboardData`): the portfolio, its alerts and
recommendations, the market benchmarks, and real figures of this server process.

Everything is read through `platform.access.readable()`. A principal's dashboard is cached for
30 s (the seed's figure) per (tenant, role, user); a commit that changes a tenant's valuation
data drops that tenant's entries in this process, and the Socket.IO edge drops them too when
the hub delivers one of the tenant's events (a change made through another process)."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import asdict
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import case, event, func, select
from sqlalchemy.orm import Session

from doorstep.platform.access import readable
from doorstep.platform.auth import Principal, User
from doorstep.platform.db import utcnow
from doorstep.platform.jobs import PENDING, RUNNING, Job
from doorstep.reports import rules
from doorstep.reports.models import (
    Company,
    CompanyMetric,
    MarketBenchmark,
    Report,
    UserActivity,
    Valuation,
)

CACHE_SECONDS = 30.0
RECENT_ITEMS = 12
# Which benchmark each of a company's monthly figures is compared with.
METRIC_BENCHMARKS = {
    "growth": "revenue_growth",
    "margin": "ebitda_margin",
    "churn": "monthly_churn",
}
_WATCHED = (Company, Valuation, CompanyMetric, MarketBenchmark, UserActivity, Report)
_PROCESS_STARTED = time.time()


# --- the cache ----------------------------------------------------------------------------------

_cache: dict[tuple[int, str, int], tuple[float, dict[str, Any]]] = {}
_cache_lock = threading.Lock()


def invalidate_tenant(tenant_id: int) -> None:
    """Forget the cached dashboards of one tenant (its data changed)."""
    with _cache_lock:
        for key in [k for k in _cache if k[0] == tenant_id]:
            del _cache[key]


_CHANGED_KEY = "doorstep.reports.changed_tenants"


@event.listens_for(Session, "after_flush")
def _note_changes(session: Session, _context: Any) -> None:
    for row in (*session.new, *session.dirty, *session.deleted):
        if isinstance(row, _WATCHED):
            session.info.setdefault(_CHANGED_KEY, set()).add(row.tenant_id)


@event.listens_for(Session, "after_commit")
def _drop_changed(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a SAVEPOINT was released: nothing is committed yet (as in platform/events.py)
    for tenant_id in session.info.pop(_CHANGED_KEY, set()):
        invalidate_tenant(tenant_id)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    if not session.in_nested_transaction():
        session.info.pop(_CHANGED_KEY, None)


def _cached(key: tuple[int, str, int], fresh: bool) -> dict[str, Any] | None:
    if fresh:
        return None
    with _cache_lock:
        hit = _cache.get(key)
    if hit is None or hit[0] < time.monotonic():
        return None
    return hit[1]


# --- helpers ------------------------------------------------------------------------------------


def _num(value: Decimal | None, places: int = 4) -> float | None:
    return None if value is None else round(float(value), places)


def _iso(value: date | datetime | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)  # stored in UTC, naive
    return value.isoformat()


def _latest_per(
    db: Session, principal: Principal, model: Any, partition: Any, order: Any, keep: int
) -> list[Any]:
    """The newest `keep` readable rows of `model` per `partition`, newest first."""
    rank = func.row_number().over(partition_by=partition, order_by=order).label("rank")
    ranked = readable(select(model.id.label("id"), rank), principal, model).subquery()
    stmt = (
        select(model)
        .join(ranked, ranked.c.id == model.id)
        .where(ranked.c.rank <= keep)
        .order_by(ranked.c.rank)
    )
    return list(db.scalars(stmt))


# --- the dashboard ------------------------------------------------------------------------------


def dashboard_data(db: Session, principal: Principal, *, fresh: bool = False) -> dict[str, Any]:
    """The seed's DashboardData for `principal`: summary, companies, recent activity, alerts and
    recommendations. Cached 30 s per (tenant, role, user); `fresh` reads the database again."""
    key = (principal.tenant_id, str(principal.role), principal.user_id)
    hit = _cached(key, fresh)
    if hit is not None:
        return hit
    data = _compute(db, principal)
    with _cache_lock:
        _cache[key] = (time.monotonic() + CACHE_SECONDS, data)
    return data


def _compute(db: Session, principal: Principal) -> dict[str, Any]:
    companies = list(db.scalars(readable(select(Company), principal).order_by(Company.name)))
    valuations: dict[int, list[Valuation]] = {}
    for v in _latest_per(  # the two newest of each method: a change is within one method
        db,
        principal,
        Valuation,
        (Valuation.company_id, Valuation.method),
        (Valuation.valued_on.desc(), Valuation.id.desc()),
        2,
    ):
        valuations.setdefault(v.company_id, []).append(v)
    for history in valuations.values():
        history.sort(key=lambda v: (v.valued_on, v.id), reverse=True)
    metrics: dict[int, list[CompanyMetric]] = {}
    for m in _latest_per(
        db, principal, CompanyMetric, CompanyMetric.company_id, CompanyMetric.period.desc(), 13
    ):
        metrics.setdefault(m.company_id, []).append(m)
    benchmarks = {(b.industry, b.metric): b for b in latest_benchmarks(db, principal)}
    total_valuations = db.scalar(readable(select(func.count(Valuation.id)), principal, Valuation))

    rows: list[dict[str, Any]] = []
    alerts: list[dict[str, Any]] = []
    recommendations: list[dict[str, Any]] = []
    portfolio = Decimal(0)
    confidences: list[Decimal] = []
    for company in companies:
        history = valuations.get(company.id, [])
        latest = history[0] if history else None
        # Compared within one method: three methods of one day are not a rise and a fall.
        previous = (
            next((v for v in history[1:] if v.method == latest.method), None) if latest else None
        )
        months = metrics.get(company.id, [])
        row = _company_row(company, latest, previous, months)
        rows.append(row)
        if latest is not None:
            portfolio += latest.value
            confidences.append(latest.confidence)
        if latest is not None and previous is not None:
            drop = rules.valuation_drop(previous.value, latest.value)
            if drop is not None and drop > rules.VALUATION_DROP:
                alert = rules.Alert(
                    level="danger",
                    company_id=company.id,
                    company=company.name,
                    kind="valuation_drop",
                    message=(
                        f"{company.name}'s valuation fell {drop:.1%} since "
                        f"{previous.valued_on.isoformat()} "
                        f"(${previous.value:,.0f} → ${latest.value:,.0f})."
                    ),
                )
                alerts.append(asdict(alert) | {"change": -round(float(drop), 4)})
        if months:
            found = _benchmark_alerts(company, months, benchmarks)
            alerts.extend(a for a, _r in found)
            recommendations.extend(r for _a, r in found)

    average = sum(confidences, Decimal(0)) / len(confidences) if confidences else None
    return {
        "timestamp": utcnow().isoformat(),
        "user_id": principal.user_id,
        "summary": {
            "total_companies": len(companies),
            "total_valuations": int(total_valuations or 0),
            # The mean confidence of each company's latest valuation (the portfolio as it stands).
            "avg_confidence": _num(average, 3),
            # The sum of each company's latest valuation.
            "portfolio_value": _num(portfolio, 2),
        },
        "companies": rows,
        "recent_activity": recent_activity(db, principal),
        "alerts": alerts,
        "recommendations": recommendations,
    }


def _company_row(
    company: Company,
    latest: Valuation | None,
    previous: Valuation | None,
    months: list[CompanyMetric],
) -> dict[str, Any]:
    change = None
    if latest is not None and previous is not None and previous.value > 0:
        change = _num((latest.value - previous.value) / previous.value)
    month = months[0] if months else None
    growth = month.growth if month is not None else None
    if month is not None and growth is None and len(months) > 1 and months[1].revenue > 0:
        before = months[1]
        if before.period == rules.month_start(month.period, -1):
            growth = month.revenue / before.revenue - 1
    return {
        "id": company.id,
        "name": company.name,
        "industry": company.industry,
        "valuation": None
        if latest is None
        else {
            "value": _num(latest.value, 2),
            "low": _num(latest.low, 2),
            "high": _num(latest.high, 2),
            "method": latest.method,
            "method_label": rules.METHODS.get(latest.method, latest.method),
            "confidence": _num(latest.confidence, 3),
            "date": _iso(latest.valued_on),
        },
        "valuation_change": change,
        "previous_valuation": _num(previous.value, 2) if previous is not None else None,
        "revenue": None
        if month is None
        else {
            "period": _iso(month.period),
            "value": _num(month.revenue, 2),
            "growth": _num(growth),
        },
    }


def _yearly_growth(months: list[CompanyMetric]) -> tuple[Decimal, str] | None:
    """The company's yearly revenue growth, to compare with the yearly `revenue_growth`
    benchmark: the latest month against the same month a year earlier when the history has
    it, otherwise the latest month-on-month growth compounded over twelve months."""
    latest = months[0]
    year_ago = next(
        (m for m in months if m.period == rules.month_start(latest.period, -12)),
        None,
    )
    if year_ago is not None and year_ago.revenue > 0:
        return latest.revenue / year_ago.revenue - 1, "year over year"
    if latest.growth is not None:
        return (1 + latest.growth) ** 12 - 1, "latest month, annualised"
    return None


def _benchmark_alerts(
    company: Company,
    months: list[CompanyMetric],
    benchmarks: dict[tuple[str, str], MarketBenchmark],
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    latest = months[0]
    out: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for field, metric in METRIC_BENCHMARKS.items():
        bench = benchmarks.get((company.industry, metric))
        if bench is None:
            continue
        basis = "latest month"
        value: Decimal | None = getattr(latest, field)
        if field == "growth":
            yearly = _yearly_growth(months)
            value, basis = yearly if yearly is not None else (None, basis)
        if value is None or not rules.under_benchmark(metric, value, bench.p25, bench.p75):
            continue
        label = rules.BENCHMARK_METRICS[metric]
        worse = "above the 75th" if not rules.HIGHER_IS_BETTER[metric] else "below the 25th"
        limit = bench.p75 if not rules.HIGHER_IS_BETTER[metric] else bench.p25
        alert = rules.Alert(
            level="warning",
            company_id=company.id,
            company=company.name,
            kind="under_benchmark",
            message=(
                f"{company.name}: {label.lower()} {value:.1%} ({basis}) is {worse} percentile "
                f"of {company.industry} ({limit:.1%}, {bench.source}, {bench.as_of.isoformat()})."
            ),
        )
        details = {
            "metric": metric,
            "value": _num(value),
            "p25": _num(bench.p25),
            "p50": _num(bench.p50),
            "p75": _num(bench.p75),
            "basis": basis,
            "period": _iso(latest.period),
        }
        recommendation = {
            "company_id": company.id,
            "company": company.name,
            "metric": metric,
            "title": f"{company.name}: {label}",
            "message": rules.recommendation_for(metric),
        }
        out.append((asdict(alert) | details, recommendation))
    return out


def recent_activity(db: Session, principal: Principal) -> list[dict[str, Any]]:
    """What people did lately (the activity this principal may read) and the latest reports,
    newest first."""
    actions = list(
        db.scalars(
            readable(select(UserActivity), principal)
            .order_by(UserActivity.at.desc(), UserActivity.id.desc())
            .limit(RECENT_ITEMS)
        )
    )
    reports = list(
        db.scalars(
            readable(select(Report), principal)
            .order_by(Report.created_at.desc(), Report.id.desc())
            .limit(RECENT_ITEMS)
        )
    )
    people = {a.user_id for a in actions} | {r.requested_by for r in reports}
    people.discard(None)
    names: dict[int | None, str] = {}
    if people:
        stmt = readable(select(User.id, User.full_name), principal, User).where(User.id.in_(people))
        names = dict(list(db.execute(stmt)))
    items: list[tuple[datetime, dict[str, Any]]] = [
        (
            a.at,
            {
                "kind": "activity",
                "id": a.id,
                "at": _iso(a.at),
                "action": a.action,
                "subject": a.subject,
                "user_id": a.user_id,
                "user": names.get(a.user_id) if a.user_id else None,
            },
        )
        for a in actions
    ]
    for r in reports:
        template = rules.TEMPLATES.get(r.template)
        items.append(
            (
                r.created_at,
                {
                    "kind": "report",
                    "id": r.id,
                    "at": _iso(r.created_at),
                    "action": f"report {r.status}",
                    "subject": r.title
                    or f"{template.name if template else r.template} ({r.format.upper()})",
                    "user_id": r.requested_by,
                    "user": names.get(r.requested_by) if r.requested_by else None,
                },
            )
        )
    items.sort(key=lambda pair: pair[0], reverse=True)
    return [item for _at, item in items[:RECENT_ITEMS]]


def notifications(db: Session, principal: Principal, *, limit: int) -> dict[str, Any]:
    data = dashboard_data(db, principal)
    return {
        "timestamp": data["timestamp"],
        "alerts": data["alerts"][:limit],
        "recommendations": data["recommendations"][:limit],
        "total_alerts": len(data["alerts"]),
        "total_recommendations": len(data["recommendations"]),
    }


# --- market data --------------------------------------------------------------------------------


def latest_benchmarks(db: Session, principal: Principal) -> list[MarketBenchmark]:
    """The newest benchmark of each (industry, metric) the principal may read."""
    return _latest_per(
        db,
        principal,
        MarketBenchmark,
        (MarketBenchmark.industry, MarketBenchmark.metric),
        (MarketBenchmark.as_of.desc(), MarketBenchmark.id.desc()),
        1,
    )


def market_data(db: Session, principal: Principal) -> dict[str, Any]:
    """Benchmarks by industry and metric, each with its date and source."""
    industries: dict[str, list[dict[str, Any]]] = {}
    order = list(rules.BENCHMARK_METRICS)
    for b in sorted(
        latest_benchmarks(db, principal),
        key=lambda b: (
            b.industry,
            order.index(b.metric) if b.metric in order else len(order),
            b.metric,
        ),
    ):
        industries.setdefault(b.industry, []).append(
            {
                "metric": b.metric,
                "label": rules.BENCHMARK_METRICS.get(b.metric, b.metric),
                # Multiples are shown as "3.2x", the rest as percentages.
                "unit": "multiple" if b.metric.endswith("_multiple") else "fraction",
                "p25": _num(b.p25),
                "p50": _num(b.p50),
                "p75": _num(b.p75),
                "as_of": _iso(b.as_of),
                "source": b.source,
            }
        )
    return {
        "timestamp": utcnow().isoformat(),
        "industries": [{"industry": k, "benchmarks": v} for k, v in industries.items()],
    }


# --- this process's figures ---------------------------------------------------------------------

REQUESTS_FAMILY = "doorstep_http_request_duration_seconds"
# Socket.IO long-polls wait up to the ping interval by design: they are not requests anyone
# waits on, and would drown the latency figures.
_NOT_REQUESTS = frozenset({"/socket.io"})


class RequestWindow:
    """Samples of the Prometheus request histogram, so that rate and percentiles describe the
    last `span` seconds instead of the whole life of the process."""

    def __init__(self, span: float = 60.0) -> None:
        self.span = span
        self._samples: deque[tuple[float, float, dict[float, float]]] = deque()
        self._lock = threading.Lock()

    @staticmethod
    def read(registry: Any) -> tuple[float, dict[float, float]]:
        """Total requests and the cumulative count per bucket bound, over every route."""
        buckets: dict[float, float] = {}
        for family in registry.collect():
            if family.name != REQUESTS_FAMILY:
                continue
            for sample in family.samples:
                if not sample.name.endswith("_bucket"):
                    continue
                if sample.labels.get("route") in _NOT_REQUESTS:
                    continue
                bound = float(sample.labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + sample.value
        return buckets.get(float("inf"), 0.0), buckets

    def measure(self, registry: Any, started: float) -> dict[str, Any]:
        now = time.monotonic()
        total, buckets = self.read(registry)
        with self._lock:
            self._samples.append((now, total, buckets))
            while len(self._samples) > 1 and self._samples[1][0] <= now - self.span:
                self._samples.popleft()
            base = self._samples[0] if len(self._samples) > 1 else None
        if base is None:  # the first look: everything since the process started
            elapsed = max(time.time() - started, 1e-3)
            base_total, base_buckets = 0.0, dict.fromkeys(buckets, 0.0)
        else:
            elapsed = max(now - base[0], 1e-3)
            base_total, base_buckets = base[1], base[2]
        delta = {b: buckets.get(b, 0.0) - base_buckets.get(b, 0.0) for b in buckets}
        count = total - base_total
        return {
            "requests_total": int(total),
            "window_seconds": round(elapsed, 1),
            "window_requests": int(count),
            "requests_per_second": round(count / elapsed, 2),
            "p50_ms": _quantile(delta, 0.50),
            "p95_ms": _quantile(delta, 0.95),
        }


def _quantile(cumulative: dict[float, float], q: float) -> float | None:
    """Prometheus' histogram_quantile: linear within the bucket that holds the quantile; past
    the last finite bound, that bound (the histogram cannot say more)."""
    bounds = sorted(cumulative)
    total = cumulative.get(float("inf"), 0.0)
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = cumulative[bound]
        if count >= rank:
            if bound == float("inf"):
                return round(lower * 1000, 2)
            inside = count - below
            share = (rank - below) / inside if inside > 0 else 1.0
            return round((lower + (bound - lower) * share) * 1000, 2)
        lower, below = bound, count
    return None


def request_window(app: Any) -> RequestWindow:
    window: RequestWindow | None = getattr(app.state, "request_window", None)
    if window is None:
        window = RequestWindow()
        app.state.request_window = window
    return window


def _job_counts(session: Session) -> dict[str, int]:
    due = func.sum(case((Job.run_after <= utcnow(), 1), else_=0))
    rows = session.execute(
        select(Job.status, func.count(Job.id), due)
        .where(Job.status.in_([PENDING, RUNNING]))
        .group_by(Job.status)
    ).all()
    counts = {"pending": 0, "scheduled": 0, "running": 0}
    for status, total, due_now in rows:
        if status == RUNNING:
            counts["running"] += int(total)
        else:
            counts["pending"] += int(due_now or 0)
            counts["scheduled"] += int(total) - int(due_now or 0)
    return counts


def system_metrics(app: Any, session: Session | None = None) -> dict[str, Any]:
    """Figures of this server process: requests (rate, p50/p95 latency over the last minute, from
    its Prometheus registry), live connections, the job queue, live event latency, uptime.

    Reads the jobs table, in `session` when the caller has one open (on SQLite a second session
    of the same thread would wait for the first one's write lock), else in one of its own:
    call it from a thread."""
    if session is None:
        with app.state.sessionmaker() as own:
            return system_metrics(app, own)
    started = float(getattr(app.state, "started_at", _PROCESS_STARTED))
    edge = getattr(app.state, "socketio", None)
    hub = app.state.hub
    socketio_clients = edge.clients if edge is not None else 0
    # The edge's hub subscribers are counted by the hub too: one per watched dashboard user.
    websocket_clients = hub.connections - (edge.hub_subscribers if edge is not None else 0)
    return {
        "timestamp": utcnow().isoformat(),
        "requests": request_window(app).measure(app.state.metrics.registry, started),
        "connections": {
            "websocket": max(0, websocket_clients),
            "socketio": socketio_clients,
        },
        "jobs": _job_counts(session),
        "live_events": app.state.live_latency.percentiles(),
        "uptime_seconds": int(time.time() - started),
        "started_at": datetime.fromtimestamp(started, UTC).isoformat(),
        "interval_seconds": app.state.settings.dashboard_interval_seconds,
    }
