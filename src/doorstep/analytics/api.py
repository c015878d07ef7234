"""JSON routes of seed 001 under /api/analytics: the whole dashboard, the CSV export (streamed),
the locations, and loading orders from a CSV file. Parse, call the service, shape the answer."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session, sessionmaker

from doorstep.analytics import service
from doorstep.platform.auth import Principal
from doorstep.platform.http import DB, CurrentPrincipal, DoorstepRoute, read_csv_upload

router = APIRouter(prefix="/api/analytics", route_class=DoorstepRoute, tags=["analytics"])

Start = Annotated[date | None, Query(description="First day (YYYY-MM-DD), inclusive")]
End = Annotated[date | None, Query(description="Last day (YYYY-MM-DD), inclusive")]
Preset = Annotated[
    str | None,
    Query(pattern=r"^(7d|30d|90d|ytd|all)$", description="7d, 30d (default), 90d, ytd, all"),
]
LocationId = Annotated[int | None, Query(ge=1, le=2_147_483_647)]
ProductId = Annotated[int | None, Query(ge=1, le=2_147_483_647)]
MAX_CSV_BYTES = 50 * 1024 * 1024
EXPORT_BATCH = 2000  # rows per chunk of the streamed export


def plain(value: Any) -> Any:
    """JSON-ready: dates as ISO strings, money as numbers with cents."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _filters(
    db: DB,
    principal: CurrentPrincipal,
    start: Start = None,
    end: End = None,
    period: Preset = None,
    location_id: LocationId = None,
    product_id: ProductId = None,
) -> service.Filters:
    """The query's filters, checked against the caller's tenant (the dashboard and the export
    read the same ones)."""
    return service.filters(
        db,
        principal,
        preset=period,
        start=start,
        end=end,
        location_id=location_id,
        product_id=product_id,
    )


Chosen = Annotated[service.Filters, Depends(_filters)]


@router.get("/dashboard")
def dashboard(db: DB, f: Chosen) -> dict[str, Any]:
    """Every KPI and panel of the dashboard for the filters (30 days to today by default)."""
    return plain(service.dashboard(db, f))


@router.get("/locations")
def locations(db: DB, principal: CurrentPrincipal) -> list[dict[str, Any]]:
    service.require_viewer(principal)
    return service.locations(db, principal.tenant_id)


def _csv_stream(factory: sessionmaker[Session], f: service.Filters) -> Iterator[str]:
    """Rows as they are read, in their own session (the request's is closed by then)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(service.EXPORT_HEADER)
    with factory() as session:
        for n, row in enumerate(service.export_rows(session, f), start=1):
            writer.writerow(plain(list(row)))
            if n % EXPORT_BATCH == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()


@router.get("/export.csv")
def export_csv(request: Request, f: Chosen) -> StreamingResponse:
    """The filtered data as CSV: date, location, product, quantity, revenue, order_count."""
    name = f"sales_{f.period.start.isoformat()}_{f.period.end.isoformat()}.csv"
    return StreamingResponse(
        _csv_stream(request.app.state.sessionmaker, f),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _report(db: Session, principal: Principal, text: str, dry_run: bool) -> dict[str, Any]:
    report = service.import_orders_csv(db, principal, text, dry_run=dry_run)
    return {
        "dry_run": report.dry_run,
        "rows": report.rows,
        "orders": report.orders,
        "invalid_rows": len(report.problems),
        "loaded_orders": report.loaded.orders if report.loaded else 0,
        "loaded_lines": report.loaded.lines if report.loaded else 0,
        "problems": [{"line": p.line, "errors": p.errors} for p in report.problems[:500]],
    }


@router.post("/imports")
async def import_orders(
    db: DB,
    principal: CurrentPrincipal,
    file: Annotated[UploadFile, File(description="CSV of order lines (docs: analytics/imports)")],
    dry_run: Annotated[bool, Form()] = True,
) -> dict[str, Any]:
    """Check (dry_run, the default) or load orders from a CSV. Orders with a bad row are left
    out whole and listed in `problems`; the others load."""
    service.require_manager(principal)
    text = await read_csv_upload(file, max_bytes=MAX_CSV_BYTES)
    return await run_in_threadpool(_report, db, principal, text, dry_run)
