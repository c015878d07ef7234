"""Background jobs of the analytics module: the hourly Square sync of every connected tenant and
the weekly training of the sales models."""

from __future__ import annotations

import logging

from huey import crontab
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from doorstep.analytics.models import AnalyticsSource, DailySalesSummary
from doorstep.analytics.square import SquareAuthError
from doorstep.analytics.sync import SquareNotConfigured, UnknownTenant, sync_square
from doorstep.platform import jobs
from doorstep.platform.db import utcnow
from doorstep.platform.jobs import every, job

log = logging.getLogger(__name__)

SYNC = "analytics.sync_square"
SYNC_ALL = "analytics.sync_square_all"
TRAIN = "analytics.train"
TRAIN_ALL = "analytics.train_all"


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


@job(TRAIN, max_attempts=2, backoff_seconds=600)
def train_job(session: Session, *, tenant_id: int, model: str = "all") -> None:
    """Retrain one tenant's sales models; a model without enough data is skipped (logged)."""
    # Imported here: pandas, scikit-learn and SciPy take a second to load, and only the process
    # that trains needs them (not every server and worker at start-up).
    from doorstep.analytics import ml, training

    for name in training.MODELS if model == "all" else (model,):
        try:
            with session.begin_nested():
                training.train(session, tenant_id, name)
        except ml.NotEnoughData as exc:
            log.info("analytics model %s of tenant %s not trained: %s", name, tenant_id, exc)


@job(TRAIN_ALL, max_attempts=1)
def train_all(session: Session) -> None:
    """Enqueue the weekly training of every tenant with sales, once per tenant and week."""
    week = utcnow().strftime("%G-W%V")
    with_sales = select(DailySalesSummary.tenant_id).distinct()
    for tenant_id in session.scalars(with_sales).all():
        jobs.enqueue(
            session,
            TRAIN,
            args={"tenant_id": tenant_id},
            key=f"{TRAIN}:{tenant_id}:{week}",
            tenant_id=tenant_id,
        )


every(TRAIN_ALL, crontab(day_of_week="1", hour="3", minute="30"))  # Mondays, 03:30 UTC
