"""The notification centre: notifications, each user's settings by type and channel, and the
deliveries to e-mail, SMS and WhatsApp (sent by the `notify.deliver` job through channels.py)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    func,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from doorstep.platform import channels, events, jobs
from doorstep.platform.auth import Principal, Role, Tenant, User
from doorstep.platform.db import Base, TenantMixin, utcnow
from doorstep.platform.errors import Forbidden, NotFound, RuleViolation

log = logging.getLogger("doorstep.notify")


class Channel(StrEnum):
    in_app = "in_app"
    email = "email"
    sms = "sms"
    whatsapp = "whatsapp"


CHANNEL_LABELS = {
    Channel.in_app: "In the app",
    Channel.email: "E-mail",
    Channel.sms: "SMS",
    Channel.whatsapp: "WhatsApp",
}
DEFAULT_CHANNELS = frozenset({Channel.in_app, Channel.email})


class DeliveryStatus(StrEnum):
    queued = "queued"
    sent = "sent"
    failed = "failed"
    captured = "captured"  # kept for /admin/outbox: the channel is not configured here


# --- the notification types modules declare -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class NotificationType:
    key: str
    label: str
    description: str = ""
    defaults: frozenset[Channel] = DEFAULT_CHANNELS
    # Who is offered the type in their settings; None: every role.
    roles: frozenset[Role] | None = None

    def offered_to(self, role: Role) -> bool:
        return self.roles is None or role in self.roles


_types: dict[str, NotificationType] = {}
# Files an e-mail of a type carries, found from its notification (a module registers them).
Attacher = Callable[[Session, "Notification"], list[channels.Attachment]]
_attachers: dict[str, Attacher] = {}


def register_attachments(key: str, attacher: Attacher) -> None:
    """E-mails of type `key` carry the files `attacher(session, notification)` returns."""
    notification_type(key)
    _attachers[key] = attacher


def register_type(
    key: str,
    *,
    label: str,
    description: str = "",
    defaults: Iterable[Channel] = DEFAULT_CHANNELS,
    roles: Iterable[Role] | None = None,
) -> NotificationType:
    """Declare a notification type (`lead.assigned`); its users can then choose its channels."""
    kind = NotificationType(
        key=key,
        label=label,
        description=description,
        defaults=frozenset(defaults),
        roles=frozenset(roles) if roles is not None else None,
    )
    _types[key] = kind
    return kind


def notification_type(key: str) -> NotificationType:
    try:
        return _types[key]
    except KeyError:
        raise LookupError(f"no notification type {key!r}; register it first") from None


def type_label(key: str) -> str:
    """A type's label, or its key when no module in this process registered it."""
    kind = _types.get(key)
    return kind.label if kind is not None else key


def types_for(role: Role) -> list[NotificationType]:
    return [t for t in _types.values() if t.offered_to(role)]


ACCOUNT_UPDATED = register_type(
    "account.updated",
    label="Changes to your account",
    description="An admin changed your name, role, phone, password or access.",
)
SYSTEM_TEST = register_type(
    "system.test",
    label="Test notifications",
    description="Sent when you press “Send me a test notification”, to check your channels.",
    roles=[Role.admin],
)


# --- tables -----------------------------------------------------------------------------------


class Notification(TenantMixin, Base):
    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_id_read_at", "user_id", "read_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(500), default=None)
    # False when the user turned the in-app channel off for this type: the row exists for its
    # deliveries but stays out of the list and the unread count.
    in_app: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(default=None)


class NotificationPreference(TenantMixin, Base):
    """A user's choice for one type and channel; without a row, the type's defaults apply."""

    __tablename__ = "notification_preferences"
    __table_args__ = (UniqueConstraint("user_id", "type", "channel"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    enabled: Mapped[bool] = mapped_column(Boolean)


class Delivery(TenantMixin, Base):
    """One notification on one outside channel: where it went, what it said, how it went."""

    __tablename__ = "notification_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    notification_id: Mapped[int] = mapped_column(
        ForeignKey("notifications.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str | None] = mapped_column(String(254), default=None)
    status: Mapped[str] = mapped_column(String(12), default=DeliveryStatus.queued, index=True)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    attempts: Mapped[int] = mapped_column(default=0)
    subject: Mapped[str | None] = mapped_column(String(200), default=None)
    text: Mapped[str | None] = mapped_column(Text, default=None)
    html: Mapped[str | None] = mapped_column(Text, default=None)
    provider_id: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)


# --- creating notifications -------------------------------------------------------------------


def _check_link(link: str | None) -> str | None:
    # Links point into the site; anything else (javascript:, another host) would turn the
    # notification centre into a phishing channel.
    if link is None:
        return None
    if not link.startswith("/") or link.startswith("//") or "\\" in link or len(link) > 500:
        raise ValueError(f"a notification link must be a path on this site, not {link!r}")
    return link


def _unread(session: Session, user_id: int) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(
                Notification.user_id == user_id,
                Notification.in_app.is_(True),
                Notification.read_at.is_(None),
            )
        )
        or 0
    )


def enabled_channels(session: Session, *, user_id: int, type: str) -> set[Channel]:
    kind = notification_type(type)
    chosen = dict(
        session.execute(
            select(NotificationPreference.channel, NotificationPreference.enabled).where(
                NotificationPreference.user_id == user_id, NotificationPreference.type == type
            )
        ).all()
    )
    return {c for c in Channel if chosen.get(str(c), c in kind.defaults)}


def _address(user: User, channel: Channel) -> str | None:
    return user.email if channel == Channel.email else user.phone


def notify(
    session: Session,
    *,
    user_id: int,
    type: str,
    title: str,
    body: str,
    link: str | None = None,
    channels: set[Channel] | None = None,
) -> Notification | None:
    """Notify a user on the channels they chose for `type` (or on `channels`, when a module
    keeps its own choice, like the broker's notification settings); None when there are none
    or the user is inactive. The live announcement and the delivery jobs go out only if the
    caller commits."""
    notification_type(type)
    link = _check_link(link)
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"User {user_id} not found")
    if not user.is_active:
        wanted: set[Channel] = set()
    elif channels is not None:
        wanted = channels
    else:
        wanted = enabled_channels(session, user_id=user_id, type=type)
    if not wanted:
        return None
    row = Notification(
        tenant_id=user.tenant_id,
        user_id=user.id,
        type=type,
        title=title[:200],
        body=body,
        link=link,
        in_app=Channel.in_app in wanted,
    )
    session.add(row)
    session.flush()
    if row.in_app:
        events.record(
            session,
            tenant_id=user.tenant_id,
            channels=[f"user:{user.id}"],
            type="notification.created",
            data={
                "id": row.id,
                "type": type,
                "title": row.title,
                "body": row.body,
                "link": link,
                "created_at": row.created_at.isoformat(),
                "unread": _unread(session, user.id),
            },
            audience=events.Audience.user(user.id),
        )
    for channel in (c for c in Channel if c in wanted and c != Channel.in_app):
        delivery = Delivery(
            tenant_id=user.tenant_id,
            notification_id=row.id,
            channel=channel,
            address=_address(user, channel),
        )
        if delivery.address is None:
            delivery.status, delivery.reason = DeliveryStatus.failed, "The user has no phone number"
        session.add(delivery)
        session.flush()
        if delivery.status == DeliveryStatus.queued:
            jobs.enqueue(
                session,
                "notify.deliver",
                args={"delivery_id": delivery.id},
                key=f"deliver:{delivery.id}",
                tenant_id=user.tenant_id,
            )
    return row


def send_test(session: Session, *, principal: Principal) -> Notification | None:
    """The admin's "send me a test notification": one notification on their own channels."""
    if principal.role != Role.admin:
        raise Forbidden("Only an admin can send test notifications")
    return notify(
        session,
        user_id=principal.user_id,
        type=SYSTEM_TEST.key,
        title="Test notification",
        body=f"Sent at {utcnow():%Y-%m-%d %H:%M} UTC to check that your channels work.",
        link="/notifications",
    )


# --- the centre: a user's own notifications ------------------------------------------------------


def _own(principal: Principal) -> Any:
    return (
        (Notification.user_id == principal.user_id)
        & (Notification.tenant_id == principal.tenant_id)
        & Notification.in_app.is_(True)
    )


def unread_count(session: Session, *, principal: Principal) -> int:
    return _unread(session, principal.user_id)


def list_notifications(
    session: Session,
    *,
    principal: Principal,
    unread_only: bool = False,
    page: int = 1,
    per_page: int = 25,
    types: Iterable[str] | None = None,
) -> tuple[list[Notification], int]:
    stmt = select(Notification).where(_own(principal))
    if types is not None:
        stmt = stmt.where(Notification.type.in_(list(types)))
    if unread_only:
        stmt = stmt.where(Notification.read_at.is_(None))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(
        stmt.order_by(Notification.id.desc()).limit(per_page).offset((page - 1) * per_page)
    )
    return list(rows), total


def get_notification(
    session: Session, *, principal: Principal, notification_id: int
) -> Notification:
    """One of the principal's own notifications; anybody else's is "not found", never 403."""
    row = session.scalar(
        select(Notification).where(Notification.id == notification_id, _own(principal))
    )
    if row is None:
        raise NotFound(f"Notification {notification_id} not found")
    return row


def deliveries_of(
    session: Session, *, principal: Principal, notification_id: int
) -> list[Delivery]:
    get_notification(session, principal=principal, notification_id=notification_id)
    return list(
        session.scalars(
            select(Delivery)
            .where(Delivery.notification_id == notification_id)
            .order_by(Delivery.id)
        )
    )


def _announce_read(session: Session, principal: Principal, ids: list[int] | None) -> int:
    unread = _unread(session, principal.user_id)
    events.record(
        session,
        tenant_id=principal.tenant_id,
        channels=[f"user:{principal.user_id}"],
        type="notification.read",
        data={"ids": ids, "all": ids is None, "unread": unread},
        audience=events.Audience.user(principal.user_id),
    )
    return unread


def mark_read(session: Session, *, principal: Principal, notification_id: int) -> Notification:
    row = get_notification(session, principal=principal, notification_id=notification_id)
    if row.read_at is None:
        row.read_at = utcnow()
        session.flush()
        _announce_read(session, principal, [row.id])
    return row


def mark_all_read(session: Session, *, principal: Principal) -> int:
    """Mark every unread notification read; returns how many were."""
    result = session.execute(
        update(Notification)
        .where(_own(principal), Notification.read_at.is_(None))
        .values(read_at=utcnow())
        .execution_options(synchronize_session="fetch")
    )
    marked = int(result.rowcount or 0)  # type: ignore[attr-defined]
    if marked:
        _announce_read(session, principal, None)
    return marked


# --- settings ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TypeSettings:
    type: NotificationType
    channels: dict[Channel, bool]


@dataclass(frozen=True, slots=True)
class PreferenceChange:
    type: str
    channel: Channel
    enabled: bool


def get_settings(session: Session, *, principal: Principal) -> list[TypeSettings]:
    rows = session.execute(
        select(
            NotificationPreference.type,
            NotificationPreference.channel,
            NotificationPreference.enabled,
        ).where(NotificationPreference.user_id == principal.user_id)
    ).all()
    chosen = {(t, c): e for t, c, e in rows}
    return [
        TypeSettings(
            type=kind,
            channels={c: chosen.get((kind.key, str(c)), c in kind.defaults) for c in Channel},
        )
        for kind in types_for(principal.role)
    ]


def update_settings(
    session: Session, *, principal: Principal, changes: Iterable[PreferenceChange]
) -> list[TypeSettings]:
    changes = list(changes)
    offered = {t.key for t in types_for(principal.role)}
    for change in changes:
        if change.type not in offered:
            raise RuleViolation(f"There is no notification type '{change.type}' for you")
    existing = {
        (p.type, p.channel): p
        for p in session.scalars(
            select(NotificationPreference).where(
                NotificationPreference.user_id == principal.user_id
            )
        )
    }
    for change in changes:
        row = existing.get((change.type, str(change.channel)))
        if row is not None:
            row.enabled = change.enabled
            continue
        row = NotificationPreference(
            tenant_id=principal.tenant_id,
            user_id=principal.user_id,
            type=change.type,
            channel=str(change.channel),
            enabled=change.enabled,
        )
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:  # the same choice saved concurrently from another tab
            session.execute(
                update(NotificationPreference)
                .where(
                    NotificationPreference.user_id == principal.user_id,
                    NotificationPreference.type == change.type,
                    NotificationPreference.channel == str(change.channel),
                )
                .values(enabled=change.enabled)
            )
        existing[(change.type, str(change.channel))] = row
    session.flush()
    return get_settings(session, principal=principal)


# --- admin: what went out, or would have --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    delivery: Delivery
    notification_type: str
    recipient: str


def list_deliveries(
    session: Session,
    *,
    principal: Principal,
    status: DeliveryStatus | None = None,
    page: int = 1,
    per_page: int = 25,
) -> tuple[list[OutboxEntry], int]:
    if principal.role != Role.admin:
        raise Forbidden("Only an admin can see the outbox")
    stmt = (
        select(Delivery, Notification.type, User.full_name)
        .join(Notification, Notification.id == Delivery.notification_id)
        .join(User, User.id == Notification.user_id)
        .where(Delivery.tenant_id == principal.tenant_id)
    )
    if status is not None:
        stmt = stmt.where(Delivery.status == status)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.execute(
        stmt.order_by(Delivery.id.desc()).limit(per_page).offset((page - 1) * per_page)
    ).all()
    return [OutboxEntry(d, t, name) for d, t, name in rows], total


# --- the delivery job ---------------------------------------------------------------------------


class DeliveryFailed(Exception):
    """Raised after a retryable failure is recorded, so that the job runner retries."""


@jobs.job("notify.deliver", max_attempts=5, backoff_seconds=30)
def deliver(session: Session, *, delivery_id: int) -> None:
    """Send one delivery. Idempotent: a delivery already sent or captured is left alone."""
    found = session.execute(
        select(Delivery, Notification, Tenant)
        .join(Notification, Notification.id == Delivery.notification_id)
        .join(Tenant, Tenant.id == Delivery.tenant_id)
        .where(Delivery.id == delivery_id)
    ).first()
    if found is None:
        return  # the notification was deleted meanwhile
    delivery, notification, tenant = found
    if delivery.status in (DeliveryStatus.sent, DeliveryStatus.captured):
        return
    settings = jobs.settings_of(session)
    content = channels.Content(
        title=notification.title,
        body=notification.body,
        link=notification.link,
        type_label=type_label(notification.type),
        tenant_name=tenant.name,
        brand_color=tenant.primary_color,
        site_url=settings.site_url,
    )
    message = channels.render(
        delivery.channel, content, reference=f"doorstep.delivery-{delivery.id}"
    )
    attacher = _attachers.get(notification.type)
    if attacher is not None and delivery.channel == Channel.email:
        message = dataclasses.replace(message, attachments=tuple(attacher(session, notification)))
    delivery.subject, delivery.text, delivery.html = message.subject, message.text, message.html
    transport = channels.transport_for(delivery.channel, settings)
    if transport is None:
        if settings.captures_messages:
            delivery.status, delivery.reason = DeliveryStatus.captured, None
        else:
            delivery.status = DeliveryStatus.failed
            delivery.reason = channels.not_configured_reason(delivery.channel)
        return
    delivery.attempts += 1
    try:
        # No row is written before this point, so no lock is held while the provider answers.
        provider_id = transport.send(delivery.address or "", message)
    except Exception as exc:
        reason = exc.reason if isinstance(exc, channels.DeliveryError) else f"{exc!r}"
        delivery.status, delivery.reason = DeliveryStatus.failed, reason
        session.commit()  # the runner rolls back a raising job; the failure must stay recorded
        if isinstance(exc, channels.DeliveryError) and exc.permanent:
            log.warning("delivery %s failed for good: %s", delivery_id, reason)
            return
        raise DeliveryFailed(reason) from exc
    delivery.status, delivery.reason = DeliveryStatus.sent, None
    delivery.provider_id, delivery.sent_at = provider_id, utcnow()
