"""Pure rules of a home purchase: milestone plans and transitions, progress, the health score,
the transparent delay baseline, recommendations and celebration triggers. No I/O."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

HUNDRED = Decimal(100)
MILESTONE_TYPES = (
    "contract_signed",
    "loan_application",
    "home_inspection",
    "appraisal_ordered",
    "loan_approval",
    "title_search",
    "final_walkthrough",
    "closing_day",
)
MILESTONE_STATUSES = ("pending", "in_progress", "completed", "delayed", "skipped")
LOAN_TYPES = ("cash", "conventional", "fha", "va")
LOAN_MILESTONES = frozenset({"loan_application", "appraisal_ordered", "loan_approval"})
DONE = frozenset({"completed", "skipped"})


class RuleError(Exception):
    """A change the rules refuse. `status` 409: the state does not allow it; 422: bad input."""

    def __init__(self, reason: str, *, status: int = 409) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def label(milestone_type: str) -> str:
    return milestone_type.replace("_", " ").title()


# --- milestone plans -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlanStep:
    milestone_type: str
    name: str
    order_sequence: int
    weight: Decimal  # share of 100
    offset_days: int  # target date = contract date + offset (scaled to the closing date)
    requires: tuple[str, ...] = ()
    optional: bool = False
    celebration_message: str = ""


# The seed's eight milestones. Weights are chosen so that the seed's example (four done, loan
# approval under way) reads 73%: an in-progress milestone counts half. Offsets follow the seed's
# timeline (contract Jan 2, walkthrough Feb 12, closing Feb 15: 44 days).
DEFAULT_PLAN: tuple[PlanStep, ...] = (
    PlanStep("contract_signed", "Contract Signed", 1, Decimal(15), 0, (), False,
             "Your journey home has officially begun!"),
    PlanStep("loan_application", "Loan Application", 2, Decimal(15), 3, ("contract_signed",), False,
             "Your loan application is in. One big step closer!"),
    PlanStep("home_inspection", "Home Inspection", 3, Decimal(20), 8, ("contract_signed",), True,
             "Inspection done: you know your new home inside out."),
    PlanStep("appraisal_ordered", "Appraisal Ordered", 4, Decimal(15), 10, ("loan_application",),
             True,
             "The appraisal is ordered. Your lender is on it."),
    PlanStep("loan_approval", "Loan Approval", 5, Decimal(15), 25, ("loan_application",), False,
             "Loan approved! The money side is settled."),
    PlanStep("title_search", "Title Search", 6, Decimal(10), 30, ("contract_signed",), False,
             "Title is clear: the home is free to become yours."),
    PlanStep("final_walkthrough", "Final Walkthrough", 7, Decimal(5), 41,
             ("home_inspection", "title_search"), True, "Walkthrough done. Almost there!"),
    PlanStep("closing_day", "Closing Day", 8, Decimal(5), 44,
             ("contract_signed", "loan_approval", "title_search", "final_walkthrough"), False,
             "Welcome home! The keys are yours."),
)  # fmt: skip


def default_plan(loan_type: str) -> list[PlanStep]:
    """The built-in plan for a loan type: a cash purchase has no loan milestones, so its
    weights are rescaled to 100 and its timeline is the three weeks a cash deal typically takes."""
    if loan_type != "cash":
        return list(DEFAULT_PLAN)
    kept = [s for s in DEFAULT_PLAN if s.milestone_type not in LOAN_MILESTONES]
    total = sum((s.weight for s in kept), Decimal(0))
    scale = 21 / DEFAULT_PLAN[-1].offset_days
    steps = []
    for order, s in enumerate(kept, start=1):
        requires = tuple(r for r in s.requires if r not in LOAN_MILESTONES)
        steps.append(
            PlanStep(
                s.milestone_type,
                s.name,
                order,
                (s.weight * HUNDRED / total).quantize(Decimal("0.01")),
                round(s.offset_days * scale),
                requires,
                s.optional,
                s.celebration_message,
            )
        )
    # Rounding leaves cents over or under: the last step absorbs them so the plan sums to 100.
    rest = HUNDRED - sum((s.weight for s in steps[:-1]), Decimal(0))
    last = steps[-1]
    steps[-1] = PlanStep(
        last.milestone_type, last.name, last.order_sequence, rest, last.offset_days,
        last.requires, last.optional, last.celebration_message,
    )  # fmt: skip
    return steps


def validate_plan(steps: Sequence[PlanStep]) -> list[str]:
    """Every reason a plan cannot be used, at once (empty: it is fine)."""
    errors: list[str] = []
    types = [s.milestone_type for s in steps]
    if not steps:
        return ["A plan needs at least one milestone"]
    for t in types:
        if t not in MILESTONE_TYPES:
            errors.append(f"Unknown milestone type '{t}'; use one of {', '.join(MILESTONE_TYPES)}")
    if len(set(types)) != len(types):
        errors.append("Each milestone type may appear once")
    if types[-1] != "closing_day":
        errors.append("The plan must end with closing_day")
    total = sum((s.weight for s in steps), Decimal(0))
    if any(s.weight <= 0 for s in steps):
        errors.append("Every progress_weight must be positive")
    if total != HUNDRED:
        errors.append(f"progress_weight must sum to 100 (got {total})")
    seen: set[str] = set()
    last_offset = -1
    for s in sorted(steps, key=lambda s: s.order_sequence):
        for r in s.requires:
            if r not in seen:
                errors.append(f"{s.milestone_type} requires {r}, which must come earlier")
        if s.offset_days < last_offset:
            errors.append(f"{s.milestone_type}: offset_days must not decrease along the plan")
        last_offset = s.offset_days
        seen.add(s.milestone_type)
    if len({s.order_sequence for s in steps}) != len(steps):
        errors.append("order_sequence values must be distinct")
    return errors


def target_dates(steps: Sequence[PlanStep], contract: date, closing: date) -> dict[str, date]:
    """Spread the plan's offsets over the actual contract-to-closing span."""
    span = max(1, (closing - contract).days)
    last = max((s.offset_days for s in steps), default=0) or 1
    return {
        s.milestone_type: contract + timedelta(days=round(s.offset_days * span / last))
        for s in steps
    }


# --- milestones and progress -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MilestoneState:
    milestone_type: str
    name: str
    status: str
    order_sequence: int
    weight: Decimal
    target_date: date
    actual_date: date | None = None
    requires: tuple[str, ...] = ()
    optional: bool = False


TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"in_progress", "completed", "delayed", "skipped"}),
    "in_progress": frozenset({"completed", "delayed", "pending"}),
    "delayed": frozenset({"in_progress", "completed", "skipped"}),
    "completed": frozenset(),  # a completed milestone is history: buyers were told
    "skipped": frozenset({"pending"}),
}


def progress(milestones: Iterable[MilestoneState]) -> Decimal:
    """Percent complete: done (completed or skipped) weight, plus half of in-progress weight."""
    total = done = Decimal(0)
    for m in milestones:
        total += m.weight
        if m.status in DONE:
            done += m.weight
        elif m.status == "in_progress":
            done += m.weight / 2
    if total == 0:
        return Decimal(0)
    return (done * HUNDRED / total).quantize(Decimal("0.01"))


def shown_percent(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def check_transition(
    milestones: Sequence[MilestoneState],
    *,
    milestone_type: str,
    status: str,
    actual_date: date | None,
    contract_date: date,
    today: date,
) -> MilestoneState:
    """The milestone to change, if the plan allows `status` now; otherwise RuleError."""
    if status not in MILESTONE_STATUSES:
        raise RuleError(
            f"Unknown status '{status}'; use one of {', '.join(MILESTONE_STATUSES)}", status=422
        )
    by_type = {m.milestone_type: m for m in milestones}
    current = by_type.get(milestone_type)
    if current is None:
        if milestone_type not in MILESTONE_TYPES:
            raise RuleError(
                f"Unknown milestone type '{milestone_type}'; "
                f"use one of {', '.join(MILESTONE_TYPES)}",
                status=422,
            )
        raise RuleError(f"{label(milestone_type)} is not part of this transaction's plan")
    if actual_date is not None:
        if status != "completed":
            raise RuleError("actual_date is only given when completing a milestone", status=422)
        if actual_date > today:
            raise RuleError(f"actual_date {actual_date} is in the future", status=422)
        if actual_date < contract_date:
            raise RuleError(
                f"actual_date {actual_date} is before the contract date {contract_date}", status=422
            )
    if status == current.status:
        raise RuleError(f"{current.name} is already {status.replace('_', ' ')}")
    if status not in TRANSITIONS[current.status]:
        raise RuleError(
            f"{current.name} cannot go from {current.status.replace('_', ' ')} to "
            f"{status.replace('_', ' ')}"
        )
    if status == "skipped" and not current.optional:
        raise RuleError(f"{current.name} cannot be skipped: every purchase needs it")
    if status in ("in_progress", "completed"):
        waiting = [
            by_type[r].name
            for r in current.requires
            if r in by_type and by_type[r].status not in DONE
        ]
        if waiting:
            verb = "started" if status == "in_progress" else "completed"
            raise RuleError(f"{current.name} cannot be {verb} before {', '.join(waiting)}")
    return current


# --- the health score ----------------------------------------------------------------------------

HEALTH_WEIGHTS: dict[str, float] = {
    "on_schedule": 0.40,
    "milestone_progress": 0.30,
    "communication": 0.15,
    "no_delays": 0.10,
    "stakeholder_ready": 0.05,
}
HEALTH_LABELS = {
    "on_schedule": "Timeline adherence",
    "milestone_progress": "Milestone completion",
    "communication": "Regular updates",
    "no_delays": "No setbacks",
    "stakeholder_ready": "Parties ready",
}


def validate_weights(weights: Mapping[str, float]) -> dict[str, float]:
    """Health weights as given, if they are the five components, non-negative, summing to 1."""
    errors = []
    unknown = sorted(set(weights) - set(HEALTH_WEIGHTS))
    missing = sorted(set(HEALTH_WEIGHTS) - set(weights))
    if unknown:
        errors.append(f"unknown components {', '.join(unknown)}")
    if missing:
        errors.append(f"missing components {', '.join(missing)}")
    values = {k: float(v) for k, v in weights.items()}
    negative = sorted(k for k, v in values.items() if not v >= 0 or math.isinf(v))
    if negative:
        errors.append(f"weights must be non-negative numbers ({', '.join(negative)})")
    total = sum(values.values())
    if not errors and not math.isclose(total, 1.0, abs_tol=1e-6):
        errors.append(f"weights must sum to 1 (they sum to {total:g})")
    if errors:
        raise RuleError("; ".join(errors), status=422)
    return {k: values[k] for k in HEALTH_WEIGHTS}


@dataclass(frozen=True, slots=True)
class TransactionFacts:
    """What the health score and the delay baseline look at, as of `today`."""

    milestones: tuple[MilestoneState, ...]
    today: date
    contract_date: date
    target_closing_date: date
    loan_type: str
    last_communication: date
    delay_count: int = 0
    stakeholders: Mapping[str, bool] = field(default_factory=dict)
    buyer_name: str = "the buyer"

    @property
    def open_milestones(self) -> list[MilestoneState]:
        return [m for m in self.milestones if m.status not in DONE]

    @property
    def overdue(self) -> list[tuple[MilestoneState, int]]:
        return [
            (m, (self.today - m.target_date).days)
            for m in self.open_milestones
            if m.target_date < self.today
        ]

    @property
    def days_to_closing(self) -> int:
        return (self.target_closing_date - self.today).days

    @property
    def days_since_contact(self) -> int:
        return max(0, (self.today - self.last_communication).days)


@dataclass(frozen=True, slots=True)
class HealthScore:
    score: int  # 0-100
    factors: dict[str, dict[str, object]]
    recommendations: list[str]

    def as_json(self) -> dict[str, object]:
        return {
            "score": self.score,
            "factors": self.factors,
            "recommendations": self.recommendations,
        }


def _clamp(x: float) -> float:
    return max(0.0, min(1.0, x))


def health_components(facts: TransactionFacts) -> dict[str, tuple[float, str]]:
    """Each component as a 0-1 score with the sentence that explains it."""
    overdue = facts.overdue
    worst = max((days for _, days in overdue), default=0)
    on_schedule = _clamp(1 - worst / 14)
    if overdue:
        on_schedule_why = f"{len(overdue)} milestone(s) past target, worst by {worst} days"
    else:
        on_schedule_why = "Every milestone is on time"
    due = [m for m in facts.milestones if m.target_date <= facts.today]
    due_weight = sum((m.weight for m in due), Decimal(0))
    done_weight = sum((m.weight for m in due if m.status in DONE), Decimal(0))
    completion = float(done_weight / due_weight) if due_weight else 1.0
    delayed_now = sum(1 for m in facts.milestones if m.status == "delayed")
    stakeholders = facts.stakeholders
    ready = sum(1 for v in stakeholders.values() if v)
    return {
        "on_schedule": (on_schedule, on_schedule_why),
        "milestone_progress": (
            completion,
            f"{sum(1 for m in due if m.status in DONE)} of {len(due)} milestones due are done",
        ),
        "communication": (
            _clamp(1 - max(0, facts.days_since_contact - 2) / 12),
            f"Last update {facts.days_since_contact} day(s) ago",
        ),
        "no_delays": (
            _clamp(1 - 0.25 * facts.delay_count - 0.25 * delayed_now),
            f"{delayed_now} delayed now, {facts.delay_count} delay(s) so far",
        ),
        "stakeholder_ready": (
            ready / len(stakeholders) if stakeholders else 1.0,
            f"{ready} of {len(stakeholders)} parties confirmed ready"
            if stakeholders
            else "No party waiting",
        ),
    }


def health_score(
    facts: TransactionFacts, weights: Mapping[str, float] = HEALTH_WEIGHTS
) -> HealthScore:
    components = health_components(facts)
    factors: dict[str, dict[str, object]] = {}
    total = 0.0
    for name, (value, why) in components.items():
        weight = float(weights[name])
        total += weight * value
        factors[name] = {
            "label": HEALTH_LABELS[name],
            "score": round(value, 3),
            "weight": weight,
            "points": round(100 * weight * value, 1),
            "detail": why,
        }
    return HealthScore(
        score=round(100 * total),
        factors=factors,
        recommendations=health_recommendations(facts, {k: v for k, (v, _) in components.items()}),
    )


def health_recommendations(facts: TransactionFacts, components: Mapping[str, float]) -> list[str]:
    tips: list[str] = []
    if components["on_schedule"] < 0.8:
        for m, days in sorted(facts.overdue, key=lambda x: -x[1])[:2]:
            tips.append(f"Catch up on {m.name}: {days} day(s) past its target date")
    if components["milestone_progress"] < 0.8:
        due = [m.name for m in facts.open_milestones if m.target_date <= facts.today]
        if due:
            tips.append(f"Complete {', '.join(due[:3])} to get back on plan")
    if components["communication"] < 0.8:
        tips.append(
            f"Send {facts.buyer_name} an update: last contact {facts.days_since_contact} days ago"
        )
    if components["no_delays"] < 0.8:
        for m in facts.milestones:
            if m.status == "delayed":
                tips.append(f"Resolve the delay on {m.name}")
    if components["stakeholder_ready"] < 1:
        waiting = sorted(k for k, v in facts.stakeholders.items() if not v)
        tips.append(f"Confirm readiness with {', '.join(waiting)}")
    return tips


# --- the transparent delay baseline --------------------------------------------------------------

DELAY_WEIGHTS: dict[str, float] = {
    "timeline_pressure": 0.25,
    "financial_complexity": 0.20,
    "stakeholder_coordination": 0.20,
    "milestone_delays": 0.15,
    "market_conditions": 0.10,
    "seasonal_factors": 0.10,
}
DELAY_LABELS = {
    "timeline_pressure": "Days remaining vs progress",
    "financial_complexity": "Loan type and approval status",
    "stakeholder_coordination": "Party responsiveness",
    "milestone_delays": "Delays so far",
    "market_conditions": "Recent delays across the brokerage",
    "seasonal_factors": "Time of year",
}
LOAN_COMPLEXITY = {"cash": 0.05, "conventional": 0.30, "fha": 0.55, "va": 0.50}
# Busy months for lenders, appraisers and title: the June peak and the December holidays.
SEASONAL = {
    1: 0.3,
    2: 0.3,
    3: 0.4,
    4: 0.5,
    5: 0.6,
    6: 0.8,
    7: 0.7,
    8: 0.7,
    9: 0.5,
    10: 0.4,
    11: 0.5,
    12: 0.8,
}
TYPICAL_DELAY_DAYS = 14
BASELINE_VERSION = "baseline-weighted-1"


@dataclass(frozen=True, slots=True)
class DelayForecast:
    model_version: str
    delay_probability: float
    predicted_closing_date: date
    closing_date_low: date
    closing_date_high: date
    confidence: float
    factors: dict[str, float]
    risk_factors: list[dict[str, object]]
    recommended_actions: list[str]


def delay_factors(
    facts: TransactionFacts, *, market_delay_rate: float | None = None
) -> dict[str, float]:
    """The seed's six factors, each scored 0 (no risk) to 1."""
    total_days = max(1, (facts.target_closing_date - facts.contract_date).days)
    time_left = _clamp(facts.days_to_closing / total_days)
    remaining = 1 - float(progress(facts.milestones)) / 100
    pressure = (
        1.0
        if facts.days_to_closing < 0 and remaining > 0
        else _clamp((remaining - time_left) / 0.5)
    )
    complexity = LOAN_COMPLEXITY.get(facts.loan_type, 0.3)
    approval = next((m for m in facts.milestones if m.milestone_type == "loan_approval"), None)
    if approval is not None and approval.status in DONE:
        complexity *= 0.3
    elif approval is not None and facts.days_to_closing <= 14:
        complexity = _clamp(complexity + 0.25)
    waiting = sum(1 for v in facts.stakeholders.values() if not v)
    readiness_gap = waiting / len(facts.stakeholders) if facts.stakeholders else 0.0
    staleness = _clamp((facts.days_since_contact - 2) / 12)
    delayed_now = sum(1 for m in facts.milestones if m.status == "delayed")
    worst = max((d for _, d in facts.overdue), default=0)
    return {
        "timeline_pressure": round(pressure, 3),
        "financial_complexity": round(complexity, 3),
        "stakeholder_coordination": round(_clamp(0.6 * readiness_gap + 0.4 * staleness), 3),
        "milestone_delays": round(
            _clamp(0.35 * delayed_now + 0.2 * facts.delay_count + worst / 21), 3
        ),
        "market_conditions": round(
            _clamp(market_delay_rate if market_delay_rate is not None else 0.3), 3
        ),
        "seasonal_factors": SEASONAL[facts.target_closing_date.month],
    }


def risk_factors(
    factors: Mapping[str, float], weights: Mapping[str, float] = DELAY_WEIGHTS
) -> list[dict[str, object]]:
    """Factors that push the risk up (score 0.5 or more), the heaviest first."""
    risks = [
        {
            "factor": name,
            "label": DELAY_LABELS.get(name, name),
            "score": round(value, 3),
            "impact": round(value * weights.get(name, 0.0), 3),
            "severity": "high" if value >= 0.75 else "medium",
        }
        for name, value in factors.items()
        if value >= 0.5
    ]
    return sorted(risks, key=lambda r: -float(r["impact"]))  # type: ignore[arg-type]


def recommended_actions(
    facts: TransactionFacts, risks: Sequence[Mapping[str, object]]
) -> list[str]:
    """Concrete next steps from the milestones' state and the risk factors."""
    by_type = {m.milestone_type: m for m in facts.milestones}
    days = facts.days_to_closing
    actions: list[str] = []
    walkthrough = by_type.get("final_walkthrough")
    if walkthrough is not None and walkthrough.status not in DONE and days <= 21:
        actions.append(
            f"Schedule final walkthrough for {walkthrough.target_date:%B} "
            f"{walkthrough.target_date.day}"
        )
    if 0 <= days <= 10:
        actions.append("Confirm all closing party availability")
        actions.append("Prepare homeowner's insurance documentation")
    risky = {str(r["factor"]) for r in risks}
    approval = by_type.get("loan_approval")
    if "financial_complexity" in risky and approval is not None and approval.status not in DONE:
        actions.append("Ask the lender for outstanding loan conditions and a firm approval date")
    if "stakeholder_coordination" in risky:
        waiting = sorted(k for k, v in facts.stakeholders.items() if not v)
        if waiting:
            actions.append(f"Confirm readiness with {', '.join(waiting)}")
        if facts.days_since_contact > 3:
            actions.append(f"Send {facts.buyer_name} a status update")
    if "milestone_delays" in risky:
        for m, late in sorted(facts.overdue, key=lambda x: -x[1])[:2]:
            actions.append(f"Unblock {m.name} ({late} days late)")
    if "timeline_pressure" in risky:
        actions.append("Agree a realistic closing date with every party now, not on the last day")
    return list(dict.fromkeys(actions))  # in order, without repeats


def baseline_delay(
    facts: TransactionFacts,
    *,
    market_delay_rate: float | None = None,
    weights: Mapping[str, float] = DELAY_WEIGHTS,
) -> DelayForecast:
    """The seed's weighted-factor model: probability = sum of weight x factor score."""
    factors = delay_factors(facts, market_delay_rate=market_delay_rate)
    probability = round(sum(weights[k] * v for k, v in factors.items()), 3)
    start = max(facts.target_closing_date, facts.today + timedelta(days=1))
    predicted = start + timedelta(days=round(probability * TYPICAL_DELAY_DAYS))
    # A transparent rule has no calibrated spread; it is surest near either end of the scale.
    confidence = round(0.5 + abs(probability - 0.5), 3)
    spread = round(3 + 11 * (1 - confidence))
    risks = risk_factors(factors, weights)
    return DelayForecast(
        model_version=BASELINE_VERSION,
        delay_probability=probability,
        predicted_closing_date=predicted,
        closing_date_low=predicted - timedelta(days=spread),
        closing_date_high=predicted + timedelta(days=spread),
        confidence=confidence,
        factors=factors,
        risk_factors=risks,
        recommended_actions=recommended_actions(facts, risks),
    )


# --- celebrations ------------------------------------------------------------------------------

PROGRESS_STEPS = (25, 50, 75, 90)
HEALTH_STEPS = (70, 80, 90)
COUNTDOWN_DAYS = (7, 3, 1)
AHEAD_DAYS = 2
ANIMATIONS = ("confetti", "fireworks", "sparkles")
VARIANTS = ("A", "B")


@dataclass(frozen=True, slots=True)
class Trigger:
    type: (
        str  # milestone_completed, progress, health_improved, ahead_of_schedule, countdown, custom
    )
    key: str  # unique per transaction: it fires once
    template: str  # which template answers it: a milestone type, "progress", "countdown", ...
    values: dict[str, object] = field(default_factory=dict)


def due_triggers(
    *,
    fired: set[str],
    before_progress: Decimal,
    after_progress: Decimal,
    before_health: int,
    after_health: int,
    completed_now: Sequence[MilestoneState] = (),
    days_to_closing: int | None = None,
) -> list[Trigger]:
    """Celebrations owed now that were never fired for this transaction."""
    out: list[Trigger] = []
    for m in completed_now:
        out.append(Trigger("milestone_completed", f"milestone:{m.milestone_type}", m.milestone_type,
                           {"milestone": m.name}))  # fmt: skip
    fired_progress = [int(k.split(":")[1]) for k in fired if k.startswith("progress:")]
    reached = [n for n in PROGRESS_STEPS if after_progress >= n > max(fired_progress, default=0)]
    if reached and after_progress > before_progress:
        out.append(
            Trigger("progress", f"progress:{reached[-1]}", "progress", {"percent": reached[-1]})
        )
    crossed = [n for n in HEALTH_STEPS if before_health < n <= after_health]
    if crossed:
        out.append(Trigger("health_improved", f"health:{crossed[-1]}", "health_improved",
                           {"score": after_health}))  # fmt: skip
    early = [
        m for m in completed_now
        if m.actual_date is not None and (m.target_date - m.actual_date).days >= AHEAD_DAYS
    ]  # fmt: skip
    if early:
        days = (early[0].target_date - early[0].actual_date).days  # type: ignore[operator]
        out.append(Trigger("ahead_of_schedule", "ahead_of_schedule", "ahead_of_schedule",
                           {"milestone": early[0].name, "days": days}))  # fmt: skip
    if days_to_closing is not None and 0 < days_to_closing <= max(COUNTDOWN_DAYS):
        step = min(n for n in COUNTDOWN_DAYS if days_to_closing <= n)
        out.append(
            Trigger("countdown", f"countdown:{step}", "countdown", {"days": days_to_closing})
        )
    return [t for t in out if t.key not in fired]


@dataclass(frozen=True, slots=True)
class CelebrationText:
    title: str
    message: str
    animation: str
    duration: int
    share_message: str


def _t(title: str, message: str, animation: str, duration: int, share: str) -> CelebrationText:
    return CelebrationText(title, message, animation, duration, share)


# Variant A follows the seed's own wording; B is the alternative being tested against it.
CELEBRATION_TEMPLATES: dict[str, dict[str, CelebrationText]] = {
    "contract_signed": {
        "A": _t(
            "🎉 Contract Signed!",
            "Your journey home has officially begun!",
            "confetti",
            4,
            "We're officially under contract! 🏠✨",
        ),
        "B": _t(
            "It's official!",
            "{property} is under contract. Your journey home has begun.",
            "fireworks",
            5,
            "Under contract on our new home! 🏠",
        ),
    },
    "loan_application": {
        "A": _t(
            "📝 Loan Application Submitted",
            "One big step closer to your keys.",
            "sparkles",
            3,
            "Loan application done ✅",
        ),
        "B": _t(
            "Application in!",
            "Your lender has everything they need to get started.",
            "confetti",
            3,
            "Mortgage application submitted! 🏡",
        ),
    },
    "home_inspection": {
        "A": _t(
            "🔍 Inspection Complete",
            "You know your new home inside out.",
            "sparkles",
            4,
            "Home inspection: done! 🔍🏠",
        ),
        "B": _t(
            "Inspection passed the test",
            "One more box ticked on the way to {property}.",
            "confetti",
            4,
            "Our new home passed inspection! 🏠",
        ),
    },
    "appraisal_ordered": {
        "A": _t(
            "📋 Appraisal Ordered",
            "Your lender is confirming the home's value.",
            "sparkles",
            3,
            "Appraisal ordered for our new home 📋",
        ),
        "B": _t(
            "Appraisal on its way",
            "The valuation is booked. Nothing for you to do.",
            "sparkles",
            3,
            "Appraisal booked! 🏡",
        ),
    },
    "loan_approval": {
        "A": _t(
            "🏦 Loan Approved!",
            "The money side is settled. Time to start packing!",
            "fireworks",
            5,
            "Our home loan is APPROVED! 🎉",
        ),
        "B": _t(
            "Approved!",
            "Your financing for {property} is approved.",
            "confetti",
            5,
            "Mortgage approved! 🔑 Almost home.",
        ),
    },
    "title_search": {
        "A": _t(
            "📜 Title Clear",
            "The home is free and clear to become yours.",
            "sparkles",
            3,
            "Clear title on our new home ✅",
        ),
        "B": _t(
            "Title search complete",
            "No surprises in the records. On to closing!",
            "confetti",
            3,
            "Title is clear! 🏠",
        ),
    },
    "final_walkthrough": {
        "A": _t(
            "🚶 Walkthrough Done",
            "Everything is as promised. Almost there!",
            "confetti",
            4,
            "Final walkthrough done. Keys soon! 🔑",
        ),
        "B": _t(
            "Last look: done",
            "You've seen {property} one last time before it's yours.",
            "sparkles",
            4,
            "Final walkthrough complete! 🏡",
        ),
    },
    "closing_day": {
        "A": _t(
            "🔑 Welcome Home!",
            "The keys are yours. Congratulations on your new home!",
            "fireworks",
            8,
            "We just got the keys to our new home! 🏠🔑🎉",
        ),
        "B": _t(
            "It's yours!",
            "{property} is officially your home. Congratulations!",
            "fireworks",
            8,
            "Homeowners as of today! 🔑",
        ),
    },
    "progress": {
        "A": _t(
            "{percent}% Complete!",
            "Your home purchase is {percent}% done.",
            "sparkles",
            3,
            "Our home purchase is {percent}% complete! 🏠",
        ),
        "B": _t(
            "{percent}% of the way home",
            "Keep going: {percent}% of your purchase is done.",
            "confetti",
            3,
            "{percent}% of the way to our new home!",
        ),
    },
    "health_improved": {
        "A": _t(
            "💚 Looking Great",
            "Your purchase's health score rose to {score}.",
            "sparkles",
            3,
            "Our home purchase is right on track 💚",
        ),
        "B": _t(
            "Back on track",
            "Health score {score}: everything is moving smoothly.",
            "sparkles",
            3,
            "Everything's on track with our new home!",
        ),
    },
    "ahead_of_schedule": {
        "A": _t(
            "⚡ Ahead of Schedule",
            "{milestone} finished {days} days early!",
            "fireworks",
            4,
            "We're ahead of schedule on our new home! ⚡",
        ),
        "B": _t(
            "Faster than planned",
            "{milestone} beat its target by {days} days.",
            "confetti",
            4,
            "Ahead of schedule! 🏠",
        ),
    },
    "countdown": {
        "A": _t(
            "⏳ {days} Day(s) to Go",
            "Closing day is almost here!",
            "confetti",
            4,
            "{days} days until we get our keys! 🔑",
        ),
        "B": _t(
            "The countdown is on",
            "Only {days} day(s) until closing on {property}.",
            "sparkles",
            4,
            "Closing in {days} days! 🏠",
        ),
    },
}


def assign_variant(
    transaction_ref: str, trigger_key: str, variants: Sequence[str] = VARIANTS
) -> str:
    """A/B assignment that is stable across processes and retries."""
    digest = hashlib.sha256(f"{transaction_ref}:{trigger_key}".encode()).digest()
    return variants[digest[0] % len(variants)]


class _Blank(dict[str, object]):
    def __missing__(self, key: str) -> str:
        return ""


def render_celebration(text: CelebrationText, values: Mapping[str, object]) -> CelebrationText:
    """Fill the placeholders ({percent}, {days}, {property}, {milestone}, {buyer}); unknown
    placeholders in a tenant's own template become empty rather than failing a celebration."""
    fill = _Blank(values)
    return CelebrationText(
        title=text.title.format_map(fill)[:120],
        message=text.message.format_map(fill)[:500],
        animation=text.animation,
        duration=text.duration,
        share_message=text.share_message.format_map(fill)[:300],
    )
