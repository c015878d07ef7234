"""HTML routes of the broker dashboard (seed 004): the dashboard (overview, one Agent Performance
Card per agent, leaderboard, the live activity feed, My Pipeline), an agent's report with its
months as a table and charts, and the broker's notification settings. They call the same
services as /api/broker; agents' leads and appointments reach them only as counts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from doorstep.broker import dashboard, service
from doorstep.platform import accounts
from doorstep.platform.auth import Principal, Role, Tenant, User
from doorstep.platform.db import utcnow
from doorstep.platform.errors import RuleViolation
from doorstep.platform.http import DB, DoorstepRoute, require_role
from doorstep.web.formatting import local_time, money, parse_day
from doorstep.web.templating import flash, render

router = APIRouter(route_class=DoorstepRoute, include_in_schema=False)

BrokerOrAdmin = Annotated[Principal, require_role(Role.broker, Role.admin)]
BrokerPage = Annotated[Principal, require_role(Role.broker)]
Id = Annotated[int, Path(ge=1, le=2_147_483_647)]
BrokerId = Annotated[int | None, Query(alias="brokerId", ge=1, le=2_147_483_647)]
Text = Annotated[str | None, Query(max_length=40)]
PERIODS = {"7d": "Last 7 days", "30d": "Last 30 days", "90d": "Last 90 days", "ytd": "Year to date"}
SORT_LABELS = {
    "volume": "Volume",
    "escrows": "Escrows",
    "leads": "Leads",
    "conversion": "Conversion",
    "show_rate": "Show rate",
    "last_activity": "Last activity",
    "name": "Name",
}
LEADERBOARD = 5
SOURCE_LABELS = {
    "zillow_paid": "Zillow ads (paid)",
    "referral": "Past-client referrals",
    "networking": "Networking events",
    "website": "Website",
    "open_house": "Open houses",
    "social_media": "Social media",
    "sign_call": "Sign calls",
    "other": "Other",
}
SETTINGS_EVENTS = [
    ("notify_escrow_created", "New escrows", "An agent of yours opens an escrow"),
    ("notify_escrow_closed", "Escrows closed", "An escrow of your agents closes"),
    ("notify_client_created", "New clients", "An agent adds a client"),
    ("notify_listing_created", "New listings", "An agent lists a property"),
]
SETTINGS_CHANNELS = [
    ("in_app_notifications", "In the app", "The bell and the live activity feed"),
    ("email_notifications", "E-mail", "To your sign-in address"),
    ("sms_notifications", "SMS", "To the phone number on your account"),
]


# --- helpers the templates use -----------------------------------------------------------------


def short_money(value: Decimal | int | float | None) -> str:
    """$3.2M, $850K, $900: the card's compact figures."""
    if value is None:
        return "—"
    amount = Decimal(value)
    if abs(amount) >= 1_000_000:
        return f"${amount / 1_000_000:,.1f}M"
    if abs(amount) >= 1_000:
        return f"${amount / 1_000:,.0f}K"
    return f"${amount:,.0f}"


def pct(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}%"


def ago(moment: datetime | None, now: datetime) -> str:
    """ "2 hours ago", as the seed's card says it."""
    if moment is None:
        return "No activity yet"
    seconds = (now - dashboard._aware(moment)).total_seconds()
    if seconds < 60:
        return "just now"
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'' if n == 1 else 's'} ago"
    return "just now"  # pragma: no cover - the loop always returns


def _common(tenant: Tenant) -> dict[str, Any]:
    now = utcnow()
    return {
        "money": money,
        "short_money": short_money,
        "pct": pct,
        "ago": lambda moment: ago(moment, now),
        "local": local_time(tenant),
        "source_label": lambda s: SOURCE_LABELS.get(s, s.replace("_", " ").capitalize()),
    }


# --- the period of a page ----------------------------------------------------------------------


@dataclass(frozen=True)
class Chosen:
    """The period a page shows, what the visitor asked for, and why it was refused if it was."""

    window: service.Window
    period: str  # 7d, 30d, 90d, ytd or custom
    start: str
    end: str
    error: str | None


def choose_period(
    db: Session,
    principal: Principal,
    period: str | None,
    start: str | None,
    end: str | None,
    default: str,
) -> Chosen:
    """The window of the period selector. A refused choice is shown on the page with its
    reason, and the page shows the default period meanwhile."""
    asked = (period or "").strip() or None
    typed_start, typed_end = (start or "").strip(), (end or "").strip()
    if asked is None and (typed_start or typed_end):
        asked = "custom"
    asked = asked or default
    try:
        if asked == "custom":
            window = service.period_window(
                db,
                tenant_id=principal.tenant_id,
                period=None,
                start_date=parse_day(typed_start, "Start date") or _missing("start"),
                end_date=parse_day(typed_end, "End date") or _missing("end"),
            )
        else:
            window = service.period_window(
                db, tenant_id=principal.tenant_id, period=asked, start_date=None, end_date=None
            )
        return Chosen(window, asked, typed_start, typed_end, None)
    except RuleViolation as exc:
        fallback = service.period_window(
            db, tenant_id=principal.tenant_id, period=default, start_date=None, end_date=None
        )
        shown = asked if asked in (*PERIODS, "custom") else default
        return Chosen(fallback, shown, typed_start, typed_end, exc.detail)


def _missing(which: str) -> date:
    raise RuleViolation(f"A custom range needs both a start and an end date ({which} is empty)")


# --- the dashboard -----------------------------------------------------------------------------


def _brokers(db: Session, principal: Principal) -> list[User]:
    rows, _ = accounts.list_users(db, principal=principal, role=Role.broker, per_page=200)
    return rows


def _search(kpis: list[service.AgentKpis], needle: str) -> list[service.AgentKpis]:
    """The same match as the KPI service's `search`: name or e-mail, case-insensitive."""
    low = needle.lower()
    return [k for k in kpis if low in k.name.lower() or low in k.email.lower()]


@router.get("/broker-dashboard", response_class=HTMLResponse)
def broker_dashboard(
    request: Request,
    db: DB,
    principal: BrokerOrAdmin,
    broker_id: BrokerId = None,
    period: Text = None,
    start_date: Annotated[str | None, Query(alias="startDate", max_length=40)] = None,
    end_date: Annotated[str | None, Query(alias="endDate", max_length=40)] = None,
    sort: Text = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    tenant = accounts.get_tenant(db, principal=principal)
    context = _common(tenant)
    if principal.role == Role.admin and broker_id is None:
        context["brokers"] = _brokers(db, principal)
        return render(request, "broker/pick_broker.html", context, tenant=tenant)
    broker, agents = dashboard.team(db, principal=principal, broker_id=broker_id)
    chosen = choose_period(db, principal, period, start_date, end_date, default="30d")
    sort_key = sort if sort in service.SORTS else "volume"
    errors = [chosen.error] if chosen.error else []
    if sort and sort not in service.SORTS:
        errors.append(f"Sort must be one of {', '.join(SORT_LABELS.values())}")
    everyone = service.agent_kpis(
        db,
        principal=principal,
        window=chosen.window,
        broker_id=broker.id,
        sort="volume",
    )
    needle = (q or "").strip()
    shown = sorted(_search(everyone, needle) if needle else everyone, key=service.SORTS[sort_key])
    own = broker.id == principal.user_id
    context.update(
        broker=broker,
        own=own,
        chosen=chosen,
        errors=errors,
        periods=PERIODS,
        sorts=SORT_LABELS,
        sort=sort_key,
        q=needle,
        agents=shown,
        team_size=len(everyone),
        leaderboard=[k for k in everyone if k.volume > 0][:LEADERBOARD],
        overview=dashboard.overview(
            db, principal=principal, broker=broker, agents=agents, window=chosen.window
        ),
        before=dashboard.previous(chosen.window),
        activity=dashboard.recent_activity(db, principal=principal, broker=broker, agents=agents),
        activity_url="/broker-dashboard/activity"
        + (f"?brokerId={broker.id}" if principal.role == Role.admin else ""),
        pipeline=dashboard.my_pipeline(db, principal=principal, now=utcnow()) if own else None,
        # The report opens on its own default range (year to date), for the same broker.
        report_query=f"?brokerId={broker.id}" if principal.role == Role.admin else "",
        mailto=lambda k: (
            f"mailto:{k.email}?subject={quote('Checking in from ' + broker.full_name)}"
        ),
        live_channels=[f"user:{principal.user_id}"],
    )
    status = 422 if errors else 200
    return render(request, "broker/dashboard.html", context, status_code=status, tenant=tenant)


@router.get("/broker-dashboard/activity", response_class=HTMLResponse)
def activity_feed(
    request: Request, db: DB, principal: BrokerOrAdmin, broker_id: BrokerId = None
) -> Response:
    """The feed alone, fetched again when a live notice arrives."""
    tenant = accounts.get_tenant(db, principal=principal)
    broker, agents = dashboard.team(db, principal=principal, broker_id=broker_id)
    context = _common(tenant)
    context.update(
        activity=dashboard.recent_activity(db, principal=principal, broker=broker, agents=agents),
        activity_url="/broker-dashboard/activity"
        + (f"?brokerId={broker.id}" if principal.role == Role.admin else ""),
    )
    return render(request, "broker/_activity.html", context, tenant=tenant)


# --- an agent's report -------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    shown: str
    height: float  # percent of the tallest bar


def bars(
    months: list[dashboard.Month], pick: Callable[[Any], Any], fmt: Callable[[Any], str]
) -> list[Bar]:
    values = [float(pick(m) or 0) for m in months]
    top = max(values, default=0) or 1
    return [
        Bar(_month_label(m.start, i == 0), v, fmt(pick(m) or 0), round(100 * v / top, 1))
        for i, (m, v) in enumerate(zip(months, values, strict=True))
    ]


def _month_label(day: date, first: bool) -> str:
    """ "Jan '26" where the year starts (or on the first bar), "Feb" otherwise."""
    return day.strftime("%b '%y") if first or day.month == 1 else day.strftime("%b")


@router.get("/broker-dashboard/agents/{agent_id}", response_class=HTMLResponse)
def agent_report_page(
    request: Request,
    db: DB,
    principal: BrokerOrAdmin,
    agent_id: Id,
    period: Text = None,
    start_date: Annotated[str | None, Query(alias="startDate", max_length=40)] = None,
    end_date: Annotated[str | None, Query(alias="endDate", max_length=40)] = None,
) -> Response:
    tenant = accounts.get_tenant(db, principal=principal)
    chosen = choose_period(db, principal, period, start_date, end_date, default="ytd")
    kpis, snapshots = service.agent_report(
        db, principal=principal, agent_id=agent_id, window=chosen.window
    )
    months = dashboard.months_of(
        db, principal=principal, agent_id=agent_id, window=chosen.window, snapshots=snapshots
    )
    window = chosen.window
    export = urlencode(
        {"format": "csv", "startDate": window.start_date, "endDate": window.end_date}
    )
    agent = db.get(User, agent_id)
    assert agent is not None
    context = _common(tenant)
    context.update(
        kpis=kpis,
        chosen=chosen,
        errors=[chosen.error] if chosen.error else [],
        periods=PERIODS,
        months=months,
        stored=sum(1 for m in months if m.stored),
        charts=[
            ("Volume", "chart-volume", bars(months, lambda m: m.volume, short_money)),
            ("Escrows", "chart-escrows", bars(months, lambda m: m.escrows, str)),
            (
                "New leads (30 days to month end)",
                "chart-leads",
                bars(months, lambda m: m.new_leads, str),
            ),
            (
                "Completed appointments",
                "chart-appointments",
                bars(months, lambda m: m.completed, str),
            ),
        ],
        csv_url=f"/api/broker/agents/{agent_id}/report?{export}",
        back_url="/broker-dashboard"
        + (f"?brokerId={agent.broker_id}" if principal.role == Role.admin else ""),
        broker_param=agent.broker_id if principal.role == Role.admin else None,
        mailto=f"mailto:{kpis.email}",
    )
    status = 422 if chosen.error else 200
    return render(request, "broker/agent_report.html", context, status_code=status, tenant=tenant)


# --- notification settings ---------------------------------------------------------------------


def _settings_context(db: Session, principal: Principal, tenant: Tenant) -> dict[str, Any]:
    broker = db.get(User, principal.user_id)
    assert broker is not None
    row = service.settings_of(db, broker=broker)
    values: dict[str, Any] = {name: getattr(row, name) for name, _, _ in SETTINGS_EVENTS}
    values.update({name: getattr(row, name) for name, _, _ in SETTINGS_CHANNELS})
    threshold = row.min_escrow_value
    values["min_escrow_value"] = f"{threshold:.0f}" if threshold is not None else ""
    return {
        **_common(tenant),
        "values": values,
        "events": SETTINGS_EVENTS,
        "channels": SETTINGS_CHANNELS,
        "has_phone": bool(broker.phone),
        "error": None,
    }


@router.get("/broker-dashboard/settings", response_class=HTMLResponse)
def settings_page(request: Request, db: DB, principal: BrokerPage) -> Response:
    tenant = accounts.get_tenant(db, principal=principal)
    return render(
        request, "broker/settings.html", _settings_context(db, principal, tenant), tenant=tenant
    )


MAX_THRESHOLD = Decimal("9999999999")


def _threshold(text: str) -> Decimal | None:
    cleaned = text.strip().replace(",", "").replace("$", "")
    if not cleaned:
        return None
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise RuleViolation(
            f"Minimum escrow value must be an amount, got {text.strip()!r}"
        ) from None
    if not value.is_finite() or value < 0 or value > MAX_THRESHOLD:
        raise RuleViolation("Minimum escrow value must be between $0 and $9,999,999,999")
    return value.quantize(Decimal("0.01"))


@router.post("/broker-dashboard/settings", response_class=HTMLResponse)
def save_settings(
    request: Request,
    db: DB,
    principal: BrokerPage,
    notify_escrow_created: Annotated[bool, Form()] = False,
    notify_escrow_closed: Annotated[bool, Form()] = False,
    notify_client_created: Annotated[bool, Form()] = False,
    notify_listing_created: Annotated[bool, Form()] = False,
    in_app_notifications: Annotated[bool, Form()] = False,
    email_notifications: Annotated[bool, Form()] = False,
    sms_notifications: Annotated[bool, Form()] = False,
    min_escrow_value: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """The form's PUT: every box is sent (an unticked box is off), the threshold may be empty."""
    changes: dict[str, object] = {
        "notify_escrow_created": notify_escrow_created,
        "notify_escrow_closed": notify_escrow_closed,
        "notify_client_created": notify_client_created,
        "notify_listing_created": notify_listing_created,
        "in_app_notifications": in_app_notifications,
        "email_notifications": email_notifications,
        "sms_notifications": sms_notifications,
    }
    try:
        changes["min_escrow_value"] = _threshold(min_escrow_value)
    except RuleViolation as exc:
        tenant = accounts.get_tenant(db, principal=principal)
        context = _settings_context(db, principal, tenant)
        context["values"].update(changes, min_escrow_value=min_escrow_value)
        context["error"] = exc.detail
        return render(request, "broker/settings.html", context, status_code=422, tenant=tenant)
    service.update_settings(db, principal=principal, changes=changes)
    response = RedirectResponse("/broker-dashboard/settings", status_code=303)
    flash(response, "Notification settings saved.")
    return response
