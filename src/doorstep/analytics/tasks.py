"""Background jobs of the analytics module: the hourly Square sync of every connected tenant."""

from __future__ import annotations

import logging

from huey import crontab
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from doorstep.analytics.models import AnalyticsSource
from doorstep.analytics.square import SquareAuthError
from doorstep.analytics.sync import SquareNotConfigured, UnknownTenant, sync_square
from doorstep.platform import jobs
from doorstep.platform.db import utcnow
from doorstep.platform.jobs import every, job

log = logging.getLogger(__name__)

SYNC = "analytics.sync_square"
SYNC_ALL = "analytics.sync_square_all"


def _factory(session: Session) -> sessionmaker[Session]:
    """Sessions like the job's own: the runner's factory, else one on the same bind."""
    runner = session.info.get(jobs.RUNNER_KEY)
    if runner is not None:
        factory: sessionmaker[Session] = runner.factory
        return factory
    return sessionmaker(bind=session.get_bind(), expire_on_commit=False)


@job(SYNC, max_attempts=3, backoff_seconds=120)
def sync_square_job(session: Session, *, tenant_id: int) -> None:
    """An incremental Square sync of one tenant. The sync commits page by page in sessions of
    its own, so the job's transaction ends first (on SQLite it would hold the write lock). A
    missing or refused token is recorded in `last_sync_status` and not retried (retrying cannot
    fix it); anything else (Square down, rate limits beyond the SDK's retries) is retried."""
    session.commit()
    try:
        sync_square(_factory(session), tenant_id)
    except (SquareNotConfigured, SquareAuthError, UnknownTenant) as exc:
        log.warning("Square sync of tenant %s not run: %s", tenant_id, exc)


@job(SYNC_ALL, max_attempts=1)
def sync_square_all(session: Session) -> None:
    """Enqueue a sync for every tenant with a Square token, once per tenant and hour."""
    hour = utcnow().strftime("%Y%m%dT%H")
    tenant_ids = session.scalars(
        select(AnalyticsSource.tenant_id)
        .where(AnalyticsSource.square_token != "")
        .order_by(AnalyticsSource.tenant_id)
    ).all()
    for tenant_id in tenant_ids:
        jobs.enqueue(
            session,
            SYNC,
            args={"tenant_id": tenant_id},
            key=f"{SYNC}:{tenant_id}:{hour}",
            tenant_id=tenant_id,
        )


every(SYNC_ALL, crontab(minute="7"))
