"""Background jobs of the transactions module: predictions after each change, the nightly pass."""

from __future__ import annotations

from huey import crontab
from sqlalchemy import select
from sqlalchemy.orm import Session

from doorstep.platform.auth import Tenant
from doorstep.platform.jobs import every, job
from doorstep.transactions import service
from doorstep.transactions.models import Transaction


@job("transactions.predict", max_attempts=3)
def predict(session: Session, *, transaction_id: int) -> None:
    """Re-predict a deal after it changed (the prediction panel reads the newest)."""
    tx = session.get(Transaction, transaction_id)
    if tx is not None and tx.escrow_status in ("Active", "Pending"):
        service.refresh_prediction(session, transaction=tx)


@job("transactions.rescore", max_attempts=3)
def rescore(session: Session, *, tenant_id: int) -> None:
    """New health weights: rescore the tenant's open deals."""
    service.daily_pass(session, tenant_id=tenant_id)


@job("transactions.daily", max_attempts=3)
def daily(session: Session) -> None:
    """Time moves health and countdowns even when nobody touches a deal."""
    for tenant_id in session.scalars(select(Tenant.id)).all():
        service.daily_pass(session, tenant_id=tenant_id)


every("transactions.daily", crontab(hour="6", minute="5"))
