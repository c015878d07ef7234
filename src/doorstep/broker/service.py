"""Use cases of the broker dashboard (seed 004): agent KPIs for a period, the agent report,
monthly snapshots, and the broker's notification settings and notices.

Everything about agents' pipelines arrives as counts from crm.service.pipeline_metrics
(level 2); escrows, clients and listings through their modules' services (level 1). This module
never reads another module's tables itself."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from doorstep.broker.models import AgentKpi, BrokerNotificationSettings
from doorstep.crm import service as crm
from doorstep.platform.auth import Principal, Role, Tenant, User
from doorstep.platform.db import utcnow
from doorstep.platform.errors import Forbidden, NotFound, RuleViolation
from doorstep.transactions import service as transactions

PERIODS = {"7d": 7, "30d": 30, "90d": 90}
MAX_RANGE_DAYS = 3 * 366


@dataclass(frozen=True)
class Window:
    """[start, end) in UTC, from local calendar dates of the brokerage (end date included)."""

    start_date: date
    end_date: date  # inclusive
    start: datetime
    end: datetime
    label: str


def zone_of(db: Session, tenant_id: int) -> ZoneInfo:
    tenant = db.get(Tenant, tenant_id)
    return tenant.zone if tenant else ZoneInfo("UTC")


def calendar_window(first: date, last: date, zone: ZoneInfo, label: str) -> Window:
    start = datetime.combine(first, time.min, zone).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time.min, zone).astimezone(UTC)
    return Window(first, last, start, end, label)


def period_window(
    db: Session,
    *,
    tenant_id: int,
    period: str | None,
    start_date: date | None,
    end_date: date | None,
    now: datetime | None = None,
) -> Window:
    """`period` 7d, 30d, 90d or ytd (ending today), or a custom `start_date`..`end_date`."""
    zone = zone_of(db, tenant_id)
    today = (now or utcnow()).astimezone(zone).date()
    if start_date is not None or end_date is not None:
        if period is not None:
            raise RuleViolation("Give either period or startDate/endDate, not both")
        if start_date is None or end_date is None:
            raise RuleViolation("A custom range needs both startDate and endDate")
        if end_date < start_date:
            raise RuleViolation(f"endDate {end_date} is before startDate {start_date}")
        if (end_date - start_date).days > MAX_RANGE_DAYS:
            raise RuleViolation("A custom range may span at most three years")
        if start_date > today:
            raise RuleViolation(f"startDate {start_date} is in the future")
        return calendar_window(start_date, end_date, zone, f"{start_date} to {end_date}")
    period = period or "30d"
    if period == "ytd":
        return calendar_window(date(today.year, 1, 1), today, zone, "Year to date")
    if period not in PERIODS:
        raise RuleViolation(f"period must be one of 7d, 30d, 90d, ytd (got {period!r})")
    days = PERIODS[period]
    return calendar_window(today - timedelta(days=days - 1), today, zone, f"Last {days} days")


def team(db: Session, principal: Principal, broker_id: int | None) -> tuple[User, list[User]]:
    """The broker whose team is asked for and its agents. A broker sees their own team; an
    admin names the broker; nobody else has a team."""
    if principal.role == Role.broker:
        if broker_id not in (None, principal.user_id):
            raise NotFound(f"Broker {broker_id} not found")
        broker_id = principal.user_id
    elif principal.role == Role.admin:
        if broker_id is None:
            raise RuleViolation("brokerId: an admin names the broker whose team to show")
    else:
        raise Forbidden("Only brokers (and admins) see agent KPIs")
    broker = db.get(User, broker_id)
    if broker is None or broker.tenant_id != principal.tenant_id or broker.role != Role.broker:
        raise NotFound(f"Broker {broker_id} not found")
    agents = db.scalars(
        select(User)
        .where(User.broker_id == broker.id, User.role == Role.agent)
        .order_by(User.full_name, User.id)
    ).all()
    return broker, list(agents)


@dataclass(frozen=True)
class AgentKpis:
    agent_id: int
    name: str
    email: str
    is_active: bool
    total_leads: int
    new_leads_30d: int
    converted_leads: int
    conversion_rate: float | None
    appointments: int
    completed_appointments: int
    no_shows: int
    show_rate: float | None
    escrows: int
    volume: Decimal
    commission: Decimal
    ytd_escrows: int
    ytd_volume: Decimal
    ytd_commission: Decimal
    active_clients: int
    active_listings: int
    last_activity: datetime | None


def _latest(*moments: datetime | None) -> datetime | None:
    known = [m for m in moments if m is not None]
    return max(known) if known else None


def kpis_for(
    db: Session, *, principal: Principal, agents: list[User], window: Window
) -> list[AgentKpis]:
    ids = [a.id for a in agents]
    pipeline = crm.pipeline_metrics(
        db, principal=principal, agent_ids=ids, start=window.start, end=window.end
    )
    book = crm.book_metrics(db, principal=principal, agent_ids=ids)
    end = window.end_date + timedelta(days=1)
    period = transactions.production_by_agent(
        db, principal=principal, agent_ids=ids, start=window.start_date, end=end
    )
    ytd = transactions.production_by_agent(
        db, principal=principal, agent_ids=ids, start=date(window.end_date.year, 1, 1), end=end
    )
    out = []
    for agent in agents:
        lead, deals, year = pipeline.get(agent.id), period[agent.id], ytd[agent.id]
        lead = lead or crm.PipelineMetrics()
        out.append(
            AgentKpis(
                agent_id=agent.id,
                name=agent.full_name,
                email=agent.email,
                is_active=agent.is_active,
                total_leads=lead.total_leads,
                new_leads_30d=lead.new_leads_30d,
                converted_leads=lead.converted_leads,
                conversion_rate=lead.conversion_rate,
                appointments=lead.appointments,
                completed_appointments=lead.completed,
                no_shows=lead.no_shows,
                show_rate=lead.show_rate,
                escrows=deals.escrows,
                volume=deals.volume,
                commission=deals.commission,
                ytd_escrows=year.escrows,
                ytd_volume=year.volume,
                ytd_commission=year.commission,
                active_clients=book[agent.id].active_clients,
                active_listings=book[agent.id].active_listings,
                last_activity=_latest(
                    agent.last_login_at,
                    lead.last_lead_at,
                    lead.last_appointment_at,
                    deals.last_created_at,
                    year.last_created_at,
                ),
            )
        )
    return out


SORTS = {
    "name": lambda k: (k.name.lower(),),
    "volume": lambda k: (-k.volume, k.name.lower()),
    "escrows": lambda k: (-k.escrows, k.name.lower()),
    "leads": lambda k: (-k.total_leads, k.name.lower()),
    "conversion": lambda k: (-(k.conversion_rate or 0), k.name.lower()),
    "show_rate": lambda k: (-(k.show_rate or 0), k.name.lower()),
    "last_activity": lambda k: (
        -(k.last_activity.timestamp() if k.last_activity else 0),
        k.name.lower(),
    ),
}


def agent_kpis(
    db: Session,
    *,
    principal: Principal,
    window: Window,
    broker_id: int | None = None,
    sort: str = "volume",
    search: str | None = None,
) -> list[AgentKpis]:
    """Every agent of the broker's team with their KPIs for the window (zeros included)."""
    if sort not in SORTS:
        raise RuleViolation(f"sort must be one of {', '.join(SORTS)}")
    _broker, agents = team(db, principal, broker_id)
    if search:
        needle = search.lower()
        agents = [a for a in agents if needle in a.full_name.lower() or needle in a.email.lower()]
    return sorted(kpis_for(db, principal=principal, agents=agents, window=window), key=SORTS[sort])


def agent_report(
    db: Session, *, principal: Principal, agent_id: int, window: Window
) -> tuple[AgentKpis, list[AgentKpi]]:
    """One agent's KPIs for the window and their monthly snapshots in it (for the trend)."""
    broker_id = principal.user_id if principal.role == Role.broker else None
    if principal.role == Role.admin:
        agent = db.get(User, agent_id)
        broker_id = agent.broker_id if agent and agent.tenant_id == principal.tenant_id else None
        if broker_id is None:
            raise NotFound(f"Agent {agent_id} not found")
    _broker, agents = team(db, principal, broker_id)
    agent = next((a for a in agents if a.id == agent_id), None)
    if agent is None:
        raise NotFound(f"Agent {agent_id} not found")
    [kpis] = kpis_for(db, principal=principal, agents=[agent], window=window)
    months = db.scalars(
        select(AgentKpi)
        .where(
            AgentKpi.user_id == agent.id,
            AgentKpi.period_end >= window.start_date,
            AgentKpi.period_start <= window.end_date,
        )
        .order_by(AgentKpi.period_start)
    ).all()
    return kpis, list(months)


# --- monthly snapshots -------------------------------------------------------------------------


def month_bounds(day: date) -> tuple[date, date]:
    first = day.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return first, following - timedelta(days=1)


def snapshot_month(db: Session, *, tenant_id: int, month: date) -> int:
    """Write (or rewrite) every agent's `agent_kpis` row for the calendar month of `month`."""
    first, last = month_bounds(month)
    zone = zone_of(db, tenant_id)
    window = calendar_window(first, last, zone, first.strftime("%B %Y"))
    written = 0
    for broker in db.scalars(
        select(User).where(User.tenant_id == tenant_id, User.role == Role.broker)
    ).all():
        principal = Principal.of(broker)
        _b, agents = team(db, principal, None)
        for k in kpis_for(db, principal=principal, agents=agents, window=window):
            row = db.scalar(
                select(AgentKpi).where(
                    AgentKpi.user_id == k.agent_id,
                    AgentKpi.period_start == first,
                    AgentKpi.period_end == last,
                )
            )
            if row is None:
                row = AgentKpi(
                    tenant_id=tenant_id,
                    user_id=k.agent_id,
                    broker_id=broker.id,
                    period_start=first,
                    period_end=last,
                )
                db.add(row)
            row.total_leads, row.new_leads = k.total_leads, k.new_leads_30d
            row.converted_leads = k.converted_leads
            row.conversion_rate = _pct(k.conversion_rate)
            row.total_appointments = k.appointments
            row.completed_appointments = k.completed_appointments
            row.no_shows, row.show_rate = k.no_shows, _pct(k.show_rate)
            row.total_escrows, row.total_volume = k.escrows, k.volume
            row.total_commission = k.commission
            row.total_clients, row.active_listings = k.active_clients, k.active_listings
            row.last_activity = k.last_activity
            written += 1
    db.flush()
    return written


def _pct(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(round(value, 2)))


def backfill(db: Session, *, tenant_id: int, months: int, today: date | None = None) -> int:
    """Snapshots of the last `months` complete months (idempotent)."""
    day = (today or utcnow().date()).replace(day=1)
    written = 0
    for _ in range(months):
        day = (day - timedelta(days=1)).replace(day=1)
        written += snapshot_month(db, tenant_id=tenant_id, month=day)
    return written


def client_link(name: str) -> str:
    """The clients page filtered to one name (what a notice and the activity feed link to)."""
    return "/crm/clients?" + urlencode({"q": name})


# --- notification settings ---------------------------------------------------------------------

SETTINGS = frozenset(
    {
        "notify_escrow_created",
        "notify_client_created",
        "notify_listing_created",
        "notify_escrow_closed",
        "email_notifications",
        "in_app_notifications",
        "sms_notifications",
        "min_escrow_value",
    }
)


def settings_of(db: Session, *, broker: User) -> BrokerNotificationSettings:
    row = db.scalar(
        select(BrokerNotificationSettings).where(BrokerNotificationSettings.broker_id == broker.id)
    )
    if row is None:
        row = BrokerNotificationSettings(tenant_id=broker.tenant_id, broker_id=broker.id)
        db.add(row)
        db.flush()
    return row


def update_settings(
    db: Session, *, principal: Principal, changes: dict[str, object]
) -> BrokerNotificationSettings:
    if principal.role != Role.broker:
        raise Forbidden("Only brokers have broker notification settings")
    broker = db.get(User, principal.user_id)
    assert broker is not None
    row = settings_of(db, broker=broker)
    for name, value in changes.items():
        if name not in SETTINGS:
            raise RuleViolation(f"{name}: not a broker notification setting")
        if value is None and name != "min_escrow_value":  # only the threshold may be cleared
            raise RuleViolation(f"{name}: must be true or false")
        setattr(row, name, value)
    db.flush()
    return row
