"""Background jobs of the CRM: message delivery, overdue tasks, the nightly heat pass."""

from __future__ import annotations

import logging

from huey import crontab
from sqlalchemy import select
from sqlalchemy.orm import Session

from doorstep.crm import service, tallies
from doorstep.crm.models import LeadMessage, MessageStatus
from doorstep.platform import channels, jobs
from doorstep.platform.auth import Tenant
from doorstep.platform.db import utcnow
from doorstep.platform.jobs import every, job

log = logging.getLogger(__name__)


class MessageFailed(Exception):
    """A retryable send failure, after it is recorded on the message."""


@job("crm.send_message", max_attempts=5, backoff_seconds=30)
def send_message(session: Session, *, message_id: int) -> None:
    """Deliver one lead message over WhatsApp or SMS. Idempotent: a sent one is left alone."""
    message = session.get(LeadMessage, message_id)
    if message is None or message.status in service.DELIVERED:
        return
    settings = jobs.settings_of(session)
    tenant = session.get(Tenant, message.tenant_id)
    content = channels.Content(
        title="",
        body=message.body,
        link=None,
        type_label="",
        tenant_name=tenant.name if tenant else "",
        brand_color=tenant.primary_color if tenant else "#1d6fa5",
        site_url=settings.site_url,
    )
    rendered = channels.render(message.channel, content, reference=f"lead-message-{message.id}")
    transport = channels.transport_for(message.channel, settings)
    if transport is None:
        if settings.captures_messages:
            message.status, message.sent_at = "captured", utcnow()
        else:
            message.status = MessageStatus.failed
            message.error = channels.not_configured_reason(message.channel)
        return
    try:
        message.provider_id = transport.send(message.to_address, rendered)
    except Exception as exc:
        reason = exc.reason if isinstance(exc, channels.DeliveryError) else repr(exc)
        message.status, message.error = MessageStatus.failed, reason[:500]
        session.commit()  # the runner rolls back a raising job; the failure must stay recorded
        if isinstance(exc, channels.DeliveryError) and exc.permanent:
            return
        raise MessageFailed(reason) from exc
    message.status, message.error, message.sent_at = MessageStatus.sent, None, utcnow()


@job("crm.overdue_tasks", max_attempts=3)
def overdue_tasks(session: Session) -> None:
    """Pending tasks past due become overdue and their owners are told."""
    service.mark_overdue(session)


@job("crm.nightly_heat", max_attempts=3)
def nightly_heat(session: Session) -> None:
    """Time in stage cools leads nobody touched; recompute every open lead's heat."""
    for tenant_id in session.scalars(select(Tenant.id)).all():
        service.refresh_all_heat(session, tenant_id=tenant_id)


@job("crm.check_lead_counts", max_attempts=3)
def check_lead_counts(session: Session) -> None:
    """The kept lead counts (crm.tallies) against a plain count: any difference (a bulk write
    that bypassed the ORM) is logged and mended."""
    for tenant_id in session.scalars(select(Tenant.id)).all():
        drift = tallies.drift(session, tenant_id=tenant_id)
        if drift:
            log.warning(
                "lead counts drifted; recounted",
                extra={"tenant_id": tenant_id, "rows": len(drift)},
            )
            tallies.rebuild(session, tenant_id=tenant_id)


every("crm.overdue_tasks", crontab(minute="*/15"))
every("crm.check_lead_counts", crontab(hour="3", minute="10"))
every("crm.nightly_heat", crontab(hour="2", minute="30"))
