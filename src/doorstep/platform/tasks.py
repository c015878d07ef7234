"""The platform's own background jobs."""

from __future__ import annotations

from datetime import timedelta

from huey import crontab
from sqlalchemy.orm import Session

from doorstep.config import get_settings
from doorstep.platform import events
from doorstep.platform.jobs import every, job


@job("events.prune", max_attempts=3)
def prune_events(session: Session, *, days: int | None = None) -> None:
    """Drop outbox events past the retention window (clients older than that reload)."""
    keep = days if days is not None else get_settings().event_retention_days
    events.prune(session, older_than=timedelta(days=keep))


every("events.prune", crontab(minute="17"))
