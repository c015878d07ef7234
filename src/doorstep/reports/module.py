"""The reports module's entry (seed 002): valuation data, the report builder (PDF, DOCX, XLSX,
PPTX, JSON) with history and schedules, and the real-time business dashboard (Socket.IO)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import APIRouter

from doorstep.modules import Module, NavItem
from doorstep.platform.auth import Role


@cache
def _routers() -> tuple[APIRouter, APIRouter]:
    from doorstep.reports import data_api, live
    from doorstep.reports.api import router as reports_api
    from doorstep.reports.pages import router as reports_pages

    api, pages = APIRouter(), APIRouter()
    api.include_router(reports_api)
    api.include_router(live.api)
    api.include_router(data_api.router)
    pages.include_router(reports_pages)
    pages.include_router(live.pages)
    return api, pages


def reports_module() -> Module:
    from doorstep.reports import models, tasks  # noqa: F401 - tables and jobs
    from doorstep.reports.demo import seed_demo

    api, pages = _routers()
    viewers = frozenset({Role.admin, Role.broker, Role.analyst})
    return Module(
        name="reports",
        api=api,
        pages=pages,
        templates=Path(__file__).parent / "templates",
        nav=(
            NavItem("Reports", "/reports", "file-text", viewers),
            NavItem("Live dashboard", "/realtime-dashboard", "activity-heartbeat", viewers),
        ),
        seed_demo=seed_demo,
    )
