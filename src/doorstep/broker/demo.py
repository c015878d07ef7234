"""Demo data of the broker module: a year of monthly KPI snapshots for every brokerage, so the
agent reports show month-over-month trends from the start."""

from __future__ import annotations

from sqlalchemy import func, select

from doorstep.broker import service
from doorstep.broker.models import AgentKpi
from doorstep.demo import DemoContext

MONTHS = 12


def seed_demo(ctx: DemoContext) -> None:
    for tenant in ctx.tenants.values():
        done = ctx.session.scalar(
            select(func.count()).select_from(AgentKpi).where(AgentKpi.tenant_id == tenant.id)
        )
        if not done:
            service.backfill(ctx.session, tenant_id=tenant.id, months=MONTHS)
