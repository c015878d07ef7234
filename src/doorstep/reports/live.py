"""The real-time business dashboard (seed 002): `/api/realtime/*` and `/realtime-dashboard`.

The page is server-rendered from the same figures the API and the Socket.IO edge (sio.py) send,
so it reads before the socket connects; realtime_dashboard.js keeps it live."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from doorstep.platform import accounts
from doorstep.platform.auth import Principal
from doorstep.platform.http import DB, DoorstepRoute, require_role
from doorstep.reports import dashboard, rules
from doorstep.web import charts
from doorstep.web.templating import render

api = APIRouter(prefix="/api/realtime", route_class=DoorstepRoute, tags=["realtime"])
pages = APIRouter(route_class=DoorstepRoute, include_in_schema=False)
Viewer = Annotated[Principal, require_role(*rules.VIEWER_ROLES)]


@api.get("/dashboard-data")
def dashboard_data(db: DB, principal: Viewer) -> dict[str, Any]:
    """The seed's DashboardData: summary, companies, recent activity, alerts, recommendations
    (cached 30 s per user)."""
    return dashboard.dashboard_data(db, principal)


@api.get("/metrics/live")
def live_metrics(request: Request, principal: Viewer) -> dict[str, Any]:
    """This server process's figures: request rate and latency over the last minute, live
    connections, the job queue, uptime."""
    return dashboard.system_metrics(request.app)


@api.get("/notifications")
def notifications(
    db: DB, principal: Viewer, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> dict[str, Any]:
    """Alerts and recommendations derived from the portfolio (at most `limit` of each)."""
    return dashboard.notifications(db, principal, limit=limit)


@pages.get("/realtime-dashboard", response_class=HTMLResponse)
def realtime_dashboard(request: Request, db: DB, principal: Viewer) -> Response:
    tenant = accounts.get_tenant(db, principal=principal)
    board = dashboard.dashboard_data(db, principal)
    valued = [
        {"method": c["name"], **{k: c["valuation"][k] for k in ("value", "low", "high")}}
        for c in board["companies"]
        if c["valuation"]
    ]
    context = {
        "board": board,
        # The same spec the reports draw (web/charts.py), here one bar per company.
        "valuations_chart": charts.valuation_comparison(valued, label="Company")
        if valued
        else None,
        "market": dashboard.market_data(db, principal),
        "system": dashboard.system_metrics(request.app, db),
        "metric_labels": rules.BENCHMARK_METRICS,
    }
    return render(request, "reports/realtime_dashboard.html", context, tenant=tenant)
