"""HTML routes of the notification centre (list, settings) and the admin outbox and jobs pages."""

from __future__ import annotations

import json
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from doorstep.platform import accounts, channels, jobs, notify
from doorstep.platform.auth import Principal, Role
from doorstep.platform.http import DB, CurrentPrincipal, DoorstepRoute, is_htmx, require_role
from doorstep.platform.notify import CHANNEL_LABELS, Channel, DeliveryStatus
from doorstep.web.templating import flash, render

router = APIRouter(route_class=DoorstepRoute, include_in_schema=False)
AdminPage = Annotated[Principal, require_role(Role.admin)]
NotificationId = Annotated[int, Path(ge=1, le=2_147_483_647)]
PageNo = Annotated[int, Query(ge=1, le=10_000)]
PER_PAGE = 25


def _redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


def _with_unread(response: Response, db: DB, principal: Principal) -> Response:
    # The bell follows the live stream; this header keeps it right when the socket is down.
    unread = notify.unread_count(db, principal=principal)
    response.headers["HX-Trigger"] = json.dumps({"doorstep:unread": {"unread": unread}})
    return response


def _list_context(
    db: DB, principal: Principal, *, unread_only: bool, page: int
) -> dict[str, object]:
    rows, total = notify.list_notifications(
        db, principal=principal, unread_only=unread_only, page=page, per_page=PER_PAGE
    )
    return {
        "notifications": rows,
        "total": total,
        "page": page,
        "pages": max(1, -(-total // PER_PAGE)),
        "unread_only": unread_only,
        "unread": notify.unread_count(db, principal=principal),
        "query_for": lambda p: urlencode(
            {"unread": "1", "page": p} if unread_only else {"page": p}
        ),
    }


@router.get("/notifications", response_class=HTMLResponse)
def notifications_page(
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    unread: Annotated[str | None, Query(pattern="^(1|true)?$")] = None,
    page: PageNo = 1,
) -> Response:
    context = _list_context(db, principal, unread_only=bool(unread), page=page)
    # htmx asks for the list alone when a notification arrives or all are marked read.
    if is_htmx(request) and request.headers.get("hx-target") == "notification-list":
        return render(request, "notifications/_list.html", context)
    return render(
        request,
        "notifications/list.html",
        context,
        tenant=accounts.get_tenant(db, principal=principal),
    )


@router.post("/notifications/read-all", response_class=HTMLResponse)
def read_all(request: Request, db: DB, principal: CurrentPrincipal) -> Response:
    marked = notify.mark_all_read(db, principal=principal)
    if is_htmx(request):
        context = _list_context(db, principal, unread_only=False, page=1)
        return _with_unread(render(request, "notifications/_list.html", context), db, principal)
    response = _redirect("/notifications")
    flash(response, f"Marked {marked} notification{'s' if marked != 1 else ''} as read.")
    return response


@router.post("/notifications/{notification_id}/read", response_class=HTMLResponse)
def read_one(
    request: Request, db: DB, principal: CurrentPrincipal, notification_id: NotificationId
) -> Response:
    row = notify.mark_read(db, principal=principal, notification_id=notification_id)
    if is_htmx(request):
        return _with_unread(render(request, "notifications/_item.html", {"n": row}), db, principal)
    return _redirect("/notifications")


@router.post("/notifications/{notification_id}/open")
def open_subject(db: DB, principal: CurrentPrincipal, notification_id: NotificationId) -> Response:
    """Following a notification's link marks it read on the way."""
    row = notify.mark_read(db, principal=principal, notification_id=notification_id)
    return _redirect(row.link or "/notifications")


def _settings_context(db: DB, principal: Principal) -> dict[str, object]:
    user = accounts.get_user(db, principal=principal, user_id=principal.user_id)
    return {
        "settings": notify.get_settings(db, principal=principal),
        "channels": [(c, CHANNEL_LABELS[c]) for c in Channel],
        "phone": user.phone,
        "email": user.email,
    }


@router.get("/notifications/settings", response_class=HTMLResponse)
def settings_page(request: Request, db: DB, principal: CurrentPrincipal) -> Response:
    return render(
        request,
        "notifications/settings.html",
        _settings_context(db, principal),
        tenant=accounts.get_tenant(db, principal=principal),
    )


@router.post("/notifications/settings", response_class=HTMLResponse)
def save_settings(
    db: DB,
    principal: CurrentPrincipal,
    choice: Annotated[list[str] | None, Form(max_length=400)] = None,
) -> Response:
    """The grid posts the ticked boxes as `type:channel`; every box not ticked is off."""
    ticked = set(choice or [])
    changes = [
        notify.PreferenceChange(type=kind.key, channel=c, enabled=f"{kind.key}:{c}" in ticked)
        for kind in notify.types_for(principal.role)
        for c in Channel
    ]
    notify.update_settings(db, principal=principal, changes=changes)
    response = _redirect("/notifications/settings")
    flash(response, "Notification settings saved.")
    return response


# --- admin ------------------------------------------------------------------------------------


@router.get("/admin/outbox", response_class=HTMLResponse)
def outbox_page(
    request: Request,
    db: DB,
    principal: AdminPage,
    status: Annotated[DeliveryStatus | Literal[""] | None, Query()] = None,
    page: PageNo = 1,
) -> Response:
    status = status or None
    rows, total = notify.list_deliveries(
        db, principal=principal, status=status, page=page, per_page=PER_PAGE
    )
    settings = request.app.state.settings
    return render(
        request,
        "admin/outbox.html",
        {
            "entries": rows,
            "total": total,
            "page": page,
            "pages": max(1, -(-total // PER_PAGE)),
            "status": status,
            "statuses": list(DeliveryStatus),
            "channel_labels": CHANNEL_LABELS,
            "type_label": notify.type_label,
            "captures": settings.captures_messages,
            "missing": [
                CHANNEL_LABELS[c]
                for c in (Channel.email, Channel.sms, Channel.whatsapp)
                if channels.transport_for(c, settings) is None
            ],
            "query_for": lambda p: urlencode(
                {"status": status, "page": p} if status else {"page": p}
            ),
        },
        tenant=accounts.get_tenant(db, principal=principal),
    )


@router.post("/admin/outbox/test")
def send_test(db: DB, principal: AdminPage) -> Response:
    sent = notify.send_test(db, principal=principal)
    response = _redirect("/admin/outbox")
    flash(
        response,
        "Test notification sent to your channels."
        if sent is not None
        else "Nothing sent: every channel is off for test notifications in your settings.",
    )
    return response


@router.get("/admin/jobs", response_class=HTMLResponse)
def jobs_page(request: Request, db: DB, principal: AdminPage) -> Response:
    return render(
        request,
        "admin/jobs.html",
        {
            "failed": jobs.failed_jobs(db, tenant_id=principal.tenant_id, limit=50),
            "recent": jobs.recent_jobs(db, tenant_id=principal.tenant_id, limit=50),
        },
        tenant=accounts.get_tenant(db, principal=principal),
    )
