"""The CRM's business rules (seed 003), free of I/O so that each is tested directly.

* `SalesProcessRules`: the lead stage machine of a tenant (data, `SalesProcessDefinition`),
  validating a transition and returning every error at once, and the follow-up tasks a stage
  creates on entry.
* `lead_heat`: hot, warm or cold from interaction frequency and time in stage.
* `workload_score`, `adjusted_workload` and `decide_assignment`: who gets a new lead.
* Property types' attributes and the listing status workflow.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from doorstep.crm.models import (
    AssignmentStrategy,
    Heat,
    LeadSource,
    PropertyStatus,
    PropertyType,
    TaskKind,
)
from doorstep.platform.auth import Principal, Role


class RuleError(Exception):
    """A refused change, with every reason; `status` is the HTTP status it maps to."""

    def __init__(self, errors: Sequence[str], *, status: int = 409) -> None:
        super().__init__("; ".join(errors))
        self.errors = list(errors)
        self.status = status


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# === The sales process ============================================================================

STAGE_NAME = re.compile(r"^[a-z][a-z0-9_]{1,39}$")


class StageKind(StrEnum):
    open = "open"
    won = "won"
    lost = "lost"


class Prerequisite(StrEnum):
    """Checks a stage can demand before a lead enters it."""

    whatsapp_offer_sent = "whatsapp_offer_sent"  # an `offer_sent` message went out over WhatsApp
    contact_details = "contact_details"  # the lead has both a phone number and an e-mail
    budget_known = "budget_known"


class TaskTemplate(_Strict):
    kind: TaskKind
    title: str = Field(min_length=1, max_length=160)  # "{name}" is replaced by the lead's name
    due_in_hours: int = Field(ge=0, le=24 * 365)


class StageDef(_Strict):
    name: str = Field(pattern=STAGE_NAME.pattern)
    label: str = Field(min_length=1, max_length=60)
    kind: StageKind = StageKind.open
    # Stages a lead may move to from here. Every open stage may also move to any `lost` stage.
    next: list[str] = Field(default_factory=list)
    prerequisites: list[Prerequisite] = Field(default_factory=list)
    tasks: list[TaskTemplate] = Field(default_factory=list, max_length=10)


class SalesProcessDefinition(_Strict):
    """A tenant's stage machine. The first stage is where new leads start."""

    stages: list[StageDef] = Field(min_length=2, max_length=20)

    @model_validator(mode="after")
    def _consistent(self) -> SalesProcessDefinition:
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ValueError("stage names must be unique")
        known = set(names)
        for stage in self.stages:
            unknown = [n for n in stage.next if n not in known]
            if unknown:
                raise ValueError(f"stage {stage.name!r} leads to unknown stage(s) {unknown}")
            if stage.name in stage.next:
                raise ValueError(f"stage {stage.name!r} cannot lead to itself")
        kinds = {s.kind for s in self.stages}
        if StageKind.won not in kinds or StageKind.lost not in kinds:
            raise ValueError("a sales process needs a won stage and a lost stage")
        if self.stages[0].kind != StageKind.open:
            raise ValueError("the first stage, where new leads start, must be an open stage")
        return self


def _stage(name: str, label: str, kind: StageKind = StageKind.open, **extra: Any) -> StageDef:
    return StageDef(name=name, label=label, kind=kind, **extra)


def _tasks(*items: tuple[TaskKind, str, int]) -> list[TaskTemplate]:
    return [TaskTemplate(kind=k, title=t, due_in_hours=h) for k, t, h in items]


DEFAULT_PROCESS = SalesProcessDefinition(
    stages=[
        _stage(
            "lead",
            "Lead",
            next=["needs_analysis"],
            tasks=_tasks(
                (TaskKind.call, "First call to {name}", 1),
                (TaskKind.email, "Send {name} a welcome e-mail", 24),
            ),
        ),
        _stage(
            "needs_analysis",
            "Needs Analysis",
            next=["offer_sent", "lead"],
            tasks=_tasks(
                (TaskKind.meeting, "Needs-analysis meeting with {name}", 72),
                (TaskKind.follow_up, "Send {name} matching listings", 96),
            ),
        ),
        _stage(
            "offer_sent",
            "Offer Sent",
            next=["negotiation", "needs_analysis"],
            prerequisites=[Prerequisite.whatsapp_offer_sent],
            tasks=_tasks((TaskKind.call, "Follow up on the offer with {name}", 48)),
        ),
        _stage(
            "negotiation",
            "Negotiation",
            next=["contract_signed", "offer_sent"],
            tasks=_tasks((TaskKind.call, "Negotiation check-in with {name}", 24)),
        ),
        _stage(
            "contract_signed",
            "Contract Signed",
            next=["closed_won"],
            prerequisites=[Prerequisite.contact_details],
            tasks=_tasks(
                (TaskKind.follow_up, "Open escrow for {name}", 24),
                (TaskKind.meeting, "Contract review and next steps with {name}", 48),
            ),
        ),
        _stage(
            "closed_won",
            "Closed Won",
            StageKind.won,
            tasks=_tasks((TaskKind.call, "Thank-you call to {name}; ask for a referral", 168)),
        ),
        _stage(
            "closed_lost",
            "Closed Lost",
            StageKind.lost,
            next=["lead"],
            tasks=_tasks((TaskKind.follow_up, "Re-engage {name}", 24 * 90)),
        ),
    ]
)


@dataclass(frozen=True)
class LeadFacts:
    """What the transition rules read about a lead (the service gathers it)."""

    stage: str
    phone: str | None = None
    email: str | None = None
    budget: Decimal | None = None
    whatsapp_offer_sent: bool = False


@dataclass(frozen=True)
class TransitionCheck:
    is_valid: bool
    errors: list[str]


@dataclass(frozen=True)
class PlannedTask:
    kind: TaskKind
    title: str
    due_at: datetime


def _prerequisite_errors(check: Prerequisite, lead: LeadFacts, stage: StageDef) -> list[str]:
    if check == Prerequisite.whatsapp_offer_sent:
        if not lead.whatsapp_offer_sent:
            return ["Offer must be sent via WhatsApp before moving to this stage."]
        return []
    if check == Prerequisite.contact_details:
        contact = (("phone", lead.phone), ("email", lead.email))
        missing = [what for what, value in contact if not value]
        if missing:
            return [
                f"Contact details are required for the {stage.label} stage: "
                f"{' and '.join(missing)} missing."
            ]
        return []
    if check == Prerequisite.budget_known:
        return [] if lead.budget else [f"The lead's budget is required for {stage.label}."]
    raise AssertionError(check)


class SalesProcessRules:
    """The seed's `SalesProcessRules`: one object that every way of moving a lead goes through
    (API, Kanban, forms, admin actions)."""

    def __init__(self, definition: SalesProcessDefinition = DEFAULT_PROCESS) -> None:
        self.definition = definition
        self._stages = {s.name: s for s in definition.stages}

    @property
    def stages(self) -> list[StageDef]:
        return list(self.definition.stages)

    @property
    def initial(self) -> StageDef:
        return self.definition.stages[0]

    def stage(self, name: str) -> StageDef | None:
        return self._stages.get(name)

    def is_open(self, name: str) -> bool:
        stage = self._stages.get(name)
        return stage is not None and stage.kind == StageKind.open

    def open_stages(self) -> list[str]:
        return [s.name for s in self.definition.stages if s.kind == StageKind.open]

    def closed(self, kind: StageKind) -> list[str]:
        return [s.name for s in self.definition.stages if s.kind == kind]

    def can_move_to_stage(self, from_stage: str, to_stage: str) -> bool:
        source, target = self._stages.get(from_stage), self._stages.get(to_stage)
        if source is None or target is None or source.name == target.name:
            return False
        if to_stage in source.next:
            return True
        return source.kind == StageKind.open and target.kind == StageKind.lost

    def allowed_targets(self, from_stage: str) -> list[str]:
        names = [s.name for s in self.definition.stages]
        return [name for name in names if self.can_move_to_stage(from_stage, name)]

    def validate_stage_transition(self, lead: LeadFacts, to_stage: str) -> TransitionCheck:
        """Every reason the move is refused, not just the first: the flow, then each
        prerequisite of the target stage."""
        errors: list[str] = []
        source, target = self._stages.get(lead.stage), self._stages.get(to_stage)
        if target is None:
            known = ", ".join(self._stages)
            return TransitionCheck(False, [f"Unknown stage {to_stage!r}; stages are: {known}."])
        source_label = source.label if source else lead.stage
        if lead.stage == to_stage:
            errors.append(f"The lead is already in {target.label}.")
        elif not self.can_move_to_stage(lead.stage, to_stage):
            allowed = [self._stages[n].label for n in self.allowed_targets(lead.stage)]
            hint = (
                f" From {source_label} a lead can move to: {', '.join(allowed)}." if allowed else ""
            )
            errors.append(f"Invalid transition from {source_label} to {target.label}.{hint}")
        for check in target.prerequisites:
            errors.extend(_prerequisite_errors(check, lead, target))
        return TransitionCheck(not errors, errors)

    def tasks_for(self, stage: str, *, lead_name: str, entered_at: datetime) -> list[PlannedTask]:
        """The follow-up tasks entering `stage` creates, due relative to `entered_at`."""
        found = self._stages.get(stage)
        if found is None:
            return []
        return [
            PlannedTask(
                kind=t.kind,
                title=t.title.replace("{name}", lead_name)[:200],
                due_at=entered_at + timedelta(hours=t.due_in_hours),
            )
            for t in found.tasks
        ]


# === Lead heat ====================================================================================
#
#   frequency  = Σ 0.5 ** (age_days / 7)   over the lead's interactions of the last 30 days
#                (each touch counts 1 today, ½ a week ago, ¼ two weeks ago)
#   engagement = min(frequency / 4, 1)     (four fresh touches is as engaged as it gets)
#   freshness  = 0.5 ** (days_in_stage / 14)   (a lead sitting in one stage cools down)
#   score      = 100 x (0.7 x engagement + 0.3 x freshness), rounded to one decimal
#   hot ≥ 60 > warm ≥ 30 > cold;  a closed lead (won or lost) is cold with score 0.

HEAT_WINDOW_DAYS = 30
HEAT_HALF_LIFE_DAYS = 7.0
STAGE_HALF_LIFE_DAYS = 14.0
FULL_ENGAGEMENT = 4.0
ENGAGEMENT_WEIGHT = 0.7
HOT_AT, WARM_AT = 60.0, 30.0


@dataclass(frozen=True)
class HeatScore:
    score: float
    heat: Heat
    engagement: float
    freshness: float


def heat_level(score: float) -> Heat:
    return Heat.hot if score >= HOT_AT else Heat.warm if score >= WARM_AT else Heat.cold


def lead_heat(
    interactions: Iterable[datetime], *, stage_entered_at: datetime, now: datetime, is_open: bool
) -> HeatScore:
    if not is_open:
        return HeatScore(0.0, Heat.cold, 0.0, 0.0)
    frequency = 0.0
    for at in interactions:
        age = max((now - at).total_seconds() / 86400, 0.0)
        if age <= HEAT_WINDOW_DAYS:
            frequency += 0.5 ** (age / HEAT_HALF_LIFE_DAYS)
    engagement = min(frequency / FULL_ENGAGEMENT, 1.0)
    in_stage = max((now - stage_entered_at).total_seconds() / 86400, 0.0)
    freshness = 0.5 ** (in_stage / STAGE_HALF_LIFE_DAYS)
    score = round(100 * (ENGAGEMENT_WEIGHT * engagement + (1 - ENGAGEMENT_WEIGHT) * freshness), 1)
    return HeatScore(score, heat_level(score), round(engagement, 3), round(freshness, 3))


# === Workload and assignment ======================================================================
#
#   workload = active leads x 2 + pending tasks x 1 + overdue tasks x 3     (the seed's formula)
#   success  = (won + 1) / (won + lost + 2)   (closed leads won, smoothed: a new agent is 0.5)
#   adjusted = workload / (0.5 + success)
#
# Lower is better. An agent who wins 90% of closed leads carries 1.4 / 1.0 = 1.4 times the
# load of a 50% agent before being passed over. Ties go to fewer active leads, then to the
# lower user id, so the decision is deterministic.


@dataclass(frozen=True)
class AgentLoad:
    agent_id: int
    name: str
    active_leads: int = 0
    pending_tasks: int = 0
    overdue_tasks: int = 0
    won: int = 0
    lost: int = 0

    @property
    def workload(self) -> int:
        return workload_score(self.active_leads, self.pending_tasks, self.overdue_tasks)

    @property
    def success_rate(self) -> float:
        return (self.won + 1) / (self.won + self.lost + 2)

    @property
    def adjusted(self) -> float:
        return self.workload / (0.5 + self.success_rate)

    def describe(self) -> dict[str, Any]:
        return {
            "agent_id": self.agent_id,
            "name": self.name,
            "active_leads": self.active_leads,
            "pending_tasks": self.pending_tasks,
            "overdue_tasks": self.overdue_tasks,
            "workload": self.workload,
            "success_rate": round(self.success_rate, 3),
            "score": round(self.adjusted, 2),
        }


def workload_score(active_leads: int, pending_tasks: int, overdue_tasks: int) -> int:
    return active_leads * 2 + pending_tasks + overdue_tasks * 3


def best_by_workload(loads: Sequence[AgentLoad]) -> AgentLoad:
    return min(loads, key=lambda a: (a.adjusted, a.active_leads, a.agent_id))


class RoutingRule(_Strict):
    """Leads matching every given condition go to one of `agent_ids` (the least loaded)."""

    name: str = Field(min_length=1, max_length=80)
    sources: list[LeadSource] = Field(default_factory=list)
    min_price: Decimal | None = Field(default=None, ge=0)
    max_price: Decimal | None = Field(default=None, ge=0)
    zip_prefixes: list[Annotated[str, Field(pattern=r"^\d{1,5}$")]] = Field(default_factory=list)
    agent_ids: list[int] = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _range(self) -> RoutingRule:
        low, high = self.min_price, self.max_price
        if low is not None and high is not None and low > high:
            raise ValueError("min_price must not exceed max_price")
        return self

    def matches(self, lead: LeadTraits) -> bool:
        if self.sources and lead.source not in self.sources:
            return False
        if self.min_price is not None or self.max_price is not None:
            if lead.budget is None:
                return False
            if self.min_price is not None and lead.budget < self.min_price:
                return False
            if self.max_price is not None and lead.budget > self.max_price:
                return False
        zip_code = lead.zip_code or ""
        return not self.zip_prefixes or any(zip_code.startswith(p) for p in self.zip_prefixes)


class AssignmentConfig(_Strict):
    """The strategies tried in order (the fallback chain) and the routing rules."""

    chain: list[AssignmentStrategy] = Field(
        default_factory=lambda: [AssignmentStrategy.workload], min_length=1, max_length=3
    )
    rules: list[RoutingRule] = Field(default_factory=list, max_length=100)

    @field_validator("chain")
    @classmethod
    def _distinct(cls, chain: list[AssignmentStrategy]) -> list[AssignmentStrategy]:
        if len(set(chain)) != len(chain):
            raise ValueError("each strategy may appear once in the chain")
        return chain


@dataclass(frozen=True)
class LeadTraits:
    source: str
    budget: Decimal | None = None
    zip_code: str | None = None


@dataclass(frozen=True)
class AssignmentDecision:
    agent_id: int | None
    strategy: AssignmentStrategy | None
    reason: str
    candidates: list[dict[str, Any]] = field(default_factory=list)


def _by_rules(
    lead: LeadTraits, loads: Sequence[AgentLoad], config: AssignmentConfig
) -> tuple[AgentLoad | None, str]:
    by_id = {a.agent_id: a for a in loads}
    for rule in config.rules:
        if not rule.matches(lead):
            continue
        pool = [by_id[i] for i in rule.agent_ids if i in by_id]
        if not pool:
            return None, f"rule {rule.name!r} matched but none of its agents is available"
        chosen = best_by_workload(pool)
        return chosen, (
            f"rule {rule.name!r} matched; {chosen.name} has the lowest workload score "
            f"({chosen.adjusted:.1f}) of its {len(pool)} available agent(s)"
        )
    return None, "no routing rule matched"


def _by_round_robin(
    loads: Sequence[AgentLoad], last_agent_id: int | None
) -> tuple[AgentLoad | None, str]:
    ordered = sorted(loads, key=lambda a: a.agent_id)
    after = [a for a in ordered if last_agent_id is None or a.agent_id > last_agent_id]
    chosen = (after or ordered)[0]
    return chosen, f"round robin: next available agent after #{last_agent_id or 0}"


def _by_workload(loads: Sequence[AgentLoad]) -> tuple[AgentLoad | None, str]:
    chosen = best_by_workload(loads)
    return chosen, (
        f"lowest workload score {chosen.adjusted:.1f} (workload {chosen.workload}: "
        f"{chosen.active_leads} active leads, {chosen.pending_tasks} pending and "
        f"{chosen.overdue_tasks} overdue tasks; success rate {chosen.success_rate:.0%}) "
        f"among {len(loads)} available agents"
    )


def decide_assignment(
    lead: LeadTraits,
    available: Sequence[AgentLoad],
    config: AssignmentConfig,
    *,
    last_round_robin_agent_id: int | None = None,
) -> AssignmentDecision:
    """Walk the chain until a strategy names an agent; `available` excludes paused agents."""
    candidates = [a.describe() for a in sorted(available, key=lambda a: a.adjusted)]
    if not available:
        return AssignmentDecision(None, None, "no agent is available (all paused or none)")
    passed: list[str] = []
    strategies: dict[AssignmentStrategy, Callable[[], tuple[AgentLoad | None, str]]] = {
        AssignmentStrategy.rules: lambda: _by_rules(lead, available, config),
        AssignmentStrategy.round_robin: lambda: _by_round_robin(
            available, last_round_robin_agent_id
        ),
        AssignmentStrategy.workload: lambda: _by_workload(available),
    }
    for strategy in config.chain:
        chosen, why = strategies[strategy]()
        if chosen is not None:
            reason = "; ".join([*passed, why])
            return AssignmentDecision(chosen.agent_id, strategy, reason[:500], candidates)
        passed.append(f"{strategy}: {why}")
    return AssignmentDecision(None, None, "; ".join(passed)[:500], candidates)


# === Properties ===================================================================================

CURRENT_YEAR_SLACK = 2
FEATURE = re.compile(r"^[a-z0-9][a-z0-9 \-]{0,39}$")


class ResidentialAttributes(_Strict):
    bedrooms: int = Field(ge=0, le=50)
    bathrooms: float = Field(ge=0, le=50, multiple_of=0.5)
    living_area_sqft: int = Field(ge=100, le=100_000)
    year_built: int | None = Field(default=None, ge=1700, le=2100)
    lot_size_sqft: int | None = Field(default=None, ge=0, le=50_000_000)
    garage_spaces: int | None = Field(default=None, ge=0, le=20)


class CommercialAttributes(_Strict):
    zoning: str = Field(min_length=1, max_length=20)
    units: int = Field(ge=1, le=10_000)
    building_area_sqft: int = Field(ge=100, le=10_000_000)
    cap_rate: float | None = Field(default=None, ge=0, le=30, description="percent")
    year_built: int | None = Field(default=None, ge=1700, le=2100)


class Utility(StrEnum):
    water = "water"
    sewer = "sewer"
    electric = "electric"
    gas = "gas"
    internet = "internet"


class LandAttributes(_Strict):
    acreage: float = Field(gt=0, le=1_000_000)
    zoning: str | None = Field(default=None, max_length=20)
    utilities: list[Utility] = Field(default_factory=list)
    road_access: bool = True


ATTRIBUTES: dict[PropertyType, type[BaseModel]] = {
    PropertyType.residential: ResidentialAttributes,
    PropertyType.commercial: CommercialAttributes,
    PropertyType.land: LandAttributes,
}


def attributes_for(kind: PropertyType, raw: dict[str, Any], *, this_year: int) -> dict[str, Any]:
    """The type's attributes validated and normalized; RuleError (422) lists every problem."""
    try:
        parsed = ATTRIBUTES[kind].model_validate(raw)
    except ValidationError as exc:
        raise RuleError(
            [
                f"attributes.{'.'.join(str(p) for p in e['loc']) or kind}: {e['msg']}"
                for e in exc.errors()
            ],
            status=422,
        ) from None
    year = getattr(parsed, "year_built", None)
    if year is not None and year > this_year + CURRENT_YEAR_SLACK:
        raise RuleError([f"attributes.year_built: {year} is in the future"], status=422)
    return parsed.model_dump(mode="json", exclude_none=True)


def property_search(
    min_price: Decimal | None, max_price: Decimal | None, features: Iterable[str]
) -> list[str]:
    """Check a listing search (the API's and the page's): the price range must be in order;
    the features (comma-separated allowed) come back normalized. RuleError lists every problem."""
    errors: list[str] = []
    if min_price is not None and max_price is not None and min_price > max_price:
        errors.append("The minimum price is above the maximum price.")
    tags = [t for raw in features for t in raw.split(",") if t.strip()]
    try:
        normalized = normalize_features(tags)
    except RuleError as exc:
        errors.extend(exc.errors)
        normalized = []
    if errors:
        raise RuleError(errors, status=422)
    return normalized


def normalize_features(raw: Iterable[str]) -> list[str]:
    out: list[str] = []
    for item in raw:
        tag = " ".join(item.strip().lower().split())
        if not FEATURE.match(tag):
            raise RuleError(
                [f"feature {item!r}: use letters, digits, spaces or '-', at most 40"], status=422
            )
        if tag not in out:
            out.append(tag)
    if len(out) > 30:
        raise RuleError(["at most 30 features"], status=422)
    return out


def can_edit_property(
    principal: Principal, listing_agent_id: int, listing_agent_broker_id: int | None
) -> bool:
    """The listing agent, the listing agent's broker, or an admin (of the property's tenant:
    callers load the property through the visibility policy first)."""
    if principal.role == Role.admin:
        return True
    if principal.role in (Role.agent, Role.broker) and principal.user_id == listing_agent_id:
        return True
    return principal.role == Role.broker and listing_agent_broker_id == principal.user_id


PROPERTY_TRANSITIONS: dict[PropertyStatus, frozenset[PropertyStatus]] = {
    PropertyStatus.active: frozenset({PropertyStatus.deposit_taken, PropertyStatus.withdrawn}),
    PropertyStatus.deposit_taken: frozenset(
        {PropertyStatus.sold, PropertyStatus.active, PropertyStatus.withdrawn}
    ),
    PropertyStatus.withdrawn: frozenset({PropertyStatus.active}),
    PropertyStatus.sold: frozenset(),
}
PROPERTY_STATUS_LABELS = {
    PropertyStatus.active: "Active",
    PropertyStatus.deposit_taken: "Deposit Taken",
    PropertyStatus.sold: "Sold",
    PropertyStatus.withdrawn: "Withdrawn",
}


def reason_required(source: PropertyStatus, target: PropertyStatus) -> bool:
    """Withdrawing a listing, or a deposit falling through, must say why."""
    return target == PropertyStatus.withdrawn or (
        source == PropertyStatus.deposit_taken and target == PropertyStatus.active
    )


def check_property_transition(
    source: PropertyStatus, target: PropertyStatus, reason: str | None
) -> None:
    errors: list[str] = []
    if target == source:
        errors.append(f"The listing is already {PROPERTY_STATUS_LABELS[target]}.")
    elif target not in PROPERTY_TRANSITIONS[source]:
        allowed = sorted(PROPERTY_STATUS_LABELS[s] for s in PROPERTY_TRANSITIONS[source])
        errors.append(
            f"A listing cannot go from {PROPERTY_STATUS_LABELS[source]} to "
            f"{PROPERTY_STATUS_LABELS[target]}"
            + (f"; allowed: {', '.join(allowed)}." if allowed else "; a sold listing is final.")
        )
    if reason_required(source, target) and not (reason or "").strip():
        errors.append(
            f"A reason is required to move a listing from {PROPERTY_STATUS_LABELS[source]} "
            f"to {PROPERTY_STATUS_LABELS[target]}."
        )
    if errors:
        raise RuleError(errors)
