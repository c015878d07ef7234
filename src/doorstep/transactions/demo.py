"""Demo transactions for Riley Realty: about 2,000 ended deals over three years and 200 open
ones, simulated milestone by milestone, with Sam Buyer's purchase at 73% as in seed 000."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select

from doorstep.platform.auth import Role, Tenant, User
from doorstep.platform.db import utcnow
from doorstep.transactions import rules, simulator
from doorstep.transactions.models import (
    EscrowStatus,
    Milestone,
    Prediction,
    Transaction,
    TransactionEvent,
    TransactionParty,
    Visibility,
)

if TYPE_CHECKING:
    from doorstep.demo import DemoContext

TENANT = "riley-realty"
SEED = 20261122  # the demo's own stream: other seeders' draws never shift with this one's
ENDED_DEALS = 2000
OPEN_DEALS = 200
HISTORY_DAYS = 3 * 365
BATCH = 2000
CENT = Decimal("0.01")
# Riley Realty works the Sacramento region (its tenant is on Pacific time).
PLACES = (
    ("Sacramento", ("95811", "95814", "95816", "95818", "95819", "95822", "95831", "95864")),
    ("Elk Grove", ("95624", "95757", "95758")),
    ("Roseville", ("95661", "95678", "95747")),
    ("Folsom", ("95630",)),
    ("Rocklin", ("95677", "95765")),
    ("Davis", ("95616", "95618")),
    ("Citrus Heights", ("95610", "95621")),
    ("Carmichael", ("95608",)),
)
STREETS = (
    "Maple Grove", "Oak Hollow", "Riverbend", "Cedar Ridge", "Willow Creek", "Sunset Vista",
    "Granite Bay", "Meadowlark", "Foxtail", "Laurel Canyon", "Harvest Moon", "Silver Pine",
    "Bridgewater", "Quail Run", "Autumn Leaf", "Stonecrest", "Juniper", "Magnolia", "Sycamore",
    "Briarwood", "Cobblestone", "Eagle Rock", "Lakeview", "Mission Hills", "Vineyard",
)  # fmt: skip
SUFFIXES = ("Lane", "Drive", "Court", "Way", "Avenue", "Circle", "Street", "Place")
DOWN_SHARES = {"conventional": (0.05, 0.10, 0.10, 0.20, 0.20, 0.25), "fha": (0.035,), "va": (0.0,)}


@dataclass
class _Deal:
    history: simulator.DealHistory
    state_day: date  # the day its rows show: today for open deals, the last day otherwise
    status: str
    agent: User
    buyer_name: str
    price: Decimal
    actual_closing_date: date | None = None
    cancellation_reason: str | None = None
    parties: list[int] = field(default_factory=list)
    address: tuple[str, str, str] | None = None  # street, city, zip; drawn when None


def _money(value: float) -> Decimal:
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def _at(day: date, minute: int = 0) -> datetime:
    """A stable time of day for things that happened on `day` (mid-morning Pacific, in UTC)."""
    return datetime.combine(day, time(17, 0), tzinfo=UTC) + timedelta(minutes=minute)


def _price(rng: random.Random) -> Decimal:
    value = min(1_200_000, max(250_000, rng.lognormvariate(13.2, 0.38)))
    return Decimal(round(value, -3))


def _simulate_until(
    rng: random.Random, *, today: date, earliest: int, latest: int, open_today: bool
) -> simulator.SimulatedDeal:
    """A deal signed `earliest`-`latest` days ago that is still open today (or has ended)."""
    while True:
        signed = today - timedelta(days=rng.randint(earliest, latest))
        deal = simulator.simulate_deal(
            rng, contract_date=signed, loan_type=simulator.draw_loan_type(rng)
        )
        if (deal.ended_on > today) == open_today:
            return deal


def _sam_history(today: date) -> simulator.DealHistory:
    """Seed 000's example: contract, loan application, inspection and appraisal done, loan
    approval under way (72.5%, shown as 73%), closing in three weeks."""
    contract, closing = today - timedelta(days=23), today + timedelta(days=21)
    steps = rules.default_plan("conventional")
    targets = rules.target_dates(steps, contract, closing)
    done = {
        "contract_signed": contract,
        "loan_application": targets["loan_application"],
        "home_inspection": targets["home_inspection"],
        "appraisal_ordered": targets["appraisal_ordered"],
    }
    milestones = []
    for s in steps:
        changes: list[tuple[date, str]] = []
        if s.milestone_type == "loan_approval":
            changes.append((targets["appraisal_ordered"] + timedelta(days=1), "in_progress"))
        if s.milestone_type in done:
            if s.milestone_type == "home_inspection":
                changes.append((targets["home_inspection"] - timedelta(days=2), "in_progress"))
            changes.append((done[s.milestone_type], "completed"))
        milestones.append(
            simulator.MilestoneHistory(
                milestone_type=s.milestone_type,
                name=s.name,
                order_sequence=s.order_sequence,
                weight=s.weight,
                target_date=targets[s.milestone_type],
                requires=s.requires,
                optional=s.optional,
                changes=tuple(changes),
                actual_date=done.get(s.milestone_type),
            )
        )
    parties = simulator.stakeholders_for("conventional")
    snapshots: list[tuple[date, dict[str, bool]]] = [(contract, dict.fromkeys(parties, False))]
    for party, day in (
        ("inspector", contract + timedelta(days=2)),
        ("appraiser", contract + timedelta(days=6)),
        ("lender", contract + timedelta(days=9)),
        ("seller's agent", contract + timedelta(days=15)),
    ):
        snapshots.append((day, {**snapshots[-1][1], party: True}))
    contacts = {contract, *(d for m in milestones for d, _ in m.changes)}
    contacts.update(today - timedelta(days=n) for n in (1, 5, 9, 16))
    return simulator.DealHistory(
        loan_type="conventional",
        contract_date=contract,
        target_closing_date=closing,
        milestones=tuple(milestones),
        contacts=tuple(sorted(contacts)),
        stakeholder_changes=tuple(snapshots),
        buyer_name="Sam",
    )


def _plan_deals(
    rng: random.Random, session: Any, tenant: Tenant, today: date
) -> list[_Deal] | None:
    agents = list(
        session.scalars(
            select(User)
            .where(User.tenant_id == tenant.id, User.role == Role.agent)
            .order_by(User.id)
        )
    )
    if not agents:
        return None
    clients: dict[int, list[User]] = {}
    for user in session.scalars(
        select(User).where(User.tenant_id == tenant.id, User.role == Role.client).order_by(User.id)
    ):
        if user.agent_id is not None:
            clients.setdefault(user.agent_id, []).append(user)
    # Some agents sell far more than others.
    weights = [rng.lognormvariate(0, 0.6) for _ in agents]
    from doorstep.demo import FIRST, LAST

    def buyer() -> str:
        return f"{rng.choice(FIRST)} {rng.choice(LAST)}"

    deals: list[_Deal] = []
    for _ in range(ENDED_DEALS):
        sim = _simulate_until(rng, today=today, earliest=75, latest=HISTORY_DAYS, open_today=False)
        deals.append(
            _Deal(
                history=sim.history,
                state_day=sim.ended_on,
                status=EscrowStatus.closed if sim.outcome == "closed" else EscrowStatus.cancelled,
                agent=rng.choices(agents, weights)[0],
                buyer_name=buyer(),
                price=_price(rng),
                actual_closing_date=sim.actual_closing_date,
                cancellation_reason=sim.cancellation_reason,
            )
        )
    sam_user = session.scalar(select(User).where(User.email == "buyer@doorstep.demo"))
    open_deals: list[_Deal] = []
    if sam_user is not None and sam_user.agent_id is not None:
        agent = next((a for a in agents if a.id == sam_user.agent_id), None)
        if agent is not None:
            open_deals.append(
                _Deal(
                    history=_sam_history(today),
                    state_day=today,
                    status=EscrowStatus.active,
                    agent=agent,
                    buyer_name=sam_user.full_name,
                    price=Decimal(485_000),
                    parties=[sam_user.id],
                    address=("1847 Maple Grove Lane", "Roseville", "95661"),
                )
            )
    while len(open_deals) < OPEN_DEALS:
        sim = _simulate_until(rng, today=today, earliest=1, latest=55, open_today=True)
        open_deals.append(
            _Deal(
                history=sim.history,
                state_day=today,
                status=EscrowStatus.active,
                agent=rng.choices(agents, weights)[0],
                buyer_name=buyer(),
                price=_price(rng),
            )
        )
    # Every client user of an agent is the buyer on one of that agent's open deals, so each
    # demo client has a purchase to follow in the portal.
    for agent in agents:
        waiting = [c for c in clients.get(agent.id, []) if sam_user is None or c.id != sam_user.id]
        mine = [d for d in open_deals if d.agent.id == agent.id and not d.parties]
        for client, deal in zip(waiting, mine, strict=False):
            deal.buyer_name, deal.parties = client.full_name, [client.id]
    return deals + open_deals


def _milestone_json(m: simulator.MilestoneHistory, status: str) -> dict[str, Any]:
    return {
        "milestone_type": m.milestone_type,
        "name": m.name,
        "status": status,
        "target_date": m.target_date.isoformat(),
        "actual_date": m.actual_date.isoformat()
        if status == "completed" and m.actual_date
        else None,
        "order_sequence": m.order_sequence,
    }


VERBS = {"in_progress": "started", "completed": "completed", "delayed": "delayed"}


def _events(deal: _Deal, tenant_id: int, tx_id: int) -> list[dict[str, Any]]:
    """The deal's activity feed, as the service would have written it day by day."""
    h, end = deal.history, deal.state_day
    out: list[tuple[date, dict[str, Any]]] = []

    def add(day: date, **row: Any) -> None:
        out.append((day, {"tenant_id": tenant_id, "transaction_id": tx_id, "description": "",
                          "priority": "medium", "visibility": Visibility.client, "data": {},
                          **row}))  # fmt: skip

    first = h.stakeholder_changes[0][1] if h.stakeholder_changes else {}
    add(h.contract_date, event_type="transaction.created", title="Your purchase is under way",
        priority="high", data={"stakeholders": dict(first)})  # fmt: skip
    changed: set[date] = {h.contract_date}
    for m in h.milestones:
        for day, status in m.changes:
            if day > end or (m.milestone_type == "contract_signed" and status == "completed"):
                continue
            changed.add(day)
            add(day, event_type=f"milestone.{VERBS[status]}", title=f"{m.name} {VERBS[status]}",
                priority="high" if status in ("completed", "delayed") else "medium",
                data={"milestone": _milestone_json(m, status)})  # fmt: skip
    agent_first = deal.agent.full_name.split(" ")[0]
    for day in h.contacts:
        if day <= end and day not in changed:
            add(day, event_type="message.sent", title=f"Update from {agent_first}",
                priority="low", description="Your agent checked in on your purchase.")  # fmt: skip
    for day, parties in (h.stakeholder_changes or ())[1:]:
        if day <= end:
            add(day, event_type="stakeholders.updated", title="Party readiness updated",
                priority="low", visibility=Visibility.agent,
                data={"stakeholders": dict(parties)})  # fmt: skip
    if deal.status == EscrowStatus.closed:
        add(end, event_type="transaction.closed", title="Closed! Welcome home",
            priority="critical",
            data={"actual_closing_date": str(deal.actual_closing_date)})  # fmt: skip
    elif deal.status == EscrowStatus.cancelled:
        add(end, event_type="transaction.cancelled", title="Transaction cancelled",
            description=deal.cancellation_reason or "", priority="critical",
            visibility=Visibility.agent)  # fmt: skip
    out.sort(key=lambda e: e[0])
    return [{**row, "created_at": _at(day, i)} for i, (day, row) in enumerate(out)]


def _rows(
    rng: random.Random, deals: Sequence[_Deal], tenant_id: int
) -> tuple[list[dict[str, Any]], list[rules.TransactionFacts]]:
    rows, states = [], []
    for n, deal in enumerate(deals, start=1):
        h = deal.history
        facts = simulator.facts_on(h, deal.state_day)
        health = rules.health_score(facts)
        city, zips = rng.choice(PLACES)
        loan = h.loan_type
        if loan == "cash":
            down = deal.price
        else:
            down = _money(float(deal.price) * rng.choice(DOWN_SHARES[loan]))
        street = f"{rng.randint(100, 9899)} {rng.choice(STREETS)} {rng.choice(SUFFIXES)}"
        street, city, zip_code = deal.address or (street, city, rng.choice(zips))
        rows.append(
            {
                "tenant_id": tenant_id,
                "transaction_id": f"TX-{h.contract_date.year}-{n:05d}",
                "agent_id": deal.agent.id,
                "property_address": street,
                "property_city": city,
                "property_state": "CA",
                "property_zip": zip_code,
                "property_type": "residential",
                "buyer_name": deal.buyer_name,
                "purchase_price": deal.price,
                "down_payment": down,
                "loan_type": loan,
                "my_commission": _money(float(deal.price) * rng.uniform(0.025, 0.03)),
                "escrow_status": deal.status,
                "contract_date": h.contract_date,
                "target_closing_date": h.target_closing_date,
                "actual_closing_date": deal.actual_closing_date,
                "progress_percentage": rules.progress(facts.milestones),
                "health_score": health.score,
                "health_factors": health.as_json(),
                "stakeholders": dict(facts.stakeholders),
                "delay_count": facts.delay_count,
                "last_communication_at": _at(facts.last_communication),
                "cancellation_reason": deal.cancellation_reason,
                "notes": "",
                "created_at": _at(h.contract_date),
                "updated_at": _at(deal.state_day, 600),
            }
        )
        states.append(facts)
    return rows, states


def _milestones(deal: _Deal, facts: rules.TransactionFacts, tenant_id: int, tx_id: int) -> list:
    steps = {s.milestone_type: s for s in rules.default_plan(deal.history.loan_type)}
    out = []
    for m, state in zip(deal.history.milestones, facts.milestones, strict=True):
        touched = [d for d, _ in m.changes if d <= deal.state_day]
        out.append(
            {
                "tenant_id": tenant_id,
                "transaction_id": tx_id,
                "milestone_type": m.milestone_type,
                "name": m.name,
                "status": state.status,
                "order_sequence": m.order_sequence,
                "target_date": m.target_date,
                "actual_date": state.actual_date,
                "progress_weight": m.weight,
                "celebration_message": steps[m.milestone_type].celebration_message,
                "requires": list(m.requires),
                "optional": m.optional,
                "notes": "",
                "updated_at": _at(max(touched) if touched else deal.history.contract_date),
            }
        )
    return out


def _predictions(deal: _Deal, tenant_id: int, tx_id: int) -> list[dict[str, Any]]:
    """What the baseline would have said twice during an ended deal, scored by its outcome, so
    the status page has live accuracy to show from the first run."""
    h = deal.history
    late = deal.status == EscrowStatus.cancelled or (
        deal.actual_closing_date is not None and deal.actual_closing_date > h.target_closing_date
    )
    out = []
    for day in simulator.snapshot_days(
        h.contract_date, h.target_closing_date, deal.state_day, (0.4, 0.8)
    ):
        f = rules.baseline_delay(simulator.facts_on(h, day))
        out.append(
            {
                "tenant_id": tenant_id,
                "transaction_id": tx_id,
                "model_version": f.model_version,
                "delay_probability": f.delay_probability,
                "predicted_closing_date": f.predicted_closing_date,
                "closing_date_low": f.closing_date_low,
                "closing_date_high": f.closing_date_high,
                "confidence": f.confidence,
                "factors": f.factors,
                "risk_factors": f.risk_factors,
                "recommended_actions": f.recommended_actions,
                "created_at": _at(day, 5),
                "outcome_delayed": late,
                "outcome_closing_date": deal.actual_closing_date,
                "outcome_recorded_at": _at(deal.state_day, 601),
            }
        )
    return out


def _insert(session: Any, model: type, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), BATCH):
        session.execute(insert(model), rows[start : start + BATCH])


def seed_demo(ctx: DemoContext) -> None:
    """Riley Realty's transactions, once: a tenant that has any is left as it is."""
    session = ctx.session
    tenant = ctx.tenants.get(TENANT) or session.scalar(select(Tenant).where(Tenant.slug == TENANT))
    if tenant is None:
        return
    existing = session.scalar(
        select(func.count()).select_from(Transaction).where(Transaction.tenant_id == tenant.id)
    )
    if existing:
        return
    rng = random.Random(SEED)
    today = utcnow().date()
    deals = _plan_deals(rng, session, tenant, today)
    if not deals:
        return
    deals.sort(key=lambda d: (d.history.contract_date, d.buyer_name))
    rows, states = _rows(rng, deals, tenant.id)
    ids = list(
        session.scalars(
            insert(Transaction).returning(Transaction.id, sort_by_parameter_order=True), rows
        )
    )
    milestones: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    parties: list[dict[str, Any]] = []
    predictions: list[dict[str, Any]] = []
    for deal, facts, tx_id in zip(deals, states, ids, strict=True):
        milestones.extend(_milestones(deal, facts, tenant.id, tx_id))
        events.extend(_events(deal, tenant.id, tx_id))
        parties.extend(
            {"tenant_id": tenant.id, "transaction_id": tx_id, "user_id": u, "role": "buyer"}
            for u in deal.parties
        )
        if deal.status != EscrowStatus.active:
            predictions.extend(_predictions(deal, tenant.id, tx_id))
    _insert(session, Milestone, milestones)
    _insert(session, TransactionParty, parties)
    _insert(session, TransactionEvent, events)
    _insert(session, Prediction, predictions)
    session.flush()
