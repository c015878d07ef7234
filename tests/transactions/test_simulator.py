"""The simulator: it reproduces the published figures it is built from, its deals obey the
milestone plan, replaying a day never shows what happened later, and a deal stored as rows
replays exactly as the simulator saw it. Also the demo book built from it."""

from __future__ import annotations

import random
import statistics
from collections import Counter
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from doorstep.demo import DemoContext, seed_platform
from doorstep.platform.auth import Tenant, User
from doorstep.platform.db import utcnow
from doorstep.transactions import demo, rules, simulator
from doorstep.transactions.models import (
    EscrowStatus,
    Milestone,
    Prediction,
    Transaction,
    TransactionEvent,
    TransactionParty,
)
from doorstep.transactions.simulator import DEFAULT_PARAMETERS as P
from tests.conftest import Brokerage

START, END = date(2023, 1, 1), date(2025, 12, 31)


@pytest.fixture(scope="module")
def book() -> list[simulator.SimulatedDeal]:
    return simulator.simulate_book(
        random.Random(11), count=8000, first_contract=START, last_contract=END
    )


def test_median_contract_to_close_per_loan_type(book: list[simulator.SimulatedDeal]) -> None:
    for loan_type, median in P.median_days_to_close.items():
        days = [d.days_to_close for d in book if d.loan_type == loan_type and d.days_to_close]
        assert len(days) > 300
        assert abs(statistics.median(days) - median) <= 2, loan_type
    # The order the sources give: cash fastest, FHA and VA slower than conventional.
    medians = {
        t: statistics.median(d.days_to_close for d in book if d.loan_type == t and d.days_to_close)
        for t in rules.LOAN_TYPES
    }
    assert medians["cash"] <= 28 < medians["conventional"] < medians["fha"] <= medians["va"]


def test_cancellation_and_late_settlement_rates(book: list[simulator.SimulatedDeal]) -> None:
    cancelled = sum(d.outcome == "cancelled" for d in book) / len(book)
    assert abs(cancelled - P.cancellation_rate) < 0.012
    for loan_type, rate in P.late_settlement_rate.items():
        closed = [d for d in book if d.loan_type == loan_type and d.outcome == "closed"]
        late = sum(d.delayed for d in closed) / len(closed)
        assert abs(late - rate) < 0.045, loan_type
    mix = Counter(d.loan_type for d in book)
    for loan_type, share in P.loan_mix.items():
        assert abs(mix[loan_type] / len(book) - share) < 0.02


def test_delay_causes_in_published_proportions(book: list[simulator.SimulatedDeal]) -> None:
    financed = [d.delay_cause for d in book if d.delay_cause and d.loan_type != "cash"]
    counts = Counter(financed)
    assert len(financed) > 800
    for cause, share in P.delay_causes.items():
        assert abs(counts[cause] / len(financed) - share) < 0.04, cause
    cash = {d.delay_cause for d in book if d.delay_cause and d.loan_type == "cash"}
    assert cash <= {"inspection", "title", "other"}


def test_timelines_follow_the_plan(book: list[simulator.SimulatedDeal]) -> None:
    for deal in book[:2000]:
        by_type = {m.milestone_type: m for m in deal.history.milestones}
        assert [m.milestone_type for m in deal.history.milestones] == [
            s.milestone_type for s in rules.default_plan(deal.loan_type)
        ]
        for m in deal.history.milestones:
            if m.actual_date is None:
                continue
            assert deal.contract_date <= m.actual_date <= deal.ended_on
            for required in m.requires:
                done = by_type[required].actual_date
                assert done is not None
                assert done <= m.actual_date
        if deal.outcome == "closed":
            assert all(m.actual_date is not None for m in deal.history.milestones)
            assert by_type["closing_day"].actual_date == deal.actual_closing_date
        else:
            assert deal.cancelled_on is not None
            assert deal.actual_closing_date is None
            assert deal.cancelled_on < deal.target_closing_date
            assert by_type["closing_day"].actual_date is None


def test_the_same_seed_makes_the_same_deals() -> None:
    first = simulator.simulate_book(random.Random(5), count=50, first_contract=START,
                                    last_contract=END)  # fmt: skip
    again = simulator.simulate_book(random.Random(5), count=50, first_contract=START,
                                    last_contract=END)  # fmt: skip
    assert first == again


def _cut(history: simulator.DealHistory, day: date) -> simulator.DealHistory:
    """The history as it stood at the end of `day`: whatever came later removed."""
    milestones = []
    for m in history.milestones:
        changes = tuple(c for c in m.changes if c[0] <= day)
        done = m.actual_date if m.actual_date is not None and m.actual_date <= day else None
        milestones.append(replace(m, changes=changes, actual_date=done))
    return replace(
        history,
        milestones=tuple(milestones),
        contacts=tuple(c for c in history.contacts if c <= day),
        stakeholder_changes=tuple(s for s in history.stakeholder_changes or () if s[0] <= day),
    )


def test_facts_at_never_leaks_the_future(book: list[simulator.SimulatedDeal]) -> None:
    checked = 0
    for deal in book[:600]:
        span = (deal.ended_on - deal.contract_date).days
        for offset in (0, 1, span // 3, span // 2, span - 1, span, span + 5):
            day = deal.contract_date + timedelta(days=offset)
            facts = simulator.facts_at(deal, day)
            # Nothing completed after the day, no contact after it, no delay known after it.
            for m in facts.milestones:
                if m.status == "completed":
                    assert m.actual_date is not None
                    assert m.actual_date <= day
                else:
                    assert m.actual_date is None
            assert facts.last_communication <= day
            # The strongest form: forgetting everything after the day changes nothing.
            assert facts == simulator.facts_on(_cut(deal.history, day), day)
            checked += 1
    assert checked > 4000


def test_features_carry_signal_that_is_not_a_giveaway(
    book: list[simulator.SimulatedDeal],
) -> None:
    # Early in a deal, readiness and replies differ between deals that end badly and the rest,
    # but the two groups overlap widely.
    early = [(d, simulator.facts_at(d, d.contract_date + timedelta(days=8))) for d in book]
    early = [(d, f) for d, f in early if d.ended_on > f.today and d.loan_type != "cash"]
    bad = [f.days_since_contact for d, f in early if d.delayed]
    good = [f.days_since_contact for d, f in early if not d.delayed]
    assert statistics.mean(bad) > statistics.mean(good)
    assert max(good) >= statistics.median(bad)
    waiting_bad = statistics.mean(
        sum(not v for v in f.stakeholders.values()) for d, f in early if d.delayed
    )
    waiting_good = statistics.mean(
        sum(not v for v in f.stakeholders.values()) for d, f in early if not d.delayed
    )
    assert waiting_bad > waiting_good


def test_a_deal_stored_as_rows_replays_as_the_simulator_saw_it(
    db: Session, brokerage: Brokerage
) -> None:
    rng = random.Random(3)
    tenant_id = brokerage.tenant.id
    deals = [
        simulator.simulate_deal(rng, contract_date=date(2025, 3, 1), loan_type=loan)
        for loan in ("conventional", "fha", "cash", "va")
        for _ in range(5)
    ]
    planned = [
        demo._Deal(
            history=d.history,
            state_day=d.ended_on,
            status=EscrowStatus.closed if d.outcome == "closed" else EscrowStatus.cancelled,
            agent=brokerage.agent,
            buyer_name="Pat Doe",
            price=demo._price(rng),
            actual_closing_date=d.actual_closing_date,
            cancellation_reason=d.cancellation_reason,
        )
        for d in deals
    ]
    rows, states = demo._rows(rng, planned, tenant_id)
    for row in rows:
        row["transaction_id"] = f"T-{row['transaction_id']}-{rng.random():.6f}"[:32]
    for deal, sim, row, state in zip(planned, deals, rows, states, strict=True):
        tx = Transaction(**row)
        db.add(tx)
        db.flush()
        for m in demo._milestones(deal, state, tenant_id, tx.id):
            db.add(Milestone(**m))
        for e in demo._events(deal, tenant_id, tx.id):
            db.add(TransactionEvent(**e))
        db.flush()
        milestones = list(db.scalars(select(Milestone).where(Milestone.transaction_id == tx.id)))
        events = list(
            db.scalars(select(TransactionEvent).where(TransactionEvent.transaction_id == tx.id))
        )
        assert simulator.ended_on(tx, events) == sim.ended_on
        for day in simulator.snapshot_days(sim.contract_date, sim.target_closing_date,
                                           sim.ended_on, (0.1, 0.3, 0.5, 0.7, 0.9)):  # fmt: skip
            replayed = simulator.facts_from_rows(tx, milestones, day, events)
            expected = replace(simulator.facts_at(sim, day), buyer_name="Pat")
            assert replayed == expected, (sim.loan_type, day)


# --- the demo book -------------------------------------------------------------------------------


def _demo(db: Session) -> tuple[DemoContext, Tenant]:
    ctx = DemoContext(session=db, rng=random.Random(20261121), password_hash="x")
    seed_platform(ctx)
    return ctx, ctx.tenants["riley-realty"]


def _book_of(db: Session, tenant: Tenant) -> list[tuple[object, ...]]:
    return [
        tuple(row)
        for row in db.execute(
            select(
                Transaction.transaction_id,
                Transaction.buyer_name,
                Transaction.escrow_status,
                Transaction.contract_date,
                Transaction.actual_closing_date,
                Transaction.purchase_price,
                Transaction.progress_percentage,
                Transaction.health_score,
            )
            .where(Transaction.tenant_id == tenant.id)
            .order_by(Transaction.transaction_id)
        )
    ]


def test_demo_book_for_riley_realty(db: Session) -> None:
    ctx, riley = _demo(db)
    savepoint = db.begin_nested()
    demo.seed_demo(ctx)
    first = _book_of(db, riley)
    counts = Counter(status for _, _, status, *_ in first)
    assert counts[EscrowStatus.active] == demo.OPEN_DEALS
    assert counts[EscrowStatus.closed] + counts[EscrowStatus.cancelled] == demo.ENDED_DEALS
    assert 0.11 < counts[EscrowStatus.cancelled] / demo.ENDED_DEALS < 0.18
    agents = db.scalar(
        select(func.count(func.distinct(Transaction.agent_id))).where(
            Transaction.tenant_id == riley.id
        )
    )
    assert agents == 40
    prices = [Decimal(str(row[5])) for row in first]
    assert min(prices) >= 250_000
    assert max(prices) <= 1_200_000

    # Sam Buyer's purchase: the seed's example, four milestones done, loan approval under way.
    sam = ctx.users["buyer@doorstep.demo"]
    tx = db.scalar(
        select(Transaction)
        .join(TransactionParty, TransactionParty.transaction_id == Transaction.id)
        .where(TransactionParty.user_id == sam.id)
    )
    assert tx is not None
    assert tx.buyer_name == "Sam Buyer"
    assert tx.agent_id == ctx.users["agent@doorstep.demo"].id
    assert rules.shown_percent(tx.progress_percentage) == 73
    assert 18 <= (tx.target_closing_date - utcnow().date()).days <= 24
    statuses: dict[str, str] = dict(
        db.execute(
            select(Milestone.milestone_type, Milestone.status).where(
                Milestone.transaction_id == tx.id
            )
        ).all()
    )
    assert statuses["loan_approval"] == "in_progress"
    assert statuses["appraisal_ordered"] == "completed"
    assert statuses["title_search"] == "pending"

    # Every client of Jayden Metz follows an open purchase of his.
    jayden = ctx.users["agent@doorstep.demo"]
    clients = set(db.scalars(select(User.id).where(User.agent_id == jayden.id)))
    linked = set(
        db.scalars(
            select(TransactionParty.user_id)
            .join(Transaction, Transaction.id == TransactionParty.transaction_id)
            .where(Transaction.agent_id == jayden.id, Transaction.escrow_status == "Active")
        )
    )
    assert clients
    assert clients <= linked

    # Ended deals carry scored baseline predictions, so live accuracy has figures at once.
    scored = db.scalar(
        select(func.count())
        .select_from(Prediction)
        .where(Prediction.tenant_id == riley.id, Prediction.outcome_delayed.is_not(None))
    )
    assert scored
    assert scored > demo.ENDED_DEALS

    # Idempotent: a second run adds nothing.
    demo.seed_demo(ctx)
    assert _book_of(db, riley) == first

    # Deterministic: from scratch again, the very same book.
    savepoint.rollback()
    assert _book_of(db, riley) == []
    demo.seed_demo(ctx)
    assert _book_of(db, riley) == first
