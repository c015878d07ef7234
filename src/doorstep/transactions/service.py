"""Use cases of the transactions module: create and read deals, move milestones, score health,
predict delays, celebrate. Takes a session and a principal; flushes, never commits."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, case, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from doorstep.platform import events, hooks, jobs, notify, realtime
from doorstep.platform.access import get_readable, readable
from doorstep.platform.auth import Principal, Role, User
from doorstep.platform.db import id_in, utcnow
from doorstep.platform.errors import Conflict, DoorstepError, Forbidden, NotFound, RuleViolation
from doorstep.transactions import personalize, rules
from doorstep.transactions.models import (
    Celebration,
    CelebrationTemplate,
    EscrowStatus,
    Milestone,
    MilestoneTemplate,
    Prediction,
    Transaction,
    TransactionEvent,
    TransactionParty,
    TransactionSettings,
    Visibility,
)
from doorstep.transactions.schemas import (
    CelebrateRequest,
    EngagementUpdate,
    PlanIn,
    TransactionCreate,
    TransactionUpdate,
)

STAFF = (Role.admin, Role.broker, Role.agent)
CELEBRATION_NOTICE = notify.register_type(
    "transaction.celebration",
    label="Celebrations on your home purchase",
    description="A milestone reached, a countdown to closing, progress worth sharing.",
    roles=[Role.client],
)
MILESTONE_NOTICE = notify.register_type(
    "transaction.milestone",
    label="Milestone updates on your deals",
    description="A milestone of one of your transactions changed or was delayed.",
    roles=[Role.agent, Role.broker, Role.client],
)


def _refuse(exc: rules.RuleError) -> DoorstepError:
    return Conflict(exc.reason) if exc.status == 409 else RuleViolation(exc.reason)


def today() -> date:
    return utcnow().date()


# --- reading -------------------------------------------------------------------------------------


def get_transaction(session: Session, *, principal: Principal, transaction_id: int) -> Transaction:
    return get_readable(session, Transaction, transaction_id, principal)


def _writable(session: Session, principal: Principal, transaction_id: int) -> Transaction:
    """A transaction the principal may change: its agent, their broker, or an admin."""
    tx = get_transaction(session, principal=principal, transaction_id=transaction_id)
    if principal.role not in STAFF:
        raise Forbidden("Only the transaction's agent, their broker or an admin can change it")
    return tx


def milestones_of(session: Session, tx: Transaction) -> list[Milestone]:
    stmt = select(Milestone).where(Milestone.transaction_id == tx.id)
    return list(session.scalars(stmt.order_by(Milestone.order_sequence)))


def buyer_ids(session: Session, tx: Transaction) -> list[int]:
    stmt = select(TransactionParty.user_id).where(TransactionParty.transaction_id == tx.id)
    return sorted(session.scalars(stmt))


SORTABLE = {
    "target_closing_date": Transaction.target_closing_date,
    "contract_date": Transaction.contract_date,
    "purchase_price": Transaction.purchase_price,
    "progress_percentage": Transaction.progress_percentage,
    "health_score": Transaction.health_score,
    "updated_at": Transaction.updated_at,
    "id": Transaction.id,
}


@dataclass(frozen=True)
class TransactionFilter:
    escrow_status: Sequence[str] = ()
    loan_type: Sequence[str] = ()
    agent_id: int | None = None
    q: str | None = None
    closing_from: date | None = None
    closing_to: date | None = None
    max_health: int | None = None


def _filtered(stmt: Select[Any], f: TransactionFilter) -> Select[Any]:
    if f.escrow_status:
        stmt = stmt.where(Transaction.escrow_status.in_(f.escrow_status))
    if f.loan_type:
        stmt = stmt.where(Transaction.loan_type.in_(f.loan_type))
    if f.agent_id is not None:
        stmt = stmt.where(Transaction.agent_id == f.agent_id)
    if f.closing_from is not None:
        stmt = stmt.where(Transaction.target_closing_date >= f.closing_from)
    if f.closing_to is not None:
        stmt = stmt.where(Transaction.target_closing_date <= f.closing_to)
    if f.max_health is not None:
        stmt = stmt.where(Transaction.health_score <= f.max_health)
    if f.q:
        like = f"%{f.q.lower()}%"
        stmt = stmt.where(
            or_(
                func.lower(Transaction.property_address).like(like),
                func.lower(Transaction.buyer_name).like(like),
                func.lower(Transaction.transaction_id).like(like),
            )
        )
    return stmt


def list_transactions(
    session: Session,
    *,
    principal: Principal,
    filters: TransactionFilter = TransactionFilter(),
    sort: str = "target_closing_date",
    page: int = 1,
    per_page: int = 25,
) -> tuple[list[Transaction], int]:
    column = SORTABLE.get(sort.lstrip("-"))
    if column is None:
        raise RuleViolation(f"Cannot sort by '{sort}'; use one of {', '.join(sorted(SORTABLE))}")
    stmt = _filtered(readable(select(Transaction), principal), filters)
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    order = column.desc() if sort.startswith("-") else column.asc()
    rows = session.scalars(
        stmt.order_by(order, Transaction.id).offset((page - 1) * per_page).limit(per_page)
    )
    return list(rows), int(total)


# --- the tenant's plan, weights and templates ---------------------------------------------------


def plan_for(session: Session, *, tenant_id: int, loan_type: str) -> list[rules.PlanStep]:
    rows = session.scalars(
        select(MilestoneTemplate)
        .where(MilestoneTemplate.tenant_id == tenant_id, MilestoneTemplate.loan_type == loan_type)
        .order_by(MilestoneTemplate.order_sequence)
    ).all()
    if not rows:
        return rules.default_plan(loan_type)
    return [
        rules.PlanStep(
            r.milestone_type,
            r.name,
            r.order_sequence,
            r.progress_weight,
            r.offset_days,
            tuple(r.requires),
            r.optional,
            r.celebration_message,
        )
        for r in rows
    ]


def set_plan(
    session: Session, *, principal: Principal, loan_type: str, plan: PlanIn
) -> list[rules.PlanStep]:
    """Replace the tenant's milestone plan for a loan type (new transactions use it)."""
    _admin(principal)
    steps = [
        rules.PlanStep(
            s.milestone_type,
            s.name,
            i,
            s.progress_weight,
            s.offset_days,
            tuple(s.requires),
            s.optional,
            s.celebration_message,
        )
        for i, s in enumerate(plan.steps, start=1)
    ]
    errors = rules.validate_plan(steps)
    if errors:
        raise RuleViolation("; ".join(errors))
    for old in session.scalars(
        select(MilestoneTemplate).where(
            MilestoneTemplate.tenant_id == principal.tenant_id,
            MilestoneTemplate.loan_type == loan_type,
        )
    ):
        session.delete(old)
    session.flush()
    for s in steps:
        session.add(
            MilestoneTemplate(
                tenant_id=principal.tenant_id,
                loan_type=loan_type,
                milestone_type=s.milestone_type,
                name=s.name,
                order_sequence=s.order_sequence,
                progress_weight=s.weight,
                offset_days=s.offset_days,
                requires=list(s.requires),
                optional=s.optional,
                celebration_message=s.celebration_message,
            )
        )
    session.flush()
    return steps


def _admin(principal: Principal) -> None:
    if principal.role != Role.admin:
        raise Forbidden("Only an admin can change the brokerage's transaction settings")


def health_weights(session: Session, *, tenant_id: int) -> dict[str, float]:
    row = session.get(TransactionSettings, tenant_id)
    return (
        dict(row.health_weights)
        if row is not None and row.health_weights
        else dict(rules.HEALTH_WEIGHTS)
    )


def set_health_weights(
    session: Session, *, principal: Principal, weights: dict[str, float]
) -> dict[str, float]:
    _admin(principal)
    try:
        checked = rules.validate_weights(weights)
    except rules.RuleError as exc:
        raise _refuse(exc) from None
    row = session.get(TransactionSettings, principal.tenant_id)
    if row is None:
        row = TransactionSettings(tenant_id=principal.tenant_id)
        session.add(row)
    row.health_weights = checked
    session.flush()
    jobs.enqueue(
        session,
        "transactions.rescore",
        args={"tenant_id": principal.tenant_id},
        tenant_id=principal.tenant_id,
    )
    return checked


def celebration_text(
    session: Session, *, tenant_id: int, template: str, variant: str
) -> rules.CelebrationText:
    row = session.scalar(
        select(CelebrationTemplate).where(
            CelebrationTemplate.tenant_id == tenant_id,
            CelebrationTemplate.trigger == template,
            CelebrationTemplate.variant == variant,
        )
    )
    if row is not None:
        return rules.CelebrationText(
            row.title, row.message, row.animation, row.duration, row.share_message
        )
    return rules.CELEBRATION_TEMPLATES[template][variant]


def set_celebration_template(
    session: Session,
    *,
    principal: Principal,
    trigger: str,
    variant: str,
    text: rules.CelebrationText,
) -> rules.CelebrationText:
    _admin(principal)
    if trigger not in rules.CELEBRATION_TEMPLATES:
        valid = ", ".join(sorted(rules.CELEBRATION_TEMPLATES))
        raise RuleViolation(f"Unknown trigger '{trigger}'; use one of {valid}")
    if variant not in rules.VARIANTS:
        raise RuleViolation(f"Unknown variant '{variant}'; use one of {', '.join(rules.VARIANTS)}")
    row = session.scalar(
        select(CelebrationTemplate).where(
            CelebrationTemplate.tenant_id == principal.tenant_id,
            CelebrationTemplate.trigger == trigger,
            CelebrationTemplate.variant == variant,
        )
    )
    if row is None:
        row = CelebrationTemplate(tenant_id=principal.tenant_id, trigger=trigger, variant=variant)
        session.add(row)
    row.title, row.message, row.animation = text.title, text.message, text.animation
    row.duration, row.share_message = text.duration, text.share_message
    session.flush()
    return text


# --- the state the rules look at -----------------------------------------------------------------


def _states(milestones: Sequence[Milestone]) -> tuple[rules.MilestoneState, ...]:
    return tuple(
        rules.MilestoneState(
            milestone_type=m.milestone_type,
            name=m.name,
            status=m.status,
            order_sequence=m.order_sequence,
            weight=m.progress_weight,
            target_date=m.target_date,
            actual_date=m.actual_date,
            requires=tuple(m.requires),
            optional=m.optional,
        )
        for m in milestones
    )


def facts(
    tx: Transaction, milestones: Sequence[Milestone], *, as_of: date | None = None
) -> rules.TransactionFacts:
    return rules.TransactionFacts(
        milestones=_states(milestones),
        today=as_of or today(),
        contract_date=tx.contract_date,
        target_closing_date=tx.target_closing_date,
        loan_type=tx.loan_type,
        last_communication=tx.last_communication_at.date(),
        delay_count=tx.delay_count,
        stakeholders={str(k): bool(v) for k, v in (tx.stakeholders or {}).items()},
        buyer_name=tx.buyer_name.split(" ")[0] or "the buyer",
    )


def _rescore(
    session: Session, tx: Transaction, milestones: Sequence[Milestone]
) -> rules.HealthScore:
    health = rules.health_score(
        facts(tx, milestones), health_weights(session, tenant_id=tx.tenant_id)
    )
    tx.progress_percentage = rules.progress(_states(milestones))
    tx.health_score = health.score
    tx.health_factors = health.as_json()
    return health


# --- events: the activity feed and the live stream ------------------------------------------------


def _audience(session: Session, tx: Transaction, visibility: str) -> events.Audience:
    staff = [tx.agent_id]
    agent = session.get(User, tx.agent_id)
    if agent is not None and agent.broker_id is not None:
        staff.append(agent.broker_id)
    people = staff + (buyer_ids(session, tx) if visibility == Visibility.client else [])
    return events.Audience.parties(people, roles=[Role.admin])


def emit(
    session: Session,
    tx: Transaction,
    *,
    type: str,
    title: str,
    description: str = "",
    priority: str = "medium",
    visibility: str = Visibility.client,
    data: dict[str, Any] | None = None,
    actor_id: int | None = None,
) -> TransactionEvent:
    """Record an activity-feed entry and its outbox event; an agent-only one never reaches a
    buyer, on the feed or on the wire."""
    row = TransactionEvent(
        tenant_id=tx.tenant_id,
        transaction_id=tx.id,
        event_type=type,
        title=title,
        description=description,
        priority=priority,
        visibility=visibility,
        data=data or {},
        actor_id=actor_id,
    )
    session.add(row)
    session.flush()
    outbox = events.record(
        session,
        tenant_id=tx.tenant_id,
        channels=[f"transaction:{tx.id}", f"tenant:{tx.tenant_id}"],
        type=type,
        data={
            "transaction_id": tx.id,
            "event_id": row.id,
            "title": title,
            "description": description,
            "priority": priority,
            "visibility": visibility,
            **(data or {}),
        },
        audience=_audience(session, tx, visibility),
    )
    row.outbox_id = outbox.id
    return row


def activity(
    session: Session,
    *,
    principal: Principal,
    transaction_id: int,
    page: int = 1,
    per_page: int = 50,
) -> tuple[list[TransactionEvent], int]:
    tx = get_transaction(session, principal=principal, transaction_id=transaction_id)
    stmt = select(TransactionEvent).where(TransactionEvent.transaction_id == tx.id)
    if principal.role == Role.client:
        stmt = stmt.where(TransactionEvent.visibility == Visibility.client)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(
        stmt.order_by(TransactionEvent.id.desc()).offset((page - 1) * per_page).limit(per_page)
    )
    return list(rows), int(total)


def acknowledge(
    session: Session, *, principal: Principal, transaction_id: int, event_id: int
) -> TransactionEvent:
    get_transaction(session, principal=principal, transaction_id=transaction_id)
    row = session.get(TransactionEvent, event_id)
    visible = (
        row is not None
        and row.transaction_id == transaction_id
        and (principal.role != Role.client or row.visibility == Visibility.client)
    )
    if not visible or row is None:
        raise NotFound(f"Event {event_id} not found")
    if row.acknowledged_at is None:
        row.acknowledged_at, row.acknowledged_by = utcnow(), principal.user_id
        session.flush()
    return row


def _json_milestone(m: Milestone) -> dict[str, Any]:
    return {
        "milestone_type": m.milestone_type,
        "name": m.name,
        "status": m.status,
        "target_date": m.target_date.isoformat(),
        "actual_date": m.actual_date.isoformat() if m.actual_date else None,
        "order_sequence": m.order_sequence,
    }


# --- creating a transaction ----------------------------------------------------------------------


def _agent_for(session: Session, principal: Principal, agent_id: int | None) -> User:
    if principal.role == Role.agent:
        if agent_id not in (None, principal.user_id):
            raise Forbidden("Agents create transactions for themselves")
        agent_id = principal.user_id
    elif principal.role in (Role.broker, Role.admin):
        agent_id = agent_id or principal.user_id
    else:
        raise Forbidden("Only agents, brokers and admins create transactions")
    agent = session.get(User, agent_id)
    if (
        agent is None
        or agent.tenant_id != principal.tenant_id
        or agent.role not in (Role.agent, Role.broker)
    ):
        raise RuleViolation(f"agent_id {agent_id} is not an agent of this brokerage")
    if principal.role == Role.broker and principal.user_id not in (agent.id, agent.broker_id):
        raise RuleViolation(f"agent_id {agent_id} is not one of your agents")
    return agent


def _reference(session: Session, tenant_id: int, contract: date) -> str:
    count = session.scalar(
        select(func.count()).select_from(Transaction).where(Transaction.tenant_id == tenant_id)
    )
    return f"TX-{contract.year}-{(count or 0) + 1:05d}"


def create_transaction(
    session: Session, *, principal: Principal, data: TransactionCreate
) -> Transaction:
    agent = _agent_for(session, principal, data.agent_id)
    if data.contract_date > today():
        raise RuleViolation(f"contract_date {data.contract_date} is in the future")
    buyers = list(dict.fromkeys(data.buyer_ids))
    if buyers:
        found = set(
            session.scalars(
                select(User.id).where(
                    User.id.in_(buyers),
                    User.tenant_id == principal.tenant_id,
                    User.role == Role.client,
                )
            )
        )
        missing = [b for b in buyers if b not in found]
        if missing:
            raise RuleViolation(f"buyer_ids {missing} are not clients of this brokerage")
    tx = Transaction(
        tenant_id=principal.tenant_id,
        transaction_id=_reference(session, principal.tenant_id, data.contract_date),
        agent_id=agent.id,
        **data.model_dump(exclude={"buyer_ids", "agent_id", "loan_type"}),
        loan_type=str(data.loan_type),
        last_communication_at=utcnow(),
    )
    session.add(tx)
    session.flush()
    for user_id in buyers:
        session.add(TransactionParty(tenant_id=tx.tenant_id, transaction_id=tx.id, user_id=user_id))
    plan = plan_for(session, tenant_id=tx.tenant_id, loan_type=tx.loan_type)
    targets = rules.target_dates(plan, tx.contract_date, tx.target_closing_date)
    milestones = []
    for step in plan:
        signed = step.milestone_type == "contract_signed"
        m = Milestone(
            tenant_id=tx.tenant_id,
            transaction_id=tx.id,
            milestone_type=step.milestone_type,
            name=step.name,
            status="completed" if signed else "pending",
            actual_date=tx.contract_date if signed else None,
            order_sequence=step.order_sequence,
            target_date=targets[step.milestone_type],
            progress_weight=step.weight,
            celebration_message=step.celebration_message,
            requires=list(step.requires),
            optional=step.optional,
        )
        session.add(m)
        milestones.append(m)
    session.flush()
    _rescore(session, tx, milestones)
    emit(
        session,
        tx,
        type="transaction.created",
        title="Your purchase is under way",
        description=f"{tx.property_address}: contract signed {tx.contract_date:%B %d, %Y}",
        priority="high",
        data={
            "progress": float(tx.progress_percentage),
            "health_score": tx.health_score,
            "stakeholders": dict(tx.stakeholders or {}),
        },
        actor_id=principal.user_id,
    )
    # A new deal starts at its own health: only later rises are improvements.
    _fire(
        session,
        tx,
        milestones,
        before=(Decimal(0), tx.health_score),
        completed_now=[],
        actor=principal,
    )
    _after_change(session, tx)
    hooks.emit(session, "escrow.created", escrow=tx)
    return tx


def update_transaction(
    session: Session, *, principal: Principal, transaction_id: int, data: TransactionUpdate
) -> Transaction:
    tx = _writable(session, principal, transaction_id)
    if tx.escrow_status in (EscrowStatus.closed, EscrowStatus.cancelled):
        raise Conflict(
            f"Transaction {tx.transaction_id} is {tx.escrow_status.lower()}; it cannot change"
        )
    changes = data.model_dump(exclude_unset=True)
    if (
        changes.get("escrow_status") == EscrowStatus.cancelled
        and not (changes.get("cancellation_reason") or "").strip()
    ):
        raise RuleViolation("Say why the transaction is cancelled (cancellation_reason)")
    new_target = changes.get("target_closing_date")
    if new_target is not None and new_target <= tx.contract_date:
        raise RuleViolation("target_closing_date must be after the contract date")
    ready_before = dict(tx.stakeholders or {})
    for key, value in changes.items():
        setattr(tx, key, value)
    if "stakeholders" in changes and changes["stakeholders"] != ready_before:
        # Who was ready when is history the delay model learns from.
        emit(
            session,
            tx,
            type="stakeholders.updated",
            title="Parties' readiness updated",
            priority="low",
            visibility=Visibility.agent,
            data={"stakeholders": dict(tx.stakeholders)},
            actor_id=principal.user_id,
        )
    milestones = milestones_of(session, tx)
    before = (tx.progress_percentage, tx.health_score)
    _rescore(session, tx, milestones)
    if tx.escrow_status == EscrowStatus.cancelled:
        emit(
            session, tx, type="transaction.cancelled", title="Transaction cancelled",
            description=tx.cancellation_reason or "", priority="critical",
            visibility=Visibility.agent, actor_id=principal.user_id,
        )  # fmt: skip
        _record_outcome(session, tx)
    else:
        _fire(session, tx, milestones, before=before, completed_now=[], actor=principal)
    _after_change(session, tx)
    return tx


# --- milestones ----------------------------------------------------------------------------------


def update_milestone(
    session: Session,
    *,
    principal: Principal,
    transaction_id: int,
    milestone_type: str,
    status: str,
    actual_date: date | None = None,
    notes: str | None = None,
) -> Transaction:
    """Move one milestone, then progress, health, celebrations and the buyer's live view."""
    tx = _writable(session, principal, transaction_id)
    if tx.escrow_status in (EscrowStatus.closed, EscrowStatus.cancelled):
        raise Conflict(
            f"Transaction {tx.transaction_id} is {tx.escrow_status.lower()}; milestones are final"
        )
    milestones = milestones_of(session, tx)
    try:
        rules.check_transition(
            _states(milestones),
            milestone_type=milestone_type,
            status=status,
            actual_date=actual_date,
            contract_date=tx.contract_date,
            today=today(),
        )
    except rules.RuleError as exc:
        raise _refuse(exc) from None
    milestone = next(m for m in milestones if m.milestone_type == milestone_type)
    before = (tx.progress_percentage, tx.health_score)
    previous = milestone.status
    milestone.status = status
    milestone.actual_date = (actual_date or today()) if status == "completed" else None
    if notes is not None:
        milestone.notes = notes
    if status == "delayed":
        tx.delay_count += 1
    tx.last_communication_at = utcnow()  # the buyer hears of it at once, on the portal
    session.flush()
    _rescore(session, tx, milestones)
    verb = {"completed": "completed", "delayed": "delayed", "in_progress": "started",
            "skipped": "skipped", "pending": "reopened"}[status]  # fmt: skip
    emit(
        session,
        tx,
        type=f"milestone.{status if status != 'in_progress' else 'started'}",
        title=f"{milestone.name} {verb}",
        # The agent's notes are internal: they go to the agent-only note below, never here.
        description=milestone.celebration_message if status == "completed" else "",
        priority="high" if status in ("completed", "delayed") else "medium",
        data={
            "milestone": _json_milestone(milestone),
            "previous_status": previous,
            "progress": float(tx.progress_percentage),
            "progress_shown": rules.shown_percent(tx.progress_percentage),
            "health_score": tx.health_score,
        },
        actor_id=principal.user_id,
    )
    if notes:
        emit(session, tx, type="milestone.note", title=f"Note on {milestone.name}",
             description=notes, priority="low", visibility=Visibility.agent,
             actor_id=principal.user_id)  # fmt: skip
    completed_now = [
        s
        for s in _states(milestones)
        if s.milestone_type == milestone_type and status == "completed"
    ]
    _fire(session, tx, milestones, before=before, completed_now=completed_now, actor=principal)
    if milestone_type == "closing_day" and status == "completed":
        tx.escrow_status = EscrowStatus.closed
        tx.actual_closing_date = milestone.actual_date
        emit(session, tx, type="transaction.closed", title="Closed! Welcome home",
             priority="critical", data={"actual_closing_date": str(tx.actual_closing_date)},
             actor_id=principal.user_id)  # fmt: skip
        _record_outcome(session, tx)
        hooks.emit(session, "escrow.closed", escrow=tx)
    for user_id in [tx.agent_id] if principal.user_id != tx.agent_id else []:
        notify.notify(
            session,
            user_id=user_id,
            type=MILESTONE_NOTICE.key,
            title=f"{milestone.name} {verb} on {tx.property_address}",
            body=f"{principal.full_name} marked {milestone.name} {verb}.",
            link=f"/transactions/{tx.id}",
        )
    _after_change(session, tx)
    return tx


def _after_change(session: Session, tx: Transaction) -> None:
    session.flush()
    if tx.escrow_status in (EscrowStatus.active, EscrowStatus.pending):
        jobs.enqueue(
            session,
            "transactions.predict",
            args={"transaction_id": tx.id},
            tenant_id=tx.tenant_id,
        )


# --- celebrations --------------------------------------------------------------------------------


def _fired(session: Session, tx: Transaction) -> set[str]:
    stmt = select(Celebration.trigger_key).where(Celebration.transaction_id == tx.id)
    return set(session.scalars(stmt))


def _fire(
    session: Session,
    tx: Transaction,
    milestones: Sequence[Milestone],
    *,
    before: tuple[Decimal, int],
    completed_now: Sequence[rules.MilestoneState],
    actor: Principal | None,
) -> list[Celebration]:
    """Evaluate every trigger; each fires once per transaction, however often this runs."""
    days = (tx.target_closing_date - today()).days
    triggers = rules.due_triggers(
        fired=_fired(session, tx),
        before_progress=before[0],
        after_progress=tx.progress_percentage,
        before_health=before[1],
        after_health=tx.health_score,
        completed_now=completed_now,
        days_to_closing=days
        if tx.escrow_status in (EscrowStatus.active, EscrowStatus.pending)
        else None,
    )
    out = []
    for trigger in triggers:
        row = _celebrate(session, tx, trigger, actor=actor)
        if row is not None:
            out.append(row)
    return out


def _celebrate(
    session: Session,
    tx: Transaction,
    trigger: rules.Trigger,
    *,
    actor: Principal | None,
    text: rules.CelebrationText | None = None,
) -> Celebration | None:
    variant = rules.assign_variant(tx.transaction_id, trigger.key)
    if text is None:
        values = {
            "property": tx.property_address,
            "buyer": tx.buyer_name.split(" ")[0],
            **trigger.values,
        }
        text = rules.render_celebration(
            celebration_text(
                session, tenant_id=tx.tenant_id, template=trigger.template, variant=variant
            ),
            values,
        )
        text = personalize.celebration(
            jobs.settings_of(session), text, {"occasion": trigger.type, **values}
        )
    buyers = buyer_ids(session, tx)
    row = Celebration(
        tenant_id=tx.tenant_id,
        transaction_id=tx.id,
        trigger_type=trigger.type,
        trigger_key=trigger.key,
        variant=variant,
        title=text.title,
        message=text.message,
        animation=text.animation,
        duration=text.duration,
        share_message=text.share_message,
        channels=["in_app"],
        delivery_status={"in_app": "sent"},
        created_by=actor.user_id if actor else None,
    )
    try:
        with session.begin_nested():  # a concurrent retry fired it first: once is enough
            session.add(row)
            session.flush()
    except IntegrityError:
        return None
    for user_id in buyers:
        notice = notify.notify(
            session, user_id=user_id, type=CELEBRATION_NOTICE.key, title=text.title,
            body=text.message, link=f"/portal/{tx.id}",
        )  # fmt: skip
        if notice is not None:
            sent = session.scalars(
                select(notify.Delivery.channel).where(notify.Delivery.notification_id == notice.id)
            )
            row.channels = sorted({*row.channels, *sent})
    row.delivery_status = {c: ("sent" if c == "in_app" else "queued") for c in row.channels}
    emit(
        session,
        tx,
        type="celebration.triggered",
        title=text.title,
        description=text.message,
        priority="high",
        data={"celebration": celebration_json(row)},
        actor_id=actor.user_id if actor else None,
    )
    return row


def celebration_json(row: Celebration) -> dict[str, Any]:
    return {
        "id": row.id,
        "trigger_type": row.trigger_type,
        "trigger_key": row.trigger_key,
        "variant": row.variant,
        "title": row.title,
        "message": row.message,
        "animation": row.animation,
        "duration": row.duration,
        "share_message": row.share_message,
    }


def celebrate(
    session: Session, *, principal: Principal, transaction_id: int, body: CelebrateRequest
) -> Celebration:
    """An agent's own celebration (a custom trigger): any number of them, each once."""
    tx = _writable(session, principal, transaction_id)
    count = session.scalar(
        select(func.count())
        .select_from(Celebration)
        .where(Celebration.transaction_id == tx.id, Celebration.trigger_type == "custom")
    )
    trigger = rules.Trigger("custom", f"custom:{(count or 0) + 1}", "custom")
    text = rules.CelebrationText(
        body.title, body.message, body.animation, body.duration, body.share_message
    )
    row = _celebrate(session, tx, trigger, actor=principal, text=text)
    if row is None:
        raise Conflict("A celebration was just sent; try again")
    return row


def celebrations(
    session: Session, *, principal: Principal, transaction_id: int
) -> list[Celebration]:
    tx = get_transaction(session, principal=principal, transaction_id=transaction_id)
    stmt = (
        select(Celebration)
        .where(Celebration.transaction_id == tx.id)
        .order_by(Celebration.id.desc())
    )
    return list(session.scalars(stmt))


def record_engagement(
    session: Session,
    *,
    principal: Principal,
    transaction_id: int,
    celebration_id: int,
    body: EngagementUpdate,
) -> Celebration:
    """The buyer saw (and maybe shared) a celebration; staff previews do not count."""
    tx = get_transaction(session, principal=principal, transaction_id=transaction_id)
    if principal.role != Role.client:
        raise Forbidden("Engagement is recorded for the transaction's buyers only")
    row = session.get(Celebration, celebration_id)
    if row is None or row.transaction_id != tx.id:
        raise NotFound(f"Celebration {celebration_id} not found")
    if body.shown and row.shown_at is None:
        row.shown_at = utcnow()
    row.seconds_viewed = max(row.seconds_viewed, body.seconds_viewed)
    if body.shared:
        row.shared, row.share_channel = True, body.share_channel or row.share_channel
    session.flush()
    return row


# --- health, predictions, analytics ---------------------------------------------------------------


def health(session: Session, *, principal: Principal, transaction_id: int) -> dict[str, Any]:
    tx = get_transaction(session, principal=principal, transaction_id=transaction_id)
    weights = health_weights(session, tenant_id=tx.tenant_id)
    score = rules.health_score(facts(tx, milestones_of(session, tx)), weights)
    # Every milestone change and nightly rescore leaves the score it produced in the feed.
    rows = session.execute(
        select(TransactionEvent.created_at, TransactionEvent.data)
        .where(TransactionEvent.transaction_id == tx.id)
        .order_by(TransactionEvent.id)
    ).all()
    trend = [
        {"at": at.isoformat(), "score": data["health_score"]}
        for at, data in rows
        if isinstance(data.get("health_score"), int)
    ]
    return {
        "transaction_id": tx.id,
        "score": score.score,
        "factors": score.factors,
        "weights": weights,
        "recommendations": score.recommendations,
        "trend": trend[-30:],
    }


def _market_delay_rate(session: Session, tenant_id: int) -> float | None:
    """Share of the brokerage's deals closed in the last 90 days that closed late."""
    since = today() - timedelta(days=90)
    rows = session.execute(
        select(Transaction.actual_closing_date, Transaction.target_closing_date).where(
            Transaction.tenant_id == tenant_id,
            Transaction.escrow_status == EscrowStatus.closed,
            Transaction.actual_closing_date >= since,
        )
    ).all()
    if len(rows) < 10:
        return None
    late = sum(1 for actual, target in rows if actual is not None and actual > target)
    return late / len(rows)


def refresh_prediction(session: Session, *, transaction: Transaction) -> Prediction:
    """Predict now and keep the prediction, so its outcome can be scored when the deal ends."""
    from doorstep.transactions import predict

    current = facts(transaction, milestones_of(session, transaction))
    forecast = predict.forecast(
        session,
        tenant_id=transaction.tenant_id,
        facts=current,
        market_delay_rate=_market_delay_rate(session, transaction.tenant_id),
    )
    row = Prediction(
        tenant_id=transaction.tenant_id,
        transaction_id=transaction.id,
        model_version=forecast.model_version,
        delay_probability=forecast.delay_probability,
        predicted_closing_date=forecast.predicted_closing_date,
        closing_date_low=forecast.closing_date_low,
        closing_date_high=forecast.closing_date_high,
        confidence=forecast.confidence,
        factors=forecast.factors,
        risk_factors=forecast.risk_factors,
        recommended_actions=personalize.recommendations(
            jobs.settings_of(session),
            forecast.recommended_actions,
            {"buyer": current.buyer_name, "days to closing": current.days_to_closing},
        ),
    )
    session.add(row)
    session.flush()
    return row


def latest_prediction(session: Session, *, principal: Principal, transaction_id: int) -> Prediction:
    tx = get_transaction(session, principal=principal, transaction_id=transaction_id)
    row = session.scalar(
        select(Prediction)
        .where(Prediction.transaction_id == tx.id)
        .order_by(Prediction.id.desc())
        .limit(1)
    )
    stale = row is None or row.created_at < tx.updated_at - timedelta(seconds=1)
    if stale and tx.escrow_status in (EscrowStatus.active, EscrowStatus.pending):
        row = refresh_prediction(session, transaction=tx)
    if row is None:
        raise NotFound("This transaction ended before any prediction was made")
    return row


def risk_level(probability: float) -> str:
    return "high" if probability >= 0.5 else ("medium" if probability >= 0.25 else "low")


def _record_outcome(session: Session, tx: Transaction) -> None:
    from doorstep.transactions import predict

    predict.record_outcome(session, transaction=tx)


def analytics(session: Session, *, principal: Principal, transaction_id: int) -> dict[str, Any]:
    """How this deal is performing, against its own plan and the brokerage's closed deals."""
    tx = get_transaction(session, principal=principal, transaction_id=transaction_id)
    milestones = milestones_of(session, tx)
    done = [m for m in milestones if m.status == "completed" and m.actual_date is not None]
    slips = [(m.actual_date - m.target_date).days for m in done if m.actual_date is not None]
    peers = session.execute(
        select(Transaction.contract_date, Transaction.actual_closing_date).where(
            Transaction.tenant_id == tx.tenant_id,
            Transaction.loan_type == tx.loan_type,
            Transaction.escrow_status == EscrowStatus.closed,
        )
    ).all()
    peer_days = [(closed - signed).days for signed, closed in peers if closed is not None]
    total_celebrations, shown_count, avg_seconds, shared = session.execute(
        select(
            func.count(),
            func.count(Celebration.shown_at),
            func.avg(Celebration.seconds_viewed),
            func.sum(case((Celebration.shared, 1), else_=0)),
        ).where(Celebration.transaction_id == tx.id)
    ).one()
    elapsed = (min(today(), tx.actual_closing_date or today()) - tx.contract_date).days
    return {
        "transaction_id": tx.id,
        "days_elapsed": elapsed,
        "days_to_closing": (tx.target_closing_date - today()).days,
        "planned_days": (tx.target_closing_date - tx.contract_date).days,
        "milestones_completed": len(done),
        "milestones_total": len(milestones),
        "on_time_rate": round(sum(1 for s in slips if s <= 0) / len(slips), 3) if slips else None,
        "average_slip_days": round(statistics.fmean(slips), 2) if slips else None,
        "delay_count": tx.delay_count,
        "brokerage_median_days_to_close": statistics.median(peer_days) if peer_days else None,
        "brokerage_closed_deals": len(peer_days),
        "celebrations": {
            "total": total_celebrations,
            "shown": shown_count,
            "shown_rate": round(shown_count / total_celebrations, 3)
            if total_celebrations
            else None,
            "average_seconds_viewed": round(float(avg_seconds), 1)
            if avg_seconds is not None
            else None,
            "shared": int(shared or 0),
        },
    }


# --- periodic work -------------------------------------------------------------------------------


def daily_pass(session: Session, *, tenant_id: int, as_of: datetime | None = None) -> int:
    """Nightly: rescore every open deal (time moves health), fire countdowns, re-predict."""
    stmt = select(Transaction).where(
        Transaction.tenant_id == tenant_id,
        Transaction.escrow_status.in_([EscrowStatus.active, EscrowStatus.pending]),
    )
    count = 0
    for tx in session.scalars(stmt).all():
        milestones = milestones_of(session, tx)
        before = (tx.progress_percentage, tx.health_score)
        _rescore(session, tx, milestones)
        _fire(session, tx, milestones, before=before, completed_now=[], actor=None)
        if tx.health_score != before[1]:
            emit(session, tx, type="health.changed", title=f"Health score {tx.health_score}",
                 priority="low", visibility=Visibility.agent,
                 data={"health_score": tx.health_score, "previous": before[1]})  # fmt: skip
        refresh_prediction(session, transaction=tx)
        count += 1
    session.flush()
    return count


def buyer_transactions(session: Session, *, principal: Principal) -> list[Transaction]:
    """The deals a client is party to, the open ones first."""
    stmt = readable(select(Transaction), principal).order_by(
        Transaction.escrow_status.in_([EscrowStatus.closed, EscrowStatus.cancelled]),
        Transaction.target_closing_date.desc(),
    )
    return list(session.scalars(stmt))


def _may_follow(session: Session, principal: Principal, arg: str) -> bool:
    """Who may subscribe to `transaction:{id}`: whoever may read the transaction."""
    if not arg.isdigit():
        return False
    stmt = readable(
        select(Transaction.id).where(Transaction.id == int(arg)), principal, Transaction
    )
    return session.scalar(stmt) is not None


realtime.register_channel("transaction", _may_follow)


# --- production figures for the broker dashboard (seed 004) ------------------------------------


@dataclass(frozen=True)
class Production:
    escrows: int = 0
    volume: Decimal = Decimal(0)
    commission: Decimal = Decimal(0)
    last_created_at: datetime | None = None


def production_by_agent(
    session: Session, *, principal: Principal, agent_ids: list[int], start: date, end: date
) -> dict[int, Production]:
    """Escrows (Active, Pending or Closed) with a contract date in [start, end), their volume
    and commission, per agent; agents without any get zeros. Counted through the visibility
    policy, in one grouped query (no join that could multiply the sums)."""
    live = [EscrowStatus.active, EscrowStatus.pending, EscrowStatus.closed]
    rows = session.execute(
        readable(
            select(
                Transaction.agent_id,
                func.count(),
                func.coalesce(func.sum(Transaction.purchase_price), 0),
                func.coalesce(func.sum(Transaction.my_commission), 0),
                func.max(Transaction.created_at),
            ),
            principal,
            Transaction,
        )
        .where(
            id_in(session, Transaction.agent_id, agent_ids),
            Transaction.escrow_status.in_(live),
            Transaction.contract_date >= start,
            Transaction.contract_date < end,
        )
        .group_by(Transaction.agent_id)
    )
    found = {row[0]: Production(row[1], Decimal(row[2]), Decimal(row[3]), row[4]) for row in rows}
    return {a: found.get(a, Production()) for a in agent_ids}
