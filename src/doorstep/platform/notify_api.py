"""JSON routes of the notification centre: a user's own notifications and channel settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from doorstep.platform import notify
from doorstep.platform.auth import Principal, Role
from doorstep.platform.http import DB, CurrentPrincipal, DoorstepRoute, require_role
from doorstep.platform.notify_schemas import (
    DeliveryRead,
    MarkedRead,
    NotificationDetail,
    NotificationRead,
    NotificationSettingsRead,
    NotificationSettingsUpdate,
    UnreadCount,
)
from doorstep.platform.schemas import Page

router = APIRouter(prefix="/api/notifications", route_class=DoorstepRoute, tags=["notifications"])
Admin = Annotated[Principal, require_role(Role.admin)]


@router.get("", response_model=Page[NotificationRead])
def list_notifications(
    db: DB,
    principal: CurrentPrincipal,
    unread: bool = False,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=200)] = 25,
) -> Page[NotificationRead]:
    """Your notifications, newest first (`unread=true`: only the unread ones)."""
    rows, total = notify.list_notifications(
        db, principal=principal, unread_only=unread, page=page, per_page=per_page
    )
    return Page[NotificationRead](
        items=[NotificationRead.model_validate(n) for n in rows],
        total=total,
        page=page,
        per_page=per_page,
    )


@router.get("/unread-count", response_model=UnreadCount)
def unread_count(db: DB, principal: CurrentPrincipal) -> UnreadCount:
    return UnreadCount(unread=notify.unread_count(db, principal=principal))


@router.post("/read-all", response_model=MarkedRead)
def read_all(db: DB, principal: CurrentPrincipal) -> MarkedRead:
    marked = notify.mark_all_read(db, principal=principal)
    return MarkedRead(marked=marked, unread=notify.unread_count(db, principal=principal))


@router.get("/settings", response_model=NotificationSettingsRead)
def get_settings(db: DB, principal: CurrentPrincipal) -> NotificationSettingsRead:
    """Which channels each notification type reaches you on."""
    return NotificationSettingsRead.of(notify.get_settings(db, principal=principal))


@router.put("/settings", response_model=NotificationSettingsRead)
def update_settings(
    db: DB, principal: CurrentPrincipal, body: NotificationSettingsUpdate
) -> NotificationSettingsRead:
    changes = [
        notify.PreferenceChange(type=p.type, channel=p.channel, enabled=p.enabled)
        for p in body.preferences
    ]
    return NotificationSettingsRead.of(
        notify.update_settings(db, principal=principal, changes=changes)
    )


@router.post("/test", response_model=NotificationRead | None, status_code=201)
def send_test(db: DB, principal: Admin) -> NotificationRead | None:
    """Send yourself a test notification on your chosen channels (admins)."""
    row = notify.send_test(db, principal=principal)
    return NotificationRead.model_validate(row) if row is not None else None


@router.get("/{notification_id}", response_model=NotificationDetail)
def get_notification(
    db: DB, principal: CurrentPrincipal, notification_id: int
) -> NotificationDetail:
    row = notify.get_notification(db, principal=principal, notification_id=notification_id)
    deliveries = notify.deliveries_of(db, principal=principal, notification_id=notification_id)
    return NotificationDetail.model_validate(
        {
            **NotificationRead.model_validate(row).model_dump(),
            "deliveries": [DeliveryRead.model_validate(d) for d in deliveries],
        }
    )


@router.post("/{notification_id}/read", response_model=NotificationRead)
def mark_read(db: DB, principal: CurrentPrincipal, notification_id: int) -> NotificationRead:
    return NotificationRead.model_validate(
        notify.mark_read(db, principal=principal, notification_id=notification_id)
    )
