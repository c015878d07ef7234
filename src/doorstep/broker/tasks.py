"""Background jobs of the broker module: the monthly `agent_kpis` snapshots."""

from __future__ import annotations

from huey import crontab
from sqlalchemy import select
from sqlalchemy.orm import Session

from doorstep.broker import service
from doorstep.platform.auth import Tenant
from doorstep.platform.jobs import every, job


@job("broker.snapshots", max_attempts=3)
def snapshots(session: Session, *, months: int = 1) -> None:
    """Write the last `months` complete months' KPI snapshots of every tenant (idempotent)."""
    for tenant_id in session.scalars(select(Tenant.id)).all():
        service.backfill(session, tenant_id=tenant_id, months=months)


# Early on the 1st: last month is complete; the 2nd run in a month rewrites the same rows.
every("broker.snapshots", crontab(day="1", hour="3", minute="15"))
