"""The `/analytics` dashboard page: filters, KPI cards, AI insights and the nine panels, each
chart a shared spec from web/charts.py; a refused filter is shown with its reason."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from doorstep.analytics import rules, service
from doorstep.platform import accounts
from doorstep.platform.auth import Principal
from doorstep.platform.errors import NotFound, RuleViolation
from doorstep.platform.http import DB, DoorstepRoute, require_role
from doorstep.web import charts
from doorstep.web.formatting import local_time, money, parse_day
from doorstep.web.templating import render

router = APIRouter(route_class=DoorstepRoute, include_in_schema=False)
Viewer = Annotated[Principal, require_role(*rules.VIEWER_ROLES)]
Text = Annotated[str | None, Query(max_length=40)]
PRESETS = {"7d": "7D", "30d": "30D", "90d": "90D", "ytd": "YTD"}


def _number(text: str | None, name: str) -> int | None:
    if not text or not text.strip():
        return None
    if not text.strip().isdigit() or not 0 < int(text) < 2**31:
        raise RuleViolation(f"{name} must be a positive whole number, got {text.strip()!r}")
    return int(text)


def _charts(board: dict[str, Any]) -> dict[str, Any]:
    """The spec of each panel that has data (None: the template shows the empty state)."""
    out: dict[str, Any] = {}
    if board.get("revenue_trend"):
        out["revenue_trend"] = charts.revenue_trend(board["revenue_trend"])
    if (cohorts := board.get("cohorts")) and cohorts["rows"]:
        out["cohorts"] = charts.cohort_heatmap(cohorts["months"], cohorts["rows"])
    if (clv := board.get("clv_distribution")) and any(b["customers"] for b in clv):
        out["clv_distribution"] = charts.histogram(
            clv, x="bucket", y="customers", title="Customers"
        )
    if board.get("top_products"):
        out["top_products"] = charts.top_products(board["top_products"])
    if (segments := board.get("segments")) and any(s["customers"] for s in segments):
        out["segments"] = charts.pie(segments, category="segment", value="customers")
    if (hours := board.get("hourly")) and any(h["orders"] for h in hours):
        out["hourly"] = charts.bars(hours, x="hour", y="revenue", x_title="Hour of day")
    if (days := board.get("weekly")) and any(d["orders"] for d in days):
        out["weekly"] = charts.bars(days, x="day", y="revenue", x_title=None)
    if board.get("by_location"):
        out["by_location"] = charts.bars(
            board["by_location"],
            x="location",
            y="revenue",
            drill=("location_id", "location_id"),
        )
    if (product := board.get("product")) and product["days"]:
        out["product"] = charts.bars(
            [{**d, "date": d["date"].strftime("%b %d")} for d in product["days"]],
            x="date",
            y="revenue",
        )
    return out


@router.get("/analytics", response_class=HTMLResponse)
def analytics_page(
    request: Request,
    db: DB,
    principal: Viewer,
    period: Text = None,
    start: Text = None,
    end: Text = None,
    location_id: Text = None,
    product_id: Text = None,
) -> Response:
    tenant = accounts.get_tenant(db, principal=principal)
    errors: list[str] = []
    try:
        f = service.filters(
            db,
            principal,
            preset=(period or "").strip() or None,
            start=parse_day(start, "Start date"),
            end=parse_day(end, "End date"),
            location_id=_number(location_id, "Location"),
            product_id=_number(product_id, "Product"),
        )
    except (RuleViolation, NotFound) as exc:
        errors.append(exc.detail)
        f = service.filters(db, principal)
    board = service.dashboard(db, f)
    custom = start is not None or end is not None
    chosen = "custom" if custom and not errors else ((period or "").strip().lower() or "30d")
    query = {
        "start": f.period.start.isoformat(),
        "end": f.period.end.isoformat(),
        **({"location_id": f.location_sk} if f.location_sk else {}),
        **({"product_id": f.product_sk} if f.product_sk else {}),
    }
    context = {
        "board": board,
        "charts": _charts(board),
        "errors": errors,
        "presets": PRESETS,
        "chosen": chosen,
        "filters": f,
        "locations": service.locations(db, principal.tenant_id),
        "export_url": "/api/analytics/export.csv?" + urlencode(query),
        "without_product": "/analytics?"
        + urlencode({k: v for k, v in query.items() if k != "product_id"}),
        "money": money,
        "local_time": local_time(tenant),
        "weekdays": rules.WEEKDAYS,
    }
    status = 422 if errors else 200
    return render(request, "analytics/dashboard.html", context, status_code=status, tenant=tenant)
