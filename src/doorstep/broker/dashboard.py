"""What the broker dashboard shows besides the agent KPIs (seed 004): brokerage totals against the
previous period, the team's recent escrows, clients and listings (level 1), the broker's own
private pipeline (level 3) and the months of an agent's report.

Rows are read through `access.readable(...)` or the modules' services only. Agents' leads and
appointments never appear here as rows: the broker's own are the only ones this module selects."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from doorstep.broker import service
from doorstep.broker.models import AgentKpi
from doorstep.crm import service as crm
from doorstep.crm.models import Appointment, Client, Lead, Property, PropertyStatus
from doorstep.platform.access import readable
from doorstep.platform.auth import Principal, Role, User
from doorstep.platform.errors import Forbidden
from doorstep.transactions import service as transactions
from doorstep.transactions.models import EscrowStatus, Transaction

LIVE_STATUSES = [EscrowStatus.active, EscrowStatus.pending, EscrowStatus.closed]
OPEN_STATUSES = [EscrowStatus.active, EscrowStatus.pending]


def team(db: Session, *, principal: Principal, broker_id: int | None) -> tuple[User, list[User]]:
    """The broker whose dashboard this is and their agents (a broker: their own; an admin:
    the broker they name). The same rule as the KPI service."""
    return service.team(db, principal, broker_id)


def previous(window: service.Window) -> service.Window:
    """The period of the same length just before `window`."""
    days = (window.end_date - window.start_date).days + 1
    first = window.start_date - timedelta(days=days)
    last = window.start_date - timedelta(days=1)
    length = window.end - window.start
    return service.Window(first, last, window.start - length, window.start, f"{first} to {last}")


# --- brokerage overview ------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """A tile of the overview: the figure now, and what changed in the period against the
    period of the same length before it."""

    label: str
    value: Decimal
    period: Decimal  # what the period added (volume, or new rows)
    before: Decimal  # the same in the previous period
    is_money: bool = False

    @property
    def change(self) -> float | None:
        if self.before == 0:
            return None
        return round(float((self.period - self.before) / self.before * 100), 1)


@dataclass(frozen=True)
class Overview:
    volume: Figure
    active_escrows: Figure
    clients: Figure
    listings: Figure

    @property
    def figures(self) -> list[Figure]:
        return [self.volume, self.active_escrows, self.clients, self.listings]


def _count(db: Session, stmt: Any) -> int:
    return int(db.scalar(stmt) or 0)


def _created_between(
    db: Session, principal: Principal, model: Any, owner: Any, ids: list[int], w: service.Window
) -> int:
    stmt = readable(select(func.count(model.id)), principal, model).where(
        owner.in_(ids), model.created_at >= w.start, model.created_at < w.end
    )
    return _count(db, stmt)


def overview(
    db: Session, *, principal: Principal, broker: User, agents: list[User], window: service.Window
) -> Overview:
    """The brokerage's figures: the broker's own deals, clients and listings count in the
    totals like anyone's (level 3)."""
    ids = [broker.id, *(a.id for a in agents)]
    before = previous(window)
    production = {}
    for key, w in (("now", window), ("before", before)):
        by_agent = transactions.production_by_agent(
            db,
            principal=principal,
            agent_ids=ids,
            start=w.start_date,
            end=w.end_date + timedelta(days=1),
        )
        production[key] = sum((p.volume for p in by_agent.values()), Decimal(0))
    active = _count(
        db,
        readable(select(func.count(Transaction.id)), principal, Transaction).where(
            Transaction.agent_id.in_(ids), Transaction.escrow_status.in_(OPEN_STATUSES)
        ),
    )
    clients = _count(
        db,
        readable(select(func.count(Client.id)), principal, Client).where(
            Client.agent_id.in_(ids), Client.status == "active"
        ),
    )
    listings = _count(
        db,
        readable(select(func.count(Property.id)), principal, Property).where(
            Property.listing_agent_id.in_(ids), Property.status == PropertyStatus.active
        ),
    )

    def new(model: Any, owner: Any) -> tuple[Decimal, Decimal]:
        return (
            Decimal(_created_between(db, principal, model, owner, ids, window)),
            Decimal(_created_between(db, principal, model, owner, ids, before)),
        )

    escrows_new = new(Transaction, Transaction.agent_id)
    clients_new = new(Client, Client.agent_id)
    listings_new = new(Property, Property.listing_agent_id)
    return Overview(
        volume=Figure(
            "Total volume", production["now"], production["now"], production["before"], True
        ),
        active_escrows=Figure("Active escrows", Decimal(active), *escrows_new),
        clients=Figure("Active clients", Decimal(clients), *clients_new),
        listings=Figure("Active listings", Decimal(listings), *listings_new),
    )


# --- the team's recent activity (level 1) ------------------------------------------------------


@dataclass(frozen=True)
class Activity:
    kind: str  # escrow, client, listing
    key: str
    agent: str
    title: str
    detail: str
    price: Decimal | None
    link: str
    created_at: datetime


def recent_activity(
    db: Session, *, principal: Principal, broker: User, agents: list[User], limit: int = 15
) -> list[Activity]:
    """The newest escrows, clients and listings of the broker's agents and the broker."""
    people = {u.id: u.full_name for u in [broker, *agents]}
    ids = list(people)
    out: list[Activity] = []
    for tx in db.scalars(
        readable(select(Transaction), principal)
        .where(Transaction.agent_id.in_(ids))
        .order_by(Transaction.created_at.desc(), Transaction.id.desc())
        .limit(limit)
    ):
        place = ", ".join(p for p in (tx.property_address, tx.property_city) if p)
        out.append(
            Activity(
                "escrow",
                f"escrow-{tx.id}",
                people[tx.agent_id],
                place,
                f"Status: {tx.escrow_status}",
                tx.purchase_price,
                f"/transactions/{tx.id}",
                tx.created_at,
            )
        )
    for client in db.scalars(
        readable(select(Client), principal)
        .where(Client.agent_id.in_(ids))
        .order_by(Client.created_at.desc(), Client.id.desc())
        .limit(limit)
    ):
        out.append(
            Activity(
                "client",
                f"client-{client.id}",
                people[client.agent_id],
                client.name,
                f"Source: {client.source.replace('_', ' ').title()}",
                None,
                service.client_link(client.name),
                client.created_at,
            )
        )
    for listing in db.scalars(
        readable(select(Property), principal)
        .where(Property.listing_agent_id.in_(ids))
        .order_by(Property.created_at.desc(), Property.id.desc())
        .limit(limit)
    ):
        out.append(
            Activity(
                "listing",
                f"listing-{listing.id}",
                people[listing.listing_agent_id],
                f"{listing.address}, {listing.city} {listing.state}".strip(),
                listing.title,
                listing.price,
                f"/crm/properties/{listing.id}",
                listing.created_at,
            )
        )
    out.sort(key=lambda a: (_aware(a.created_at), a.key), reverse=True)
    return out[:limit]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- the broker's own pipeline (level 3) -------------------------------------------------------


@dataclass(frozen=True)
class MyPipeline:
    total_leads: int
    private_leads: int
    by_source: list[tuple[str, int]]
    appointments: list[Appointment]
    week_start: date
    escrows: int
    volume: Decimal
    active_clients: int
    active_listings: int


def my_pipeline(db: Session, *, principal: Principal, now: datetime) -> MyPipeline:
    """The signed-in broker's own leads as counts by source, their appointments this week (their
    own, so in full) and their production year to date. Nobody else's: the rows are selected
    by owner = the principal, through the visibility policy."""
    if principal.role != Role.broker:
        raise Forbidden("My Pipeline is the broker's own")
    mine = principal.user_id
    sources = Counter[str]()
    private = 0
    for source, is_private, count in db.execute(
        readable(select(Lead.source, Lead.is_private, func.count()), principal, Lead)
        .where(Lead.agent_id == mine)
        .group_by(Lead.source, Lead.is_private)
    ):
        sources[source] += count
        private += count if is_private else 0
    zone = service.zone_of(db, principal.tenant_id)
    today = now.astimezone(zone).date()
    monday = today - timedelta(days=today.weekday())
    week_start = datetime.combine(monday, time.min, zone).astimezone(UTC)
    appointments, _ = crm.list_appointments(
        db,
        principal=principal,
        start=week_start,
        end=week_start + timedelta(days=7),
        status=["scheduled", "completed", "no_show"],
        offset=0,
        limit=50,
    )
    appointments = [a for a in appointments if a.agent_id == mine]
    ytd = transactions.production_by_agent(
        db,
        principal=principal,
        agent_ids=[mine],
        start=date(today.year, 1, 1),
        end=today + timedelta(days=1),
    )[mine]
    book = crm.book_metrics(db, principal=principal, agent_ids=[mine])[mine]
    return MyPipeline(
        total_leads=sum(sources.values()),
        private_leads=private,
        by_source=sorted(sources.items(), key=lambda kv: (-kv[1], kv[0])),
        appointments=appointments,
        week_start=monday,
        escrows=ytd.escrows,
        volume=ytd.volume,
        active_clients=book.active_clients,
        active_listings=book.active_listings,
    )


# --- the months of an agent's report -----------------------------------------------------------


@dataclass(frozen=True)
class Month:
    start: date
    end: date
    leads: int
    new_leads: int
    converted: int
    conversion_rate: float | None
    appointments: int
    completed: int
    no_shows: int
    show_rate: float | None
    escrows: int
    volume: Decimal
    commission: Decimal
    stored: bool  # a written `agent_kpis` snapshot, or computed now (the month is not yet in)


def months_of(
    db: Session,
    *,
    principal: Principal,
    agent_id: int,
    window: service.Window,
    snapshots: list[AgentKpi],
) -> list[Month]:
    """Every calendar month the window touches: its stored snapshot, or (for the current month
    and any month the monthly job has not written yet) the same figures computed now."""
    stored = {s.period_start: s for s in snapshots}
    agent = db.get(User, agent_id)
    assert agent is not None
    zone = service.zone_of(db, principal.tenant_id)
    out = []
    day = window.start_date.replace(day=1)
    while day <= window.end_date:
        first, last = service.month_bounds(day)
        snap = stored.get(first)
        if snap is not None:
            out.append(
                Month(
                    first,
                    last,
                    snap.total_leads,
                    snap.new_leads,
                    snap.converted_leads,
                    float(snap.conversion_rate) if snap.conversion_rate is not None else None,
                    snap.total_appointments,
                    snap.completed_appointments,
                    snap.no_shows,
                    float(snap.show_rate) if snap.show_rate is not None else None,
                    snap.total_escrows,
                    snap.total_volume,
                    snap.total_commission,
                    True,
                )
            )
        else:
            upto = min(last, window.end_date)
            w = service.calendar_window(first, upto, zone, first.strftime("%B %Y"))
            [k] = service.kpis_for(db, principal=principal, agents=[agent], window=w)
            out.append(
                Month(
                    first,
                    upto,
                    k.total_leads,
                    k.new_leads_30d,
                    k.converted_leads,
                    k.conversion_rate,
                    k.appointments,
                    k.completed_appointments,
                    k.no_shows,
                    k.show_rate,
                    k.escrows,
                    k.volume,
                    k.commission,
                    False,
                )
            )
        day = last + timedelta(days=1)
    return out
