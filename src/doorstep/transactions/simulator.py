"""A simulated brokerage: whole home-purchase timelines drawn from published figures, and the state
of any deal (simulated, or a real one from its rows) as it looked on a given day."""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from doorstep.transactions import rules

if TYPE_CHECKING:
    from doorstep.transactions.models import Milestone, Transaction, TransactionEvent

CAUSES = ("financing", "appraisal", "inspection", "title", "other")
# The milestones a cause holds up, in the order they slip.
CAUSE_MILESTONES: dict[str, tuple[str, ...]] = {
    "financing": ("loan_approval",),
    "appraisal": ("appraisal_ordered", "loan_approval"),
    "inspection": ("home_inspection",),
    "title": ("title_search",),
    "other": ("closing_day",),  # insurance, funds, a party's schedule: closing itself moves
}
# Who confirms readiness for which milestone; a cause's party is the one that is not ready.
STAKEHOLDER_MILESTONE: dict[str, str] = {
    "lender": "loan_approval",
    "appraiser": "appraisal_ordered",
    "inspector": "home_inspection",
    "title company": "title_search",
    "seller's agent": "final_walkthrough",
}
CAUSE_STAKEHOLDER = {
    "financing": "lender",
    "appraisal": "appraiser",
    "inspection": "inspector",
    "title": "title company",
    "other": "seller's agent",
}
CANCELLATION_REASONS = {
    "financing": "Buyer's financing fell through",
    "appraisal": "Appraisal came in below the contract price",
    "inspection": "Buyer withdrew after the home inspection",
    "other": "Buyer withdrew (change of plans)",
}
# Milestones whose small slips are usually absorbed by the slack before closing.
HICCUP_MILESTONES = ("loan_application", "home_inspection", "appraisal_ordered", "title_search")
EVENT_STATUS = {
    "milestone.started": "in_progress",
    "milestone.completed": "completed",
    "milestone.delayed": "delayed",
    "milestone.skipped": "skipped",
    "milestone.pending": "pending",
}


def _mapping(**values: float) -> dict[str, float]:
    return dict(values)


@dataclass(frozen=True)
class SimulatorParameters:
    """Every number the simulator draws from. Published figures name their source (the full
    citations, with the exact figures, are in docs/models.md); the others are assumptions, said
    so, chosen so that what an agent can see carries signal without giving the outcome away.

    - `median_days_to_close`: contract to closing. ICE Mortgage Technology's Origination Insight
      Report puts purchase loans at about 41-50 days (it measures from the loan application,
      which follows the contract within days), FHA and VA slower than conventional; cash
      purchases close in one to four weeks.
    - `loan_mix`: assumption after NAR's Realtors Confidence Index (cash about 22-23% of sales in
      2017-2018) and ICE (conventional about 81%, FHA 10%, VA 6% of loans, 2021).
    - `cancellation_rate`: Redfin, 2025: 14.3% (January) and 14.9% (June) of homes that went
      under contract had the sale cancelled.
    - `late_settlement_rate`: NAR Realtors Confidence Index, 2018: about a fifth of contracts
      had a delayed settlement (19% in March-May 2018); financed deals more often than cash (the
      split by loan type is an assumption).
    - `delay_causes`: NAR Realtors Confidence Index, 2018: of delayed settlements, financing
      about 30%, appraisal 20%, home inspection 17%, title 11%; the remaining 22% is "other"
      (insurance, contingencies, scheduling). Cash deals have no financing or appraisal, so their
      delays are drawn from the other causes in the same proportions.
    - everything else (cancellation causes, slips, friction, readiness, contact gaps): assumption.
    """

    median_days_to_close: Mapping[str, int] = field(
        default_factory=lambda: {"cash": 21, "conventional": 44, "fha": 48, "va": 50}
    )
    # Half-width of the spread of agreed terms around the median (days).
    term_spread_days: Mapping[str, int] = field(
        default_factory=lambda: {"cash": 7, "conventional": 6, "fha": 6, "va": 6}
    )
    loan_mix: Mapping[str, float] = field(
        default_factory=lambda: _mapping(cash=0.22, conventional=0.60, fha=0.11, va=0.07)
    )
    cancellation_rate: float = 0.145
    late_settlement_rate: Mapping[str, float] = field(
        default_factory=lambda: _mapping(cash=0.10, conventional=0.21, fha=0.30, va=0.28)
    )
    delay_causes: Mapping[str, float] = field(
        default_factory=lambda: _mapping(
            financing=0.30, appraisal=0.20, inspection=0.17, title=0.11, other=0.22
        )
    )
    # Assumption: inspection and finances are the usual reasons a buyer walks away (Redfin's
    # agents say so in the same reports, without shares).
    cancellation_causes: Mapping[str, float] = field(
        default_factory=lambda: _mapping(
            inspection=0.35, financing=0.30, appraisal=0.15, other=0.20
        )
    )
    # Each deal has a hidden friction (standard normal): how disorganised its parties are. It
    # raises the odds of a late closing and of a cancellation by this much (log-odds per SD), and
    # shows, noisily, in slow replies, parties confirming late and small early slips.
    friction_log_odds: float = 1.1
    # Busier months for lenders, appraisers and title (assumption): log-odds added.
    peak_months: tuple[int, ...] = (5, 6, 7, 8, 12)
    peak_log_odds: float = 0.25
    # How late a late closing is: log-normal days, median and spread.
    slip_median_days: float = 6.0
    slip_sigma: float = 0.65
    slip_max_days: int = 35
    # A milestone that slips a few days without moving closing (share of deals).
    hiccup_rate: float = 0.25
    # On-time deals that close a few days early.
    early_close_rate: float = 0.08
    # Days between updates the buyer gets, on average, for a deal of average friction.
    contact_gap_days: float = 3.0
    contact_gap_friction: float = 0.45
    # Share of milestones an agent marks "in progress" before completing them.
    marked_started_rate: float = 0.7
    # Share of slips an agent records as "delayed" (the rest only show as overdue).
    marked_delayed_rate: float = 0.75
    # Share of cancellations whose cause milestone was marked delayed first.
    cancel_flagged_rate: float = 0.65


DEFAULT_PARAMETERS = SimulatorParameters()


# --- the history of a deal, and its state on a given day -----------------------------------------


@dataclass(frozen=True, slots=True)
class MilestoneHistory:
    milestone_type: str
    name: str
    order_sequence: int
    weight: Decimal
    target_date: date
    requires: tuple[str, ...]
    optional: bool
    # (day, new status), in the order they happened.
    changes: tuple[tuple[date, str], ...]
    actual_date: date | None  # the day it was completed, if it ever was

    def status_on(self, day: date) -> str:
        status = "pending"
        for when, new in self.changes:
            if when > day:
                break
            status = new
        return status


@dataclass(frozen=True, slots=True)
class DealHistory:
    """Everything that happened to a deal, each with its day, so any past day can be replayed."""

    loan_type: str
    contract_date: date
    target_closing_date: date
    milestones: tuple[MilestoneHistory, ...]
    contacts: tuple[date, ...]  # sorted: days the buyer heard from the brokerage
    # (day, every party's readiness from that day on); None when nobody recorded it.
    stakeholder_changes: tuple[tuple[date, Mapping[str, bool]], ...] | None
    buyer_name: str = "the buyer"


def facts_on(history: DealHistory, as_of: date) -> rules.TransactionFacts:
    """The deal as it looked at the end of `as_of`: nothing that happened later shows."""
    states = []
    delays = 0
    for m in history.milestones:
        status = m.status_on(as_of)
        delays += sum(1 for when, new in m.changes if new == "delayed" and when <= as_of)
        states.append(
            rules.MilestoneState(
                milestone_type=m.milestone_type,
                name=m.name,
                status=status,
                order_sequence=m.order_sequence,
                weight=m.weight,
                target_date=m.target_date,
                actual_date=m.actual_date if status == "completed" else None,
                requires=m.requires,
                optional=m.optional,
            )
        )
    seen = bisect.bisect_right(history.contacts, as_of)
    last = history.contacts[seen - 1] if seen else history.contract_date
    stakeholders: Mapping[str, bool] = {}
    for when, snapshot in history.stakeholder_changes or ():
        if when > as_of:
            break
        stakeholders = snapshot
    return rules.TransactionFacts(
        milestones=tuple(states),
        today=as_of,
        contract_date=history.contract_date,
        target_closing_date=history.target_closing_date,
        loan_type=history.loan_type,
        last_communication=min(last, as_of),
        delay_count=delays,
        stakeholders=dict(stakeholders),
        buyer_name=history.buyer_name,
    )


# --- simulated deals ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SimulatedDeal:
    loan_type: str
    contract_date: date
    target_closing_date: date
    outcome: str  # "closed" or "cancelled"
    actual_closing_date: date | None
    cancelled_on: date | None
    delay_cause: str | None  # what made closing late, if it was
    cancellation_cause: str | None
    friction: float  # hidden; never a feature
    history: DealHistory

    @property
    def ended_on(self) -> date:
        end = self.actual_closing_date or self.cancelled_on
        assert end is not None
        return end

    @property
    def delayed(self) -> bool:
        """What the model predicts: closing later than the target, or not at all."""
        return self.outcome == "cancelled" or (
            self.actual_closing_date is not None
            and self.actual_closing_date > self.target_closing_date
        )

    @property
    def days_to_close(self) -> int | None:
        if self.actual_closing_date is None:
            return None
        return (self.actual_closing_date - self.contract_date).days

    @property
    def cancellation_reason(self) -> str | None:
        if self.cancellation_cause is None:
            return None
        return CANCELLATION_REASONS[self.cancellation_cause]


def facts_at(deal: SimulatedDeal, as_of: date) -> rules.TransactionFacts:
    """The simulated deal as an agent would have seen it on `as_of`."""
    return facts_on(deal.history, as_of)


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


# Gauss-Hermite-like grid over a standard normal, for the mean of a logistic over friction.
_GRID = [i / 10 for i in range(-50, 51)]
_WEIGHTS = [math.exp(-z * z / 2) for z in _GRID]


@lru_cache(maxsize=256)
def _offset(rate: float, slope: float, survivors_of: float | None = None) -> float:
    """The log-odds offset `a` for which the mean over friction z of sigmoid(a + slope z) is
    `rate`: how each published rate stays the population's rate once friction spreads it. With
    `survivors_of` (the offset of the cancellation odds), the mean is over the deals that were
    not cancelled, as a late-settlement rate is."""
    weights = _WEIGHTS
    if survivors_of is not None:
        weights = [
            w * (1 - _sigmoid(survivors_of + slope * z))
            for z, w in zip(_GRID, _WEIGHTS, strict=True)
        ]
    total = sum(weights)
    lo, hi = -20.0, 20.0
    for _ in range(60):
        mid = (lo + hi) / 2
        mean = sum(w * _sigmoid(mid + slope * z) for z, w in zip(_GRID, weights, strict=True))
        if mean / total < rate:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _pick(rng: random.Random, shares: Mapping[str, float], allowed: Iterable[str]) -> str:
    options = [(k, v) for k, v in shares.items() if k in set(allowed)]
    total = sum(v for _, v in options)
    draw = rng.random() * total
    for key, share in options:
        draw -= share
        if draw < 0:
            return key
    return options[-1][0]


def draw_loan_type(rng: random.Random, params: SimulatorParameters = DEFAULT_PARAMETERS) -> str:
    return _pick(rng, params.loan_mix, params.loan_mix)


def stakeholders_for(loan_type: str) -> tuple[str, ...]:
    steps = {s.milestone_type for s in rules.default_plan(loan_type)}
    return tuple(k for k, m in STAKEHOLDER_MILESTONE.items() if m in steps)


def _day(d: date, days: int) -> date:
    return d + timedelta(days=days)


def simulate_deal(
    rng: random.Random,
    *,
    contract_date: date,
    loan_type: str,
    params: SimulatorParameters = DEFAULT_PARAMETERS,
    buyer_name: str = "the buyer",
) -> SimulatedDeal:
    """One purchase from contract to closing (or cancellation), milestone by milestone."""
    steps = rules.default_plan(loan_type)
    kinds = {s.milestone_type for s in steps}
    median = params.median_days_to_close[loan_type]
    spread = params.term_spread_days[loan_type]
    term = max(7, median + rng.randint(-spread, spread))
    target_close = _day(contract_date, term)
    targets = rules.target_dates(steps, contract_date, target_close)
    z = rng.gauss(0, 1)
    slope = params.friction_log_odds
    season = params.peak_log_odds if target_close.month in params.peak_months else (
        -params.peak_log_odds * len(params.peak_months) / (12 - len(params.peak_months))
    )  # fmt: skip
    cancel_odds = _offset(params.cancellation_rate, slope)
    cancelled = rng.random() < _sigmoid(cancel_odds + slope * z)
    late = not cancelled and rng.random() < _sigmoid(
        _offset(params.late_settlement_rate[loan_type], slope, cancel_odds) + slope * z + season
    )
    available = [c for c in CAUSES if all(m in kinds for m in CAUSE_MILESTONES[c][:1])]

    # Natural completion days: around the target, a little later when the parties are slow.
    actual: dict[str, date] = {}
    for s in steps:
        if s.milestone_type == "contract_signed":
            actual[s.milestone_type] = contract_date
            continue
        noise = rng.choice((-3, -2, -1, -1, 0, 0, 0, 0, 1, 1, 2))
        drag = round(max(0.0, z) * rng.random() * 2.5)
        actual[s.milestone_type] = max(
            _day(contract_date, 1), _day(targets[s.milestone_type], noise + drag)
        )
    delayed_on: dict[str, date] = {}
    cause: str | None = None
    planned_close = target_close
    if late:
        cause = _pick(rng, params.delay_causes, available)
        slip = min(
            params.slip_max_days,
            max(1, round(rng.lognormvariate(math.log(params.slip_median_days), params.slip_sigma))),
        )
        planned_close = _day(target_close, slip)
        for kind in CAUSE_MILESTONES[cause]:
            if kind == "closing_day":
                delayed_on[kind] = max(
                    _day(contract_date, 1), _day(target_close, -rng.randint(0, 4))
                )
                continue
            actual[kind] = max(actual[kind], _day(targets[kind], slip + rng.randint(0, 3)))
            delayed_on[kind] = max(_day(contract_date, 1), _day(targets[kind], -rng.randint(0, 3)))
    elif not cancelled and rng.random() < params.early_close_rate:
        planned_close = _day(target_close, -rng.randint(1, 3))
    hiccup_odds = _offset(params.hiccup_rate, 0.8) + 0.8 * z
    candidates = [k for k in HICCUP_MILESTONES if k in kinds and k not in delayed_on]
    if candidates and rng.random() < _sigmoid(hiccup_odds):
        kind = rng.choice(candidates)
        latest = _day(targets.get("final_walkthrough", target_close), -2)
        actual[kind] = min(max(actual[kind], _day(targets[kind], rng.randint(2, 6))), latest)
        delayed_on[kind] = max(_day(contract_date, 1), _day(targets[kind], -rng.randint(0, 2)))

    # Nothing completes before what it requires; closing waits for everything it needs.
    by_type = {s.milestone_type: s for s in steps}
    for s in steps:
        if s.milestone_type in ("final_walkthrough", "closing_day"):
            continue
        for r in s.requires:
            if r in actual:
                actual[s.milestone_type] = max(actual[s.milestone_type], actual[r])
    close_needs = [actual[r] for r in by_type["closing_day"].requires if r in actual
                   and r != "final_walkthrough"]  # fmt: skip
    walk = by_type.get("final_walkthrough")
    walk_needs = [actual[r] for r in walk.requires if r in actual] if walk else []
    closing = max([planned_close, *(_day(d, 1) for d in close_needs + walk_needs)])
    if walk is not None:
        actual["final_walkthrough"] = max(
            [*walk_needs, _day(closing, -rng.choice((0, 1, 1, 2, 3)))]
        )
    actual["closing_day"] = closing

    started: dict[str, date] = {}
    for s in steps:
        if s.milestone_type == "contract_signed" or rng.random() >= params.marked_started_rate:
            continue
        ready = max([contract_date, *(actual[r] for r in s.requires if r in actual)])
        begin = max(ready, _day(actual[s.milestone_type], -rng.randint(2, 10)))
        if begin < actual[s.milestone_type]:
            started[s.milestone_type] = begin

    cancelled_on: date | None = None
    cancel_cause: str | None = None
    flagged: set[str] = set()  # delays recorded for certain
    if cancelled:
        cancel_cause = _pick(
            rng,
            params.cancellation_causes,
            [c for c in params.cancellation_causes if c in available],
        )
        first = CAUSE_MILESTONES[cancel_cause][0]
        if cancel_cause == "other":
            day = _day(contract_date, rng.randint(3, term - 1))
        elif cancel_cause == "inspection":
            day = _day(targets[first], rng.randint(0, 6))
        elif cancel_cause == "financing":
            day = _day(targets[first], rng.randint(-6, 5))
        else:
            day = _day(targets[first], rng.randint(2, 10))
        cancelled_on = min(max(day, _day(contract_date, 2)), _day(target_close, -1))
        if first != "closing_day" and rng.random() < params.cancel_flagged_rate:
            flagged.add(first)
            delayed_on[first] = max(_day(contract_date, 1), _day(cancelled_on, -rng.randint(1, 8)))
        for kind in list(actual):
            if kind == first or actual[kind] > cancelled_on:
                del actual[kind]
        started = {k: d for k, d in started.items() if d <= cancelled_on}

    end = cancelled_on or closing
    recorded = {k for k in delayed_on if k in flagged or rng.random() < params.marked_delayed_rate}
    milestones = []
    change_days: list[date] = []
    for s in steps:
        kind = s.milestone_type
        done = actual.get(kind)
        changes = []
        if kind in started and (done is None or started[kind] < done):
            changes.append((started[kind], "in_progress"))
        flag = delayed_on.get(kind)
        if flag is not None and kind not in recorded:
            flag = None
        if flag is not None and flag <= end and (done is None or flag < done):
            changes.append((flag, "delayed"))
        if done is not None:
            changes.append((done, "completed"))
        changes.sort(key=lambda c: c[0])
        change_days.extend(d for d, _ in changes)
        milestones.append(
            MilestoneHistory(
                milestone_type=kind,
                name=s.name,
                order_sequence=s.order_sequence,
                weight=s.weight,
                target_date=targets[kind],
                requires=s.requires,
                optional=s.optional,
                changes=tuple(changes),
                actual_date=done,
            )
        )

    contacts = {contract_date, *change_days}
    gap = params.contact_gap_days * math.exp(params.contact_gap_friction * z)
    day = contract_date
    while True:
        day = _day(day, 1 + int(rng.expovariate(1 / gap)))
        if day > end:
            break
        contacts.add(day)

    parties = stakeholders_for(loan_type)
    ready_on: dict[str, date | None] = {}
    for party in parties:
        kind = STAKEHOLDER_MILESTONE[party]
        day = _day(targets[kind], -rng.randint(2, 12) + round(1.5 * z + rng.gauss(0, 1.5)))
        day = max(contract_date, day)
        done = actual.get(kind)
        if done is not None:
            day = min(day, done)
        ready_on[party] = day
    blocker = cause or cancel_cause
    if blocker is not None:
        party = CAUSE_STAKEHOLDER[blocker]
        if party in ready_on:
            if cancelled and rng.random() < 0.7:
                ready_on[party] = None
            else:
                resolved = actual.get(CAUSE_MILESTONES[blocker][-1], end)
                late_ready = _day(resolved, -rng.randint(0, 2))
                current = ready_on[party]
                ready_on[party] = late_ready if current is None else max(current, late_ready)
    readiness = dict.fromkeys(parties, False)
    snapshots: list[tuple[date, Mapping[str, bool]]] = [(contract_date, dict(readiness))]
    for party, day in sorted(
        ((p, d) for p, d in ready_on.items() if d is not None and d <= end), key=lambda x: x[1]
    ):
        readiness[party] = True
        if snapshots[-1][0] == day:
            snapshots[-1] = (day, dict(readiness))
        else:
            snapshots.append((day, dict(readiness)))

    history = DealHistory(
        loan_type=loan_type,
        contract_date=contract_date,
        target_closing_date=target_close,
        milestones=tuple(milestones),
        contacts=tuple(sorted(contacts)),
        stakeholder_changes=tuple(snapshots),
        buyer_name=buyer_name,
    )
    return SimulatedDeal(
        loan_type=loan_type,
        contract_date=contract_date,
        target_closing_date=target_close,
        outcome="cancelled" if cancelled else "closed",
        actual_closing_date=None if cancelled else closing,
        cancelled_on=cancelled_on,
        delay_cause=cause if not cancelled and closing > target_close else None,
        cancellation_cause=cancel_cause,
        friction=z,
        history=history,
    )


def simulate_book(
    rng: random.Random,
    *,
    count: int,
    first_contract: date,
    last_contract: date,
    params: SimulatorParameters = DEFAULT_PARAMETERS,
) -> list[SimulatedDeal]:
    """`count` deals signed between two days, with the published loan mix."""
    span = max(0, (last_contract - first_contract).days)
    deals = []
    for _ in range(count):
        signed = _day(first_contract, rng.randint(0, span))
        deals.append(
            simulate_deal(
                rng, contract_date=signed, loan_type=draw_loan_type(rng, params), params=params
            )
        )
    return deals


SNAPSHOT_SHARES = (0.15, 0.4, 0.65, 0.9)


def snapshot_days(
    contract_date: date,
    target_closing_date: date,
    ended_on: date,
    shares: Sequence[float] = SNAPSHOT_SHARES,
) -> list[date]:
    """The days a deal is looked at for training: shares of its planned term, while it was open."""
    term = (target_closing_date - contract_date).days
    days = sorted({_day(contract_date, max(1, round(term * s))) for s in shares})
    return [d for d in days if d < ended_on]


# --- real deals: the same history, rebuilt from rows ---------------------------------------------


def history_from_rows(
    tx: Transaction,
    milestones: Sequence[Milestone],
    events: Sequence[TransactionEvent] = (),
) -> DealHistory:
    """A real deal's history: milestone changes and contacts from its activity feed (the service
    writes an event for every change), completion days from its milestone rows, party readiness
    from `stakeholders` snapshots in event data when there are any (None otherwise)."""
    changes: dict[str, list[tuple[date, str]]] = {m.milestone_type: [] for m in milestones}
    contacts = {tx.contract_date}
    stakeholder_changes: list[tuple[date, Mapping[str, bool]]] = []
    for e in sorted(events, key=lambda e: (e.created_at, e.id or 0)):
        day = e.created_at.date()
        data: Mapping[str, Any] = e.data or {}
        if e.visibility == "client":
            contacts.add(day)
        status = EVENT_STATUS.get(e.event_type)
        milestone = data.get("milestone")
        if status is not None and isinstance(milestone, Mapping):
            kind = str(milestone.get("milestone_type", ""))
            if kind in changes:
                when = day
                if status == "completed" and milestone.get("actual_date"):
                    when = min(day, date.fromisoformat(str(milestone["actual_date"])))
                changes[kind].append((when, status))
        parties = data.get("stakeholders")
        if isinstance(parties, Mapping):
            stakeholder_changes.append((day, {str(k): bool(v) for k, v in parties.items()}))
    built = []
    for m in sorted(milestones, key=lambda m: m.order_sequence):
        found = changes[m.milestone_type]
        if m.milestone_type == "contract_signed" and not any(s == "completed" for _, s in found):
            found.append((tx.contract_date, "completed"))
        if m.actual_date is not None and not any(s == "completed" for _, s in found):
            found.append((m.actual_date, "completed"))  # completed without an event: trust the row
        if m.status == "skipped" and not found:
            found.append((m.updated_at.date(), "skipped"))
        found.sort(key=lambda c: c[0])
        built.append(
            MilestoneHistory(
                milestone_type=m.milestone_type,
                name=m.name,
                order_sequence=m.order_sequence,
                weight=m.progress_weight,
                target_date=m.target_date,
                requires=tuple(m.requires),
                optional=m.optional,
                changes=tuple(found),
                actual_date=m.actual_date,
            )
        )
        contacts.update(d for d, _ in found)
    return DealHistory(
        loan_type=tx.loan_type,
        contract_date=tx.contract_date,
        target_closing_date=tx.target_closing_date,
        milestones=tuple(built),
        contacts=tuple(sorted(contacts)),
        stakeholder_changes=tuple(stakeholder_changes) if stakeholder_changes else None,
        buyer_name=tx.buyer_name.split(" ")[0] or "the buyer",
    )


def facts_from_rows(
    tx: Transaction,
    milestones: Sequence[Milestone],
    as_of: date,
    events: Sequence[TransactionEvent] = (),
) -> rules.TransactionFacts:
    """A real (typically closed) transaction as it looked on `as_of`, from its rows."""
    return facts_on(history_from_rows(tx, milestones, events), as_of)


def ended_on(tx: Transaction, events: Sequence[TransactionEvent] = ()) -> date | None:
    """The day a deal closed or was cancelled (from its feed, else its last change)."""
    if tx.actual_closing_date is not None:
        return tx.actual_closing_date
    if tx.escrow_status != "Cancelled":
        return None
    cancelled = [e.created_at.date() for e in events if e.event_type == "transaction.cancelled"]
    return min(cancelled) if cancelled else tx.updated_at.date()
