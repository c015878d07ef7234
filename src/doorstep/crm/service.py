"""Use cases of the CRM (seed 003): listings, leads through the sales process, tasks, heat,
assignment, clients and appointments. Every read goes through platform/access.py; every
rule lives in crm/rules.py; services flush, the request (or job) commits."""

from __future__ import annotations

import csv
import io
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Select, and_, exists, func, or_, select, update
from sqlalchemy.orm import Session

from doorstep.crm import rules
from doorstep.crm.models import (
    AgentProfile,
    Appointment,
    AssignmentSettings,
    AssignmentStrategy,
    Client,
    InteractionKind,
    Lead,
    LeadAssignment,
    LeadInteraction,
    LeadMessage,
    LeadStageCount,
    MessageChannel,
    MessageStatus,
    MessageType,
    Property,
    PropertyFeature,
    PropertyStatus,
    PropertyType,
    SalesProcess,
    Task,
    TaskStatus,
)
from doorstep.crm.schemas import (
    AppointmentCreate,
    AppointmentUpdate,
    ClientCreate,
    ClientUpdate,
    LeadCreate,
    LeadUpdate,
    PropertyCreate,
    PropertyUpdate,
    TaskCreate,
    TaskUpdate,
)
from doorstep.platform import access, channels, hooks, jobs, notify
from doorstep.platform.access import get_readable, readable
from doorstep.platform.auth import Principal, Role, Tenant, User
from doorstep.platform.db import id_in, utcnow
from doorstep.platform.errors import Conflict, DoorstepError, Forbidden, NotFound, RuleViolation

TASK_OVERDUE = notify.register_type(
    "crm.tasks_overdue",
    label="Overdue tasks",
    description="Follow-up calls and meetings of your leads that passed their due time.",
    roles=[Role.agent, Role.broker, Role.admin],
)
LEAD_ASSIGNED = notify.register_type(
    "crm.lead_assigned",
    label="New leads assigned to you",
    description="A new lead was routed to you by the brokerage's assignment rules.",
    roles=[Role.agent, Role.broker],
)

PIPELINE_OWNERS = (Role.agent, Role.broker)


class TransitionRefused(Conflict):
    """A refused stage move: 409 with every reason in `errors`."""

    code = "transition_refused"

    def __init__(self, errors: Sequence[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = list(errors)


def refused(exc: rules.RuleError) -> DoorstepError:
    if exc.status == 409:
        return TransitionRefused(exc.errors)
    error = RuleViolation("; ".join(exc.errors))
    error.errors = exc.errors
    return error


# === properties ===================================================================================


@dataclass
class PropertyFilter:
    status: list[str] = field(default_factory=list)
    property_type: list[str] = field(default_factory=list)
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    city: str | None = None
    zip_code: str | None = None
    min_bedrooms: int | None = None
    min_bathrooms: float | None = None
    features: list[str] = field(default_factory=list)
    listing_agent_id: int | None = None
    q: str | None = None


PROPERTY_SORTS = {
    "price": Property.price,
    "created_at": Property.created_at,
    "updated_at": Property.updated_at,
    "city": Property.city,
    "bedrooms": Property.bedrooms,
    "area_sqft": Property.area_sqft,
    "status": Property.status,
    "title": Property.title,
}


def _order(sort: str, columns: dict[str, Any], tiebreak: Any) -> list[Any]:
    descending = sort.startswith("-")
    column = columns.get(sort.lstrip("-"))
    if column is None:
        raise RuleViolation(
            f"sort: unknown field {sort.lstrip('-')!r}; use one of {sorted(columns)}"
        )
    return [
        column.desc() if descending else column.asc(),
        tiebreak.desc() if descending else tiebreak,
    ]


def count_of(db: Session, stmt: Select[*tuple[Any, ...]]) -> int:
    """How many rows a (filtered, unpaginated) query has."""
    return db.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def property_query(principal: Principal, filters: PropertyFilter) -> Select[Any]:
    stmt = readable(select(Property), principal)
    if filters.status:
        stmt = stmt.where(Property.status.in_(filters.status))
    if filters.property_type:
        stmt = stmt.where(Property.property_type.in_(filters.property_type))
    if filters.min_price is not None:
        stmt = stmt.where(Property.price >= filters.min_price)
    if filters.max_price is not None:
        stmt = stmt.where(Property.price <= filters.max_price)
    if filters.city:
        stmt = stmt.where(func.lower(Property.city) == filters.city.lower())
    if filters.zip_code:
        stmt = stmt.where(Property.zip_code.startswith(filters.zip_code, autoescape=True))
    if filters.min_bedrooms is not None:
        stmt = stmt.where(Property.bedrooms >= filters.min_bedrooms)
    if filters.min_bathrooms is not None:
        stmt = stmt.where(Property.bathrooms >= filters.min_bathrooms)
    if filters.listing_agent_id is not None:
        stmt = stmt.where(Property.listing_agent_id == filters.listing_agent_id)
    for feature in filters.features:
        stmt = stmt.where(
            exists().where(
                PropertyFeature.property_id == Property.id, PropertyFeature.feature == feature
            )
        )
    if filters.q:
        pattern = _like(filters.q)
        stmt = stmt.where(
            or_(
                func.lower(Property.title).like(pattern, escape="\\"),
                func.lower(Property.address).like(pattern, escape="\\"),
                func.lower(Property.city).like(pattern, escape="\\"),
            )
        )
    return stmt


def list_properties(
    db: Session,
    *,
    principal: Principal,
    filters: PropertyFilter,
    sort: str = "-created_at",
    offset: int = 0,
    limit: int = 25,
) -> tuple[list[Property], int]:
    stmt = property_query(principal, filters)
    order = _order(sort, PROPERTY_SORTS, Property.id)
    rows = db.scalars(stmt.order_by(*order).offset(offset).limit(limit)).all()
    return list(rows), count_of(db, stmt)


def get_property(db: Session, *, principal: Principal, property_id: int) -> Property:
    return get_readable(db, Property, property_id, principal)


def can_edit_property(principal: Principal, listing_agent: User) -> bool:
    return rules.can_edit_property(principal, listing_agent.id, listing_agent.broker_id)


def editable_property(db: Session, *, principal: Principal, property_id: int) -> Property:
    prop = get_property(db, principal=principal, property_id=property_id)
    agent = db.get(User, prop.listing_agent_id)
    if agent is None or not can_edit_property(principal, agent):
        raise Forbidden("Only the listing agent, their broker or an admin can change this listing")
    return prop


def _listing_agent(db: Session, principal: Principal, agent_id: int | None) -> User:
    """Who may list for whom: agents for themselves, brokers for themselves and their team,
    admins for any agent or broker of the tenant."""
    if agent_id is None or agent_id == principal.user_id:
        if principal.role not in (Role.agent, Role.broker):
            raise RuleViolation("listing_agent_id: name the agent who lists this property")
        user = db.get(User, principal.user_id)
        assert user is not None
        return user
    agent = db.get(User, agent_id)
    if (
        agent is None
        or agent.tenant_id != principal.tenant_id
        or agent.role not in (Role.agent, Role.broker)
        or not agent.is_active
    ):
        raise RuleViolation(
            f"listing_agent_id: {agent_id} is not an active agent of this brokerage"
        )
    if not can_edit_property(principal, agent):
        raise Forbidden("You can list properties only for yourself or for agents of your team")
    return agent


def _apply_type_fields(db: Session, prop: Property, attributes: dict[str, Any]) -> None:
    try:
        clean = rules.attributes_for(
            PropertyType(prop.property_type), attributes, this_year=utcnow().year
        )
    except rules.RuleError as exc:
        raise refused(exc) from None
    prop.attributes = clean
    prop.bedrooms = clean.get("bedrooms")
    prop.bathrooms = clean.get("bathrooms")
    prop.area_sqft = (
        clean.get("living_area_sqft")
        or clean.get("building_area_sqft")
        or (round(clean["acreage"] * 43560) if "acreage" in clean else None)
    )


def _set_features(db: Session, prop: Property, features: Iterable[str]) -> None:
    try:
        tags = rules.normalize_features(features)
    except rules.RuleError as exc:
        raise refused(exc) from None
    prop.features = tags
    if prop.id is not None:
        db.query(PropertyFeature).filter(PropertyFeature.property_id == prop.id).delete()
    db.flush()
    db.add_all(
        PropertyFeature(tenant_id=prop.tenant_id, property_id=prop.id, feature=t) for t in tags
    )


def create_property(db: Session, *, principal: Principal, data: PropertyCreate) -> Property:
    agent = _listing_agent(db, principal, data.listing_agent_id)
    prop = Property(
        tenant_id=principal.tenant_id,
        listing_agent_id=agent.id,
        property_type=data.property_type,
        title=data.title,
        description=data.description,
        address=data.address,
        city=data.city,
        state=data.state,
        zip_code=data.zip_code,
        price=data.price,
    )
    _apply_type_fields(db, prop, data.attributes)
    db.add(prop)
    db.flush()
    _set_features(db, prop, data.features)
    db.flush()
    hooks.emit(db, "listing.created", listing=prop)
    return prop


def update_property(
    db: Session, *, principal: Principal, property_id: int, data: PropertyUpdate
) -> Property:
    prop = editable_property(db, principal=principal, property_id=property_id)
    changes = data.model_dump(exclude_unset=True)
    if "listing_agent_id" in changes:
        prop.listing_agent_id = _listing_agent(db, principal, changes.pop("listing_agent_id")).id
    if "attributes" in changes:
        _apply_type_fields(db, prop, changes.pop("attributes") or {})
    if "features" in changes:
        _set_features(db, prop, changes.pop("features") or [])
    for name, value in changes.items():
        if value is None:
            raise RuleViolation(f"{name}: may not be empty")
        setattr(prop, name, value)
    db.flush()
    return prop


def change_property_status(
    db: Session,
    *,
    principal: Principal,
    property_id: int,
    status: PropertyStatus,
    reason: str | None,
) -> Property:
    """Active -> Deposit Taken -> Sold, and Withdrawn (rules.PROPERTY_TRANSITIONS); audited."""
    prop = editable_property(db, principal=principal, property_id=property_id)
    try:
        rules.check_property_transition(PropertyStatus(prop.status), status, reason)
    except rules.RuleError as exc:
        raise refused(exc) from None
    prop.status, prop.status_reason = status, (reason or "").strip()
    prop.status_changed_at = utcnow()
    db.flush()
    return prop


# === the sales process ============================================================================


def sales_rules(db: Session, tenant_id: int) -> rules.SalesProcessRules:
    row = db.get(SalesProcess, tenant_id)
    if row is None or not row.definition:
        return rules.SalesProcessRules()
    return rules.SalesProcessRules(rules.SalesProcessDefinition.model_validate(row.definition))


def set_sales_process(
    db: Session, *, principal: Principal, definition: rules.SalesProcessDefinition
) -> rules.SalesProcessRules:
    """Replace the tenant's stage machine. Leads in a stage the new one lacks must move first."""
    names = {s.name for s in definition.stages}
    stranded = db.execute(
        select(Lead.stage, func.count())
        .where(Lead.tenant_id == principal.tenant_id, Lead.stage.not_in(names))
        .group_by(Lead.stage)
    ).all()
    if stranded:
        listed = ", ".join(f"{stage} ({n} leads)" for stage, n in stranded)
        raise Conflict(f"Leads are still in stages the new process removes: {listed}")
    row = db.get(SalesProcess, principal.tenant_id)
    if row is None:
        row = SalesProcess(tenant_id=principal.tenant_id)
        db.add(row)
    row.definition = definition.model_dump(mode="json")
    db.flush()
    return rules.SalesProcessRules(definition)


# === leads ========================================================================================


@dataclass
class LeadFilter:
    stage: list[str] = field(default_factory=list)
    heat: list[str] = field(default_factory=list)
    source: list[str] = field(default_factory=list)
    agent_id: int | None = None
    unassigned: bool = False
    q: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None


LEAD_SORTS = {
    "created_at": Lead.created_at,
    "updated_at": Lead.updated_at,
    "name": Lead.name,
    "heat_score": Lead.heat_score,
    "stage_entered_at": Lead.stage_entered_at,
    "last_interaction_at": Lead.last_interaction_at,
    "budget": Lead.budget,
}


def lead_query(principal: Principal, filters: LeadFilter) -> Select[Any]:
    stmt = readable(select(Lead), principal)
    if filters.stage:
        stmt = stmt.where(Lead.stage.in_(filters.stage))
    if filters.heat:
        stmt = stmt.where(Lead.heat.in_(filters.heat))
    if filters.source:
        stmt = stmt.where(Lead.source.in_(filters.source))
    if filters.agent_id is not None:
        stmt = stmt.where(Lead.agent_id == filters.agent_id)
    if filters.unassigned:
        stmt = stmt.where(Lead.agent_id.is_(None))
    if filters.created_from is not None:
        stmt = stmt.where(Lead.created_at >= filters.created_from)
    if filters.created_to is not None:
        stmt = stmt.where(Lead.created_at < filters.created_to)
    if filters.q:
        pattern = _like(filters.q)
        stmt = stmt.where(
            or_(
                func.lower(Lead.name).like(pattern, escape="\\"),
                func.lower(Lead.email).like(pattern, escape="\\"),
                Lead.phone.like(pattern, escape="\\"),
            )
        )
    return stmt


def list_leads(
    db: Session,
    *,
    principal: Principal,
    filters: LeadFilter,
    sort: str = "-created_at",
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[Lead], int]:
    stmt = lead_query(principal, filters)
    order = _order(sort, LEAD_SORTS, Lead.id)
    rows = db.scalars(stmt.order_by(*order).offset(offset).limit(limit)).all()
    return list(rows), count_of(db, stmt)


def get_lead(db: Session, *, principal: Principal, lead_id: int) -> Lead:
    return get_readable(db, Lead, lead_id, principal)


def lead_names(db: Session, *, principal: Principal, ids: Iterable[int]) -> dict[int, str]:
    """Names of the given leads the principal may read, in one query."""
    wanted = set(ids)
    if not wanted:
        return {}
    rows = db.execute(
        readable(select(Lead.id, Lead.name), principal, Lead).where(Lead.id.in_(wanted))
    )
    return {row[0]: row[1] for row in rows}


def _check_property(db: Session, principal: Principal, property_id: int | None) -> None:
    if property_id is not None:
        try:
            get_property(db, principal=principal, property_id=property_id)
        except NotFound:
            raise RuleViolation(f"property_id: no property {property_id}") from None


def create_lead(
    db: Session, *, principal: Principal, data: LeadCreate, origin: str = "api"
) -> Lead:
    """A new lead in the first stage, with that stage's tasks. An agent's or broker's lead is
    their own (a broker's is private); an admin's goes to the named agent or is assigned."""
    if principal.role not in (Role.admin, *PIPELINE_OWNERS):
        raise Forbidden("Only agents, brokers and admins add leads")
    _check_property(db, principal, data.property_id)
    process = sales_rules(db, principal.tenant_id)
    owner: int | None
    if principal.role == Role.admin:
        owner = data.agent_id
        if owner is not None:
            _pipeline_owner(db, principal, owner)
    else:
        if data.agent_id not in (None, principal.user_id):
            raise Forbidden("Agents and brokers add leads to their own pipeline only")
        owner = principal.user_id
    now = utcnow()
    lead = Lead(
        tenant_id=principal.tenant_id,
        agent_id=owner,
        name=data.name,
        email=str(data.email) if data.email else None,
        phone=data.phone,
        source=data.source,
        budget=data.budget,
        zip_code=data.zip_code,
        notes=data.notes,
        property_id=data.property_id,
        is_private=(
            data.is_private if data.is_private is not None else principal.role == Role.broker
        ),
        stage=process.initial.name,
        stage_entered_at=now,
        assigned_at=now if owner else None,
    )
    db.add(lead)
    db.flush()
    if owner is None:
        assign_lead(db, lead=lead, decided_by=None, origin=origin)
    else:
        if principal.role == Role.admin:
            reason = f"added by {principal.full_name} ({origin})"
            _record_assignment(db, lead, owner, "manual", reason, [], principal.user_id)
        _plan_tasks(db, lead, process, now)
    refresh_heat(db, lead, process=process, now=now)
    return lead


def _pipeline_owner(db: Session, principal: Principal, user_id: int) -> User:
    user = db.get(User, user_id)
    if (
        user is None
        or user.tenant_id != principal.tenant_id
        or user.role not in PIPELINE_OWNERS
        or not user.is_active
    ):
        raise RuleViolation(f"agent_id: {user_id} is not an active agent of this brokerage")
    return user


def update_lead(db: Session, *, principal: Principal, lead_id: int, data: LeadUpdate) -> Lead:
    lead = get_lead(db, principal=principal, lead_id=lead_id)
    changes = data.model_dump(exclude_unset=True)
    if "property_id" in changes:
        _check_property(db, principal, changes["property_id"])
    if changes.get("name", "") is None:
        raise RuleViolation("name: may not be empty")
    for name, value in changes.items():
        setattr(lead, name, str(value) if name == "email" and value is not None else value)
    db.flush()
    return lead


def lead_facts(db: Session, lead: Lead) -> rules.LeadFacts:
    offer_sent = db.scalar(
        select(
            exists().where(
                LeadMessage.lead_id == lead.id,
                LeadMessage.message_type == MessageType.offer_sent,
                LeadMessage.channel == MessageChannel.whatsapp,
                LeadMessage.status.in_(DELIVERED),
            )
        )
    )
    return rules.LeadFacts(
        stage=lead.stage,
        phone=lead.phone,
        email=lead.email,
        budget=lead.budget,
        whatsapp_offer_sent=bool(offer_sent),
    )


def check_transition(
    db: Session, *, principal: Principal, lead_id: int, to_stage: str
) -> rules.TransitionCheck:
    lead = get_lead(db, principal=principal, lead_id=lead_id)
    return sales_rules(db, principal.tenant_id).validate_stage_transition(
        lead_facts(db, lead), to_stage
    )


def transition_lead(
    db: Session,
    *,
    principal: Principal,
    lead_id: int,
    to_stage: str,
    position: int | None = None,
) -> Lead:
    """Move a lead through the tenant's sales process: every way of moving one lands here."""
    lead = get_lead(db, principal=principal, lead_id=lead_id)
    process = sales_rules(db, principal.tenant_id)
    check = process.validate_stage_transition(lead_facts(db, lead), to_stage)
    if not check.is_valid:
        raise TransitionRefused(check.errors)
    now = utcnow()
    source = lead.stage
    _make_room(db, lead, to_stage, position or 0)
    lead.stage, lead.stage_entered_at, lead.position = to_stage, now, position or 0
    lead.closed_at = None if process.is_open(to_stage) else now
    target = process.stage(to_stage)
    assert target is not None
    source_def = process.stage(source)
    db.add(
        LeadInteraction(
            tenant_id=lead.tenant_id,
            lead_id=lead.id,
            user_id=principal.user_id,
            kind=InteractionKind.stage_change,
            summary=f"{source_def.label if source_def else source} → {target.label}",
            created_at=now,
        )
    )
    _plan_tasks(db, lead, process, now)
    db.flush()
    refresh_heat(db, lead, process=process, now=now)
    return lead


def move_card(db: Session, *, principal: Principal, lead_id: int, position: int) -> Lead:
    """Reorder within the card's own column."""
    lead = get_lead(db, principal=principal, lead_id=lead_id)
    _make_room(db, lead, lead.stage, position)
    lead.position = position
    db.flush()
    return lead


def _make_room(db: Session, lead: Lead, stage: str, position: int) -> None:
    db.execute(
        update(Lead)
        .where(
            Lead.agent_id.is_(None) if lead.agent_id is None else Lead.agent_id == lead.agent_id,
            Lead.tenant_id == lead.tenant_id,
            Lead.stage == stage,
            Lead.position >= position,
            Lead.id != lead.id,
        )
        .values(position=Lead.position + 1)
        .execution_options(synchronize_session=False)
    )


def _plan_tasks(db: Session, lead: Lead, process: rules.SalesProcessRules, now: datetime) -> None:
    if lead.agent_id is None:
        return  # tasks are made when the lead is assigned
    for planned in process.tasks_for(lead.stage, lead_name=lead.name, entered_at=now):
        db.add(
            Task(
                tenant_id=lead.tenant_id,
                assignee_id=lead.agent_id,
                lead_id=lead.id,
                kind=planned.kind,
                title=planned.title,
                due_at=planned.due_at,
                created_for_stage=lead.stage,
            )
        )


def record_interaction(
    db: Session, *, principal: Principal, lead_id: int, kind: InteractionKind, summary: str
) -> LeadInteraction:
    lead = get_lead(db, principal=principal, lead_id=lead_id)
    return _interaction(db, lead, principal.user_id, kind, summary)


def _interaction(
    db: Session, lead: Lead, user_id: int | None, kind: str, summary: str
) -> LeadInteraction:
    now = utcnow()
    row = LeadInteraction(
        tenant_id=lead.tenant_id,
        lead_id=lead.id,
        user_id=user_id,
        kind=kind,
        summary=summary,
        created_at=now,
    )
    db.add(row)
    if lead.first_response_at is None and user_id is not None and user_id == lead.agent_id:
        lead.first_response_at = now
    db.flush()
    refresh_heat(db, lead, now=now)
    return row


def interactions_of(db: Session, *, principal: Principal, lead_id: int) -> list[LeadInteraction]:
    lead = get_lead(db, principal=principal, lead_id=lead_id)
    return list(
        db.scalars(
            select(LeadInteraction)
            .where(LeadInteraction.lead_id == lead.id)
            .order_by(LeadInteraction.created_at.desc(), LeadInteraction.id.desc())
            .limit(200)
        )
    )


# --- heat --------------------------------------------------------------------------------------


def refresh_heat(
    db: Session,
    lead: Lead,
    *,
    process: rules.SalesProcessRules | None = None,
    now: datetime | None = None,
) -> rules.HeatScore:
    now = now or utcnow()
    process = process or sales_rules(db, lead.tenant_id)
    since = now - timedelta(days=rules.HEAT_WINDOW_DAYS)
    touches = db.scalars(
        select(LeadInteraction.created_at).where(
            LeadInteraction.lead_id == lead.id, LeadInteraction.created_at >= since
        )
    ).all()
    heat = rules.lead_heat(
        touches,
        stage_entered_at=lead.stage_entered_at,
        now=now,
        is_open=process.is_open(lead.stage),
    )
    counts = db.execute(
        select(func.count(), func.max(LeadInteraction.created_at)).where(
            LeadInteraction.lead_id == lead.id
        )
    ).one()
    lead.heat_score, lead.heat = heat.score, heat.heat
    lead.interaction_count, lead.last_interaction_at = counts[0], counts[1]
    return heat


def refresh_all_heat(db: Session, *, tenant_id: int, now: datetime | None = None) -> int:
    """The nightly pass: time in stage cools every open lead even when nobody touches it."""
    now = now or utcnow()
    process = sales_rules(db, tenant_id)
    since = now - timedelta(days=rules.HEAT_WINDOW_DAYS)
    open_stages = process.open_stages()
    leads = db.execute(
        select(Lead.id, Lead.stage, Lead.stage_entered_at).where(
            Lead.tenant_id == tenant_id, Lead.stage.in_(open_stages)
        )
    ).all()
    touches: dict[int, list[datetime]] = {}
    for lead_id, at in db.execute(
        select(LeadInteraction.lead_id, LeadInteraction.created_at).where(
            LeadInteraction.tenant_id == tenant_id, LeadInteraction.created_at >= since
        )
    ):
        touches.setdefault(lead_id, []).append(at)
    updates = []
    for lead_id, _stage, entered in leads:
        heat = rules.lead_heat(
            touches.get(lead_id, ()), stage_entered_at=entered, now=now, is_open=True
        )
        updates.append({"id": lead_id, "heat_score": heat.score, "heat": heat.heat})
    for start in range(0, len(updates), 1000):
        db.execute(update(Lead), updates[start : start + 1000])
    db.flush()
    return len(updates)


# --- messages ----------------------------------------------------------------------------------

# A captured message exists only where the deployment records messages instead of sending
# them (the demo, development); it stands for a sent one there.
DELIVERED = (MessageStatus.sent, "captured")


def send_message(
    db: Session,
    *,
    principal: Principal,
    lead_id: int,
    channel: MessageChannel,
    message_type: MessageType,
    body: str,
) -> LeadMessage:
    """Queue a WhatsApp or SMS message to a lead; the `crm.send_message` job delivers it."""
    lead = get_lead(db, principal=principal, lead_id=lead_id)
    try:
        address = channels.phone_number(lead.phone)
    except channels.DeliveryError as exc:
        raise RuleViolation(
            f"Cannot message this lead: {exc.reason.replace('user', 'lead')}"
        ) from None
    message = LeadMessage(
        tenant_id=lead.tenant_id,
        lead_id=lead.id,
        channel=channel,
        message_type=message_type,
        body=body,
        to_address=address,
        sent_by=principal.user_id,
    )
    db.add(message)
    db.flush()
    jobs.enqueue(
        db,
        "crm.send_message",
        args={"message_id": message.id},
        key=f"lead-message:{message.id}",
        tenant_id=lead.tenant_id,
    )
    _interaction(db, lead, principal.user_id, InteractionKind.message, f"{channel}: {body[:120]}")
    return message


def messages_of(db: Session, *, principal: Principal, lead_id: int) -> list[LeadMessage]:
    lead = get_lead(db, principal=principal, lead_id=lead_id)
    return list(
        db.scalars(
            select(LeadMessage)
            .where(LeadMessage.lead_id == lead.id)
            .order_by(LeadMessage.created_at.desc(), LeadMessage.id.desc())
        )
    )


# === tasks ========================================================================================


def list_tasks(
    db: Session,
    *,
    principal: Principal,
    status: list[str],
    due_before: datetime | None,
    lead_id: int | None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[tuple[Task, str | None]], int]:
    stmt = readable(select(Task), principal)
    if status:
        stmt = stmt.where(Task.status.in_(status))
    if due_before is not None:
        stmt = stmt.where(Task.due_at < due_before)
    if lead_id is not None:
        stmt = stmt.where(Task.lead_id == lead_id)
    total = count_of(db, stmt)
    rows = db.execute(
        stmt.add_columns(Lead.name)
        .outerjoin(Lead, Lead.id == Task.lead_id)
        .order_by(Task.due_at, Task.id)
        .offset(offset)
        .limit(limit)
    ).all()
    return [(task, name) for task, name in rows], total


def create_task(db: Session, *, principal: Principal, data: TaskCreate) -> Task:
    if principal.role not in (Role.admin, *PIPELINE_OWNERS):
        raise Forbidden("Only agents, brokers and admins have tasks")
    assignee = principal.user_id
    if data.lead_id is not None:
        lead = get_lead(db, principal=principal, lead_id=data.lead_id)
        assignee = lead.agent_id or principal.user_id
    task = Task(
        tenant_id=principal.tenant_id,
        assignee_id=assignee,
        lead_id=data.lead_id,
        kind=data.kind,
        title=data.title,
        due_at=data.due_at,
        status=TaskStatus.overdue if data.due_at < utcnow() else TaskStatus.pending,
    )
    db.add(task)
    db.flush()
    return task


def update_task(db: Session, *, principal: Principal, task_id: int, data: TaskUpdate) -> Task:
    task = get_readable(db, Task, task_id, principal)
    changes = data.model_dump(exclude_unset=True)
    if task.status in (TaskStatus.done, TaskStatus.cancelled) and "status" not in changes:
        raise Conflict("The task is closed; reopen it first")
    if "title" in changes and changes["title"] is not None:
        task.title = changes["title"]
    if changes.get("due_at") is not None:
        task.due_at = changes["due_at"]
    status = changes.get("status")
    if status is not None:
        task.status = status
        task.completed_at = utcnow() if status == TaskStatus.done else None
    if task.status in (TaskStatus.pending, TaskStatus.overdue):
        task.status = TaskStatus.overdue if task.due_at < utcnow() else TaskStatus.pending
    if status == TaskStatus.done and task.lead_id is not None:
        lead = db.get(Lead, task.lead_id)
        if lead is not None:
            _interaction(db, lead, principal.user_id, _kind_of(task.kind), f"done: {task.title}")
    db.flush()
    return task


def _kind_of(task_kind: str) -> str:
    return {"call": "call", "meeting": "meeting", "email": "email"}.get(task_kind, "note")


def mark_overdue(db: Session, *, now: datetime | None = None) -> int:
    """Pending tasks past due become overdue; each owner gets one notification per pass."""
    now = now or utcnow()
    due = db.execute(
        select(Task.id, Task.assignee_id, Task.title).where(
            Task.status == TaskStatus.pending, Task.due_at < now
        )
    ).all()
    if not due:
        return 0
    db.execute(
        update(Task)
        .where(Task.id.in_([row.id for row in due]))
        .values(status=TaskStatus.overdue, overdue_notified_at=now)
        .execution_options(synchronize_session=False)
    )
    by_owner: dict[int, list[str]] = {}
    for row in due:
        by_owner.setdefault(row.assignee_id, []).append(row.title)
    for owner, titles in by_owner.items():
        more = f" and {len(titles) - 3} more" if len(titles) > 3 else ""
        notify.notify(
            db,
            user_id=owner,
            type=TASK_OVERDUE.key,
            title=f"{len(titles)} task{'s' if len(titles) != 1 else ''} overdue",
            body="; ".join(titles[:3]) + more,
            link="/crm/tasks",
        )
    db.flush()
    return len(due)


# === assignment ===================================================================================


def assignment_config(
    db: Session, tenant_id: int
) -> tuple[rules.AssignmentConfig, AssignmentSettings | None]:
    row = db.get(AssignmentSettings, tenant_id)
    if row is None or not row.config:
        return rules.AssignmentConfig(), row
    return rules.AssignmentConfig.model_validate(row.config), row


def set_assignment_config(
    db: Session, *, principal: Principal, config: rules.AssignmentConfig
) -> rules.AssignmentConfig:
    agents = {
        a.id
        for a in db.scalars(
            select(User).where(
                User.tenant_id == principal.tenant_id, User.role.in_(PIPELINE_OWNERS)
            )
        )
    }
    for rule in config.rules:
        unknown = [i for i in rule.agent_ids if i not in agents]
        if unknown:
            raise RuleViolation(f"rule {rule.name!r}: {unknown} are not agents of this brokerage")
    row = db.get(AssignmentSettings, principal.tenant_id)
    if row is None:
        row = AssignmentSettings(tenant_id=principal.tenant_id)
        db.add(row)
    row.config = config.model_dump(mode="json")
    db.flush()
    return config


def agent_loads(
    db: Session, tenant_id: int, *, available_only: bool = True, now: datetime | None = None
) -> list[rules.AgentLoad]:
    """Every agent's workload inputs in two grouped queries (the assignment's hot path)."""
    now = now or utcnow()
    process = sales_rules(db, tenant_id)
    open_stages, won, lost = (
        process.open_stages(),
        process.closed(rules.StageKind.won),
        process.closed(rules.StageKind.lost),
    )
    stmt = select(User.id, User.full_name).where(
        User.tenant_id == tenant_id, User.role == Role.agent, User.is_active.is_(True)
    )
    if available_only:
        paused = select(AgentProfile.user_id).where(AgentProfile.paused.is_(True))
        stmt = stmt.where(User.id.not_in(paused))
    agents = db.execute(stmt).all()
    if not agents:
        return []
    ids = [a.id for a in agents]
    # Grouped by (agent, stage) and folded here: an index-only scan of ix_leads_agent_stage,
    # cheaper than three FILTER counts (docs/performance.md, "CRM").
    kind_of = (
        dict.fromkeys(open_stages, "active")
        | dict.fromkeys(won, "won")
        | dict.fromkeys(lost, "lost")
    )
    leads: dict[int, dict[str, int]] = {}
    for agent_id, stage, n in db.execute(
        select(Lead.agent_id, Lead.stage, func.count())
        .where(Lead.agent_id.in_(ids))
        .group_by(Lead.agent_id, Lead.stage)
    ):
        kind = kind_of.get(stage)
        if kind is not None and agent_id is not None:
            counts = leads.setdefault(agent_id, {})
            counts[kind] = counts.get(kind, 0) + n
    tasks = {
        row.assignee_id: row
        for row in db.execute(
            select(
                Task.assignee_id,
                func.count()
                .filter(and_(Task.status == TaskStatus.pending, Task.due_at >= now))
                .label("pending"),
                func.count()
                .filter(or_(Task.status == TaskStatus.overdue, Task.due_at < now))
                .label("overdue"),
            )
            .where(
                Task.assignee_id.in_(ids), Task.status.in_((TaskStatus.pending, TaskStatus.overdue))
            )
            .group_by(Task.assignee_id)
        )
    }
    loads = []
    for agent in agents:
        counts, task_row = leads.get(agent.id, {}), tasks.get(agent.id)
        loads.append(
            rules.AgentLoad(
                agent_id=agent.id,
                name=agent.full_name,
                active_leads=counts.get("active", 0),
                won=counts.get("won", 0),
                lost=counts.get("lost", 0),
                pending_tasks=task_row.pending if task_row else 0,
                overdue_tasks=task_row.overdue if task_row else 0,
            )
        )
    return loads


def decide_assignment(db: Session, lead: Lead) -> rules.AssignmentDecision:
    config, row = assignment_config(db, lead.tenant_id)
    return rules.decide_assignment(
        rules.LeadTraits(source=lead.source, budget=lead.budget, zip_code=lead.zip_code),
        agent_loads(db, lead.tenant_id),
        config,
        last_round_robin_agent_id=row.last_round_robin_agent_id if row else None,
    )


def assign_lead(
    db: Session, *, lead: Lead, decided_by: int | None, origin: str = "api"
) -> rules.AssignmentDecision:
    """Route a lead to the best available agent and record why."""
    decision = decide_assignment(db, lead)
    if decision.agent_id is None:
        return decision
    if decision.strategy == AssignmentStrategy.round_robin:
        _, row = assignment_config(db, lead.tenant_id)
        if row is None:
            row = AssignmentSettings(tenant_id=lead.tenant_id)
            db.add(row)
        row.last_round_robin_agent_id = decision.agent_id
    _give(db, lead, decision.agent_id)
    _record_assignment(
        db,
        lead,
        decision.agent_id,
        str(decision.strategy),
        decision.reason,
        decision.candidates,
        decided_by,
    )
    notify.notify(
        db,
        user_id=decision.agent_id,
        type=LEAD_ASSIGNED.key,
        title=f"New lead: {lead.name}",
        body=f"Source: {lead.source.replace('_', ' ')} ({origin}).",
        link=f"/crm/leads/{lead.id}",
    )
    return decision


def _give(db: Session, lead: Lead, agent_id: int) -> None:
    lead.agent_id, lead.assigned_at, lead.first_response_at = agent_id, utcnow(), None
    db.execute(
        update(Task)
        .where(Task.lead_id == lead.id, Task.status.in_((TaskStatus.pending, TaskStatus.overdue)))
        .values(assignee_id=agent_id)
        .execution_options(synchronize_session=False)
    )
    db.flush()
    has_tasks = db.scalar(select(exists().where(Task.lead_id == lead.id)))
    if not has_tasks:
        _plan_tasks(db, lead, sales_rules(db, lead.tenant_id), utcnow())


def _record_assignment(
    db: Session,
    lead: Lead,
    agent_id: int,
    strategy: str,
    reason: str,
    candidates: list[dict[str, Any]],
    decided_by: int | None,
) -> None:
    db.add(
        LeadAssignment(
            tenant_id=lead.tenant_id,
            lead_id=lead.id,
            agent_id=agent_id,
            strategy=strategy,
            reason=reason[:500],
            candidates=candidates,
            decided_by=decided_by,
        )
    )
    db.flush()


def reassign_lead(db: Session, *, principal: Principal, lead_id: int, agent_id: int | None) -> Lead:
    """Admins hand a lead to a named agent, or let the strategy chain choose again."""
    if principal.role != Role.admin:
        raise Forbidden("Only admins reassign leads")
    lead = get_lead(db, principal=principal, lead_id=lead_id)
    if agent_id is None:
        decision = assign_lead(db, lead=lead, decided_by=principal.user_id, origin="reassigned")
        if decision.agent_id is None:
            raise Conflict(f"No agent could take the lead: {decision.reason}")
        return lead
    agent = _pipeline_owner(db, principal, agent_id)
    _give(db, lead, agent.id)
    _record_assignment(
        db, lead, agent.id, "manual", f"assigned by {principal.full_name}", [], principal.user_id
    )
    return lead


def assignment_log(
    db: Session, *, principal: Principal, lead_id: int | None, offset: int, limit: int
) -> tuple[list[tuple[LeadAssignment, str]], int]:
    if principal.role != Role.admin:
        raise Forbidden("Only admins read the assignment log")
    stmt = select(LeadAssignment, User.full_name).join(User, User.id == LeadAssignment.agent_id)
    stmt = stmt.where(LeadAssignment.tenant_id == principal.tenant_id)
    if lead_id is not None:
        stmt = stmt.where(LeadAssignment.lead_id == lead_id)
    total = count_of(db, stmt)
    rows = db.execute(
        stmt.order_by(LeadAssignment.created_at.desc(), LeadAssignment.id.desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return [(row, name) for row, name in rows], total


def set_paused(
    db: Session, *, principal: Principal, agent_id: int, paused: bool, reason: str
) -> AgentProfile:
    """Admins pause an agent (vacation) and agents pause themselves; paused agents get no
    new leads."""
    if principal.role != Role.admin and principal.user_id != agent_id:
        raise Forbidden("Only admins pause other agents")
    agent = _pipeline_owner(db, principal, agent_id)
    profile = db.get(AgentProfile, agent.id)
    if profile is None:
        profile = AgentProfile(user_id=agent.id, tenant_id=agent.tenant_id)
        db.add(profile)
    profile.paused, profile.paused_reason = paused, reason if paused else ""
    db.flush()
    return profile


@dataclass(frozen=True)
class AgentPerformance:
    agent_id: int
    name: str
    paused: bool
    leads: int
    open_leads: int
    won: int
    lost: int
    conversion_rate: float | None  # won / closed
    median_first_response_hours: float | None
    responded: int
    workload: int
    score: float


def agent_performance(db: Session, *, principal: Principal) -> list[AgentPerformance]:
    """Conversion and first-response times per agent, for admins (seed 003)."""
    if principal.role != Role.admin:
        raise Forbidden("Only admins read agent performance")
    loads = {a.agent_id: a for a in agent_loads(db, principal.tenant_id, available_only=False)}
    paused = set(
        db.scalars(
            select(AgentProfile.user_id).where(
                AgentProfile.tenant_id == principal.tenant_id, AgentProfile.paused.is_(True)
            )
        )
    )
    totals = dict(
        db.execute(
            select(Lead.agent_id, func.count())
            .where(Lead.tenant_id == principal.tenant_id, Lead.agent_id.is_not(None))
            .group_by(Lead.agent_id)
        ).all()
    )
    responses: dict[int, list[float]] = {}
    for agent_id, assigned, first in db.execute(
        select(Lead.agent_id, Lead.assigned_at, Lead.first_response_at).where(
            Lead.tenant_id == principal.tenant_id,
            Lead.first_response_at.is_not(None),
            Lead.assigned_at.is_not(None),
        )
    ):
        if agent_id is not None and assigned is not None and first is not None:
            hours = max((first - assigned).total_seconds() / 3600, 0.0)
            responses.setdefault(agent_id, []).append(hours)
    out = []
    for agent_id, load in loads.items():
        closed = load.won + load.lost
        times = responses.get(agent_id, [])
        out.append(
            AgentPerformance(
                agent_id=agent_id,
                name=load.name,
                paused=agent_id in paused,
                leads=totals.get(agent_id, 0),
                open_leads=load.active_leads,
                won=load.won,
                lost=load.lost,
                conversion_rate=round(load.won / closed, 4) if closed else None,
                median_first_response_hours=round(statistics.median(times), 2) if times else None,
                responded=len(times),
                workload=load.workload,
                score=round(load.adjusted, 2),
            )
        )
    return sorted(out, key=lambda p: p.name)


# === Kanban board ================================================================================


@dataclass(frozen=True)
class BoardColumn:
    stage: rules.StageDef
    leads: list[Lead]
    total: int


CLOSED_COLUMN_LIMIT = 50


def board(db: Session, *, principal: Principal, agent_id: int | None = None) -> list[BoardColumn]:
    """A pipeline owner's leads by stage, in card order. Closed columns show the latest 50."""
    owner = principal.user_id if agent_id is None else agent_id
    if owner != principal.user_id and principal.role != Role.admin:
        raise Forbidden("You can open only your own board")
    process = sales_rules(db, principal.tenant_id)
    base = readable(select(Lead), principal).where(Lead.agent_id == owner)
    rows = db.execute(
        readable(select(Lead.stage, func.count()), principal, Lead)
        .where(Lead.agent_id == owner)
        .group_by(Lead.stage)
    )
    counts: dict[str, int] = {row[0]: row[1] for row in rows}
    open_leads = db.scalars(
        base.where(Lead.stage.in_(process.open_stages())).order_by(
            Lead.stage, Lead.position, Lead.stage_entered_at.desc(), Lead.id
        )
    ).all()
    by_stage: dict[str, list[Lead]] = {}
    for lead in open_leads:
        by_stage.setdefault(lead.stage, []).append(lead)
    for stage in process.stages:
        if stage.kind != rules.StageKind.open:
            by_stage[stage.name] = list(
                db.scalars(
                    base.where(Lead.stage == stage.name)
                    .order_by(Lead.closed_at.desc(), Lead.id.desc())
                    .limit(CLOSED_COLUMN_LIMIT)
                )
            )
    return [
        BoardColumn(stage=s, leads=by_stage.get(s.name, []), total=counts.get(s.name, 0))
        for s in process.stages
    ]


# === clients and appointments ===================================================================


def list_clients(
    db: Session,
    *,
    principal: Principal,
    status: list[str],
    agent_id: int | None,
    q: str | None,
    sort: str,
    offset: int,
    limit: int,
) -> tuple[list[Client], int]:
    stmt = readable(select(Client), principal)
    if status:
        stmt = stmt.where(Client.status.in_(status))
    if agent_id is not None:
        stmt = stmt.where(Client.agent_id == agent_id)
    if q:
        pattern = _like(q)
        stmt = stmt.where(
            or_(
                func.lower(Client.name).like(pattern, escape="\\"),
                func.lower(Client.email).like(pattern, escape="\\"),
            )
        )
    sorts = {"name": Client.name, "created_at": Client.created_at, "status": Client.status}
    rows = db.scalars(stmt.order_by(*_order(sort, sorts, Client.id)).offset(offset).limit(limit))
    return list(rows), count_of(db, stmt)


def get_client(db: Session, *, principal: Principal, client_id: int) -> Client:
    return get_readable(db, Client, client_id, principal)


def _own_or_admin(principal: Principal, owner_id: int, what: str) -> None:
    if principal.role != Role.admin and principal.user_id != owner_id:
        raise Forbidden(f"Only the {what}'s agent or an admin can change it")


def create_client(db: Session, *, principal: Principal, data: ClientCreate) -> Client:
    if principal.role not in (Role.admin, *PIPELINE_OWNERS):
        raise Forbidden("Only agents, brokers and admins add clients")
    owner = principal.user_id
    if data.agent_id is not None and data.agent_id != principal.user_id:
        if principal.role != Role.admin:
            raise Forbidden("Agents and brokers add clients to their own book only")
        owner = _pipeline_owner(db, principal, data.agent_id).id
    elif principal.role == Role.admin:
        raise RuleViolation("agent_id: name the agent whose client this is")
    if data.lead_id is not None:
        get_lead(db, principal=principal, lead_id=data.lead_id)
    client = Client(
        tenant_id=principal.tenant_id,
        agent_id=owner,
        name=data.name,
        email=str(data.email) if data.email else None,
        phone=data.phone,
        source=data.source,
        status=data.status,
        lead_id=data.lead_id,
        notes=data.notes,
    )
    db.add(client)
    db.flush()
    hooks.emit(db, "client.created", client=client)
    return client


def update_client(
    db: Session, *, principal: Principal, client_id: int, data: ClientUpdate
) -> Client:
    client = get_client(db, principal=principal, client_id=client_id)
    _own_or_admin(principal, client.agent_id, "client")
    for name, value in data.model_dump(exclude_unset=True).items():
        if value is None and name in ("name", "source", "status", "notes"):
            raise RuleViolation(f"{name}: may not be empty")
        setattr(client, name, str(value) if name == "email" and value is not None else value)
    db.flush()
    return client


def list_appointments(
    db: Session,
    *,
    principal: Principal,
    start: datetime | None,
    end: datetime | None,
    status: list[str],
    offset: int,
    limit: int,
) -> tuple[list[Appointment], int]:
    stmt = readable(select(Appointment), principal)
    if start is not None:
        stmt = stmt.where(Appointment.end_time >= start)
    if end is not None:
        stmt = stmt.where(Appointment.start_time < end)
    if status:
        stmt = stmt.where(Appointment.status.in_(status))
    rows = db.scalars(
        stmt.order_by(Appointment.start_time, Appointment.id).offset(offset).limit(limit)
    )
    return list(rows), count_of(db, stmt)


def get_appointment(db: Session, *, principal: Principal, appointment_id: int) -> Appointment:
    return get_readable(db, Appointment, appointment_id, principal)


def create_appointment(
    db: Session, *, principal: Principal, data: AppointmentCreate
) -> Appointment:
    if principal.role not in PIPELINE_OWNERS:
        raise Forbidden("Appointments belong to agents and brokers")
    if data.lead_id is not None:
        get_lead(db, principal=principal, lead_id=data.lead_id)
    if data.client_id is not None:
        client = get_client(db, principal=principal, client_id=data.client_id)
        _own_or_admin(principal, client.agent_id, "client")
    row = Appointment(
        tenant_id=principal.tenant_id,
        agent_id=principal.user_id,
        lead_id=data.lead_id,
        client_id=data.client_id,
        title=data.title,
        start_time=data.start_time,
        end_time=data.end_time,
        location=data.location,
        is_private=data.is_private,
    )
    db.add(row)
    db.flush()
    if data.lead_id is not None:
        lead = db.get(Lead, data.lead_id)
        assert lead is not None
        _interaction(db, lead, principal.user_id, InteractionKind.meeting, f"booked: {data.title}")
    return row


def update_appointment(
    db: Session, *, principal: Principal, appointment_id: int, data: AppointmentUpdate
) -> Appointment:
    """Reschedule, or record the outcome (completed, no_show, cancelled)."""
    row = get_appointment(db, principal=principal, appointment_id=appointment_id)
    changes = data.model_dump(exclude_unset=True)
    for name, value in changes.items():
        if value is None:
            raise RuleViolation(f"{name}: may not be empty")
        setattr(row, name, value)
    if row.end_time <= row.start_time:
        raise RuleViolation("end_time must be after start_time")
    if changes.get("status") in ("completed", "no_show") and row.start_time > utcnow():
        raise RuleViolation("An appointment that has not started cannot have an outcome yet")
    db.flush()
    return row


# === CSV import and export =======================================================================

LEAD_COLUMNS = ("name", "email", "phone", "source", "budget", "zip_code", "notes")
MAX_IMPORT_ROWS = 5000


@dataclass
class ImportRow:
    line: int
    values: dict[str, str]
    errors: list[str]
    data: LeadCreate | None = None


@dataclass
class ImportPreview:
    rows: list[ImportRow]
    columns: list[str]

    @property
    def valid(self) -> list[ImportRow]:
        return [r for r in self.rows if not r.errors]

    @property
    def invalid(self) -> list[ImportRow]:
        return [r for r in self.rows if r.errors]


def parse_leads_csv(text: str) -> ImportPreview:
    """Check every row of a lead CSV (header: name, email, phone, source, budget, zip_code,
    notes; only `name` is required) and say what is wrong with each."""
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    if "name" not in header:
        raise RuleViolation(
            "The CSV needs a header row with a `name` column; "
            f"columns are {', '.join(LEAD_COLUMNS)}"
        )
    unknown = [h for h in header if h not in LEAD_COLUMNS]
    if unknown:
        raise RuleViolation(f"Unknown column(s) {unknown}; allowed: {', '.join(LEAD_COLUMNS)}")
    reader.fieldnames = header
    rows: list[ImportRow] = []
    for number, raw in enumerate(reader, start=2):
        if len(rows) >= MAX_IMPORT_ROWS:
            raise RuleViolation(f"At most {MAX_IMPORT_ROWS} rows per import")
        if None in raw:
            rows.append(ImportRow(number, {}, ["more fields than the header has columns"]))
            continue
        values = {k: (v or "").strip() for k, v in raw.items()}
        if not any(values.values()):
            continue
        payload: dict[str, Any] = {k: v for k, v in values.items() if v}
        errors: list[str] = []
        if "budget" in payload:
            try:
                payload["budget"] = Decimal(payload["budget"].replace(",", "").lstrip("$"))
            except InvalidOperation:
                errors.append(f"budget: {values['budget']!r} is not a number")
                payload.pop("budget")
        if "source" in payload:
            payload["source"] = payload["source"].lower().replace(" ", "_")
        try:
            data = LeadCreate.model_validate(payload)
        except ValidationError as exc:
            errors.extend(
                f"{'.'.join(str(p) for p in e['loc']) or 'row'}: {e['msg']}" for e in exc.errors()
            )
            data = None
        rows.append(ImportRow(number, values, errors, None if errors else data))
    return ImportPreview(rows=rows, columns=header)


@dataclass(frozen=True)
class ImportResult:
    imported: int
    skipped: int
    lead_ids: list[int]


def import_leads(db: Session, *, principal: Principal, text: str, only_valid: bool) -> ImportResult:
    """Import a checked CSV. While any row has errors nothing is imported, unless the user
    asks to import only the valid rows."""
    preview = parse_leads_csv(text)
    if not preview.rows:
        raise RuleViolation("The CSV has no rows")
    if preview.invalid and not only_valid:
        raise RuleViolation(
            f"{len(preview.invalid)} row(s) have errors; fix them or import only the valid rows"
        )
    ids = []
    for row in preview.valid:
        assert row.data is not None
        ids.append(create_lead(db, principal=principal, data=row.data, origin="csv import").id)
    return ImportResult(imported=len(ids), skipped=len(preview.invalid), lead_ids=ids)


def export_leads_csv(
    db: Session, *, principal: Principal, filters: LeadFilter, sort: str = "-created_at"
) -> Iterable[str]:
    """The leads the caller may read, as CSV, streamed in pages."""
    columns = (
        "id",
        "name",
        "email",
        "phone",
        "source",
        "stage",
        "heat",
        "heat_score",
        "budget",
        "zip_code",
        "agent_id",
        "created_at",
    )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    yield out.getvalue()
    stmt = lead_query(principal, filters).order_by(*_order(sort, LEAD_SORTS, Lead.id))
    offset = 0
    while True:
        batch = db.scalars(stmt.offset(offset).limit(1000)).all()
        if not batch:
            return
        out.seek(0)
        out.truncate()
        for lead in batch:
            writer.writerow([_csv_cell(getattr(lead, c)) for c in columns])
        yield out.getvalue()
        offset += len(batch)


def _csv_cell(value: Any) -> str:
    text = "" if value is None else value.isoformat() if isinstance(value, datetime) else str(value)
    # A cell a spreadsheet would run as a formula is quoted as text.
    return "'" + text if text[:1] in ("=", "+", "-", "@") and not _number(text) else text


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# === the agent's home ===========================================================================


@dataclass(frozen=True)
class AgentHome:
    stages: list[tuple[rules.StageDef, int]]
    tasks_due: list[tuple[Task, str | None]]
    overdue: int
    appointments: list[Appointment]
    hot_leads: list[Lead]


def agent_home(db: Session, *, principal: Principal, now: datetime | None = None) -> AgentHome:
    now = now or utcnow()
    process = sales_rules(db, principal.tenant_id)
    counts = dict(
        db.execute(
            select(Lead.stage, func.count())
            .where(Lead.agent_id == principal.user_id, Lead.tenant_id == principal.tenant_id)
            .group_by(Lead.stage)
        ).all()
    )
    tenant = db.get(Tenant, principal.tenant_id)
    local = now.astimezone(tenant.zone if tenant else UTC)
    end_of_day = local.replace(hour=23, minute=59, second=59, microsecond=999999)
    tasks, _ = list_tasks(
        db,
        principal=principal,
        status=[TaskStatus.pending, TaskStatus.overdue],
        due_before=end_of_day,
        lead_id=None,
        limit=20,
    )
    overdue = (
        db.scalar(
            select(func.count()).where(
                Task.assignee_id == principal.user_id, Task.status == TaskStatus.overdue
            )
        )
        or 0
    )
    appointments, _ = list_appointments(
        db,
        principal=principal,
        start=now,
        end=now + timedelta(days=7),
        status=["scheduled"],
        offset=0,
        limit=5,
    )
    hot = db.scalars(
        select(Lead)
        .where(Lead.agent_id == principal.user_id, Lead.stage.in_(process.open_stages()))
        .order_by(Lead.heat_score.desc(), Lead.id)
        .limit(5)
    ).all()
    return AgentHome(
        stages=[(s, counts.get(s.name, 0)) for s in process.stages],
        tasks_due=tasks,
        overdue=overdue,
        appointments=appointments,
        hot_leads=list(hot),
    )


# === metrics for the broker dashboard (seed 004 level 2) =======================================


@dataclass(frozen=True)
class PipelineMetrics:
    """Counts and rates of one agent's leads and appointments: never a name or a time."""

    total_leads: int = 0
    new_leads_30d: int = 0
    converted_leads: int = 0
    appointments: int = 0
    completed: int = 0
    no_shows: int = 0
    last_lead_at: datetime | None = None
    last_appointment_at: datetime | None = None

    @property
    def conversion_rate(self) -> float | None:
        return round(100 * self.converted_leads / self.total_leads, 2) if self.total_leads else None

    @property
    def show_rate(self) -> float | None:
        shown = self.completed + self.no_shows
        return round(100 * self.completed / shown, 1) if shown else None


def pipeline_metrics(
    db: Session, *, principal: Principal, agent_ids: list[int], start: datetime, end: datetime
) -> dict[int, PipelineMetrics]:
    """Per agent: leads (not private) created before `end`, new in the 30 days before `end`,
    converted (in a won stage); appointments starting in [start, end) that were not cancelled,
    completed and no-shows. One grouped query per table, so nothing is counted twice, and
    every agent in scope is present (zeros when they have nothing).

    Leads are not counted per request: their totals per stage come from `lead_stage_counts`
    (crm.tallies), less the leads created at or after `end` (none when the window ends today);
    only the last 30 days are counted, through the partial index on (agent_id, created_at)."""
    scope = access.metrics_scope(db, principal, agent_ids)
    if not scope:
        return {}
    won = set(sales_rules(db, principal.tenant_id).closed(rules.StageKind.won))
    total: Counter[int] = Counter()
    converted: Counter[int] = Counter()
    public = (id_in(db, Lead.agent_id, scope), Lead.is_private.is_(False))
    kept = select(LeadStageCount.agent_id, LeadStageCount.stage, LeadStageCount.leads).where(
        id_in(db, LeadStageCount.agent_id, scope)
    )
    later = (  # in the kept counts, but after the window
        select(Lead.agent_id, Lead.stage, -func.count())
        .where(*public, Lead.created_at >= end)
        .group_by(Lead.agent_id, Lead.stage)
    )
    for statement in (kept, later):
        for agent_id, stage, n in db.execute(statement):
            assert agent_id is not None  # in scope
            total[agent_id] += n
            if stage in won:
                converted[agent_id] += n
    recent: dict[int | None, int] = dict(
        db.execute(
            select(Lead.agent_id, func.count())
            .where(*public, Lead.created_at >= end - timedelta(days=30), Lead.created_at < end)
            .group_by(Lead.agent_id)
        ).all()  # a list: dict() would take the Result itself for a mapping (it has keys())
    )
    # One index probe per agent (max over the partial index), not a scan of their leads.
    latest = (
        select(func.max(Lead.created_at))
        .where(Lead.agent_id == User.id, Lead.is_private.is_(False), Lead.created_at < end)
        .scalar_subquery()
    )
    last_lead: dict[int, datetime | None] = dict(
        db.execute(select(User.id, latest).where(id_in(db, User.id, scope))).all()
    )
    visits = {
        row.agent_id: row
        for row in db.execute(
            select(
                Appointment.agent_id,
                func.count().filter(Appointment.status != "cancelled").label("total"),
                func.count().filter(Appointment.status == "completed").label("completed"),
                func.count().filter(Appointment.status == "no_show").label("no_shows"),
                func.max(Appointment.created_at).label("last"),
            )
            .where(
                id_in(db, Appointment.agent_id, scope),
                Appointment.start_time >= start,
                Appointment.start_time < end,
            )
            .group_by(Appointment.agent_id)
        )
    }
    out = {}
    for agent_id in scope:
        visit = visits.get(agent_id)
        out[agent_id] = PipelineMetrics(
            total_leads=total[agent_id],
            new_leads_30d=recent.get(agent_id, 0),
            converted_leads=converted[agent_id],
            appointments=visit.total if visit else 0,
            completed=visit.completed if visit else 0,
            no_shows=visit.no_shows if visit else 0,
            last_lead_at=last_lead.get(agent_id),
            last_appointment_at=visit.last if visit else None,
        )
    return out


@dataclass(frozen=True)
class BookMetrics:
    active_clients: int = 0
    active_listings: int = 0


def book_metrics(
    db: Session, *, principal: Principal, agent_ids: list[int]
) -> dict[int, BookMetrics]:
    """Active clients and active listings per agent (level 1 rows, counted through the
    visibility policy)."""
    clients: dict[int, int] = {
        row[0]: row[1]
        for row in db.execute(
            readable(select(Client.agent_id, func.count()), principal, Client)
            .where(id_in(db, Client.agent_id, agent_ids), Client.status == "active")
            .group_by(Client.agent_id)
        )
    }
    listings: dict[int, int] = {
        row[0]: row[1]
        for row in db.execute(
            readable(select(Property.listing_agent_id, func.count()), principal, Property)
            .where(
                id_in(db, Property.listing_agent_id, agent_ids),
                Property.status == PropertyStatus.active,
            )
            .group_by(Property.listing_agent_id)
        )
    }
    return {
        a: BookMetrics(active_clients=clients.get(a, 0), active_listings=listings.get(a, 0))
        for a in agent_ids
    }
