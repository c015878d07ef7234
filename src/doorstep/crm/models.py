"""Tables of seed 003 (properties, leads and the sales process, tasks, assignment) and the CRM
data seed 004 relies on (clients, appointments, `is_private` leads, listings)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
    or_,
    select,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql import ColumnElement

from doorstep.platform.access import register_policy
from doorstep.platform.audit import Audited
from doorstep.platform.auth import Principal, Role, User
from doorstep.platform.db import Base, JSONType, TenantMixin, TimestampMixin, utcnow

MONEY = Numeric(14, 2)


class PropertyType(StrEnum):
    residential = "residential"
    commercial = "commercial"
    land = "land"


class PropertyStatus(StrEnum):
    active = "active"
    deposit_taken = "deposit_taken"
    sold = "sold"
    withdrawn = "withdrawn"


class LeadSource(StrEnum):
    zillow_paid = "zillow_paid"
    referral = "referral"
    networking = "networking"
    website = "website"
    open_house = "open_house"
    social_media = "social_media"
    sign_call = "sign_call"
    other = "other"


class Heat(StrEnum):
    hot = "hot"
    warm = "warm"
    cold = "cold"


class TaskKind(StrEnum):
    call = "call"
    meeting = "meeting"
    email = "email"
    follow_up = "follow_up"


class TaskStatus(StrEnum):
    pending = "pending"
    overdue = "overdue"
    done = "done"
    cancelled = "cancelled"


class MessageChannel(StrEnum):
    whatsapp = "whatsapp"
    sms = "sms"


class MessageType(StrEnum):
    introduction = "introduction"
    follow_up = "follow_up"
    offer_sent = "offer_sent"
    appointment_reminder = "appointment_reminder"
    general = "general"


class MessageStatus(StrEnum):
    queued = "queued"
    sent = "sent"
    failed = "failed"


class InteractionKind(StrEnum):
    call = "call"
    email = "email"
    meeting = "meeting"
    note = "note"
    message = "message"
    stage_change = "stage_change"


class ClientStatus(StrEnum):
    active = "active"
    inactive = "inactive"


class AppointmentStatus(StrEnum):
    scheduled = "scheduled"
    completed = "completed"
    no_show = "no_show"
    cancelled = "cancelled"


class AssignmentStrategy(StrEnum):
    workload = "workload"
    round_robin = "round_robin"
    rules = "rules"


# --- properties (seed 004's listings) ------------------------------------------------------------


class Property(Audited, TenantMixin, TimestampMixin, Base):
    __tablename__ = "properties"
    __table_args__ = (
        Index("ix_properties_tenant_status_price", "tenant_id", "status", "price"),
        Index("ix_properties_agent_status", "listing_agent_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    listing_agent_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    property_type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=PropertyStatus.active)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    address: Mapped[str] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(2))
    zip_code: Mapped[str] = mapped_column(String(10), index=True)
    price: Mapped[Decimal] = mapped_column(MONEY)
    # The type's own fields, validated by rules.attributes_for (bedrooms, zoning, acreage, ...).
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Copied out of `attributes` so that the table filters can use an index.
    bedrooms: Mapped[int | None] = mapped_column(Integer, default=None)
    bathrooms: Mapped[float | None] = mapped_column(Float, default=None)
    area_sqft: Mapped[int | None] = mapped_column(Integer, default=None)
    features: Mapped[list[str]] = mapped_column(JSONType, default=list)
    status_reason: Mapped[str] = mapped_column(String(500), default="")
    status_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    cover_image_id: Mapped[int | None] = mapped_column(Integer, default=None)


class PropertyFeature(TenantMixin, Base):
    """One feature tag of a property ("pool", "garage"): what the features filter matches."""

    __tablename__ = "property_features"
    __table_args__ = (UniqueConstraint("property_id", "feature"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    property_id: Mapped[int] = mapped_column(ForeignKey("properties.id", ondelete="CASCADE"))
    feature: Mapped[str] = mapped_column(String(40), index=True)


class PropertyImage(TenantMixin, Base):
    __tablename__ = "property_images"
    __table_args__ = (Index("ix_property_images_property_position", "property_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    property_id: Mapped[int] = mapped_column(ForeignKey("properties.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(default=0)
    storage_key: Mapped[str] = mapped_column(String(200))
    thumbnail_key: Mapped[str] = mapped_column(String(200))
    original_name: Mapped[str] = mapped_column(String(200), default="")
    content_type: Mapped[str] = mapped_column(String(40), default="image/jpeg")
    width: Mapped[int]
    height: Mapped[int]
    size_bytes: Mapped[int]
    uploaded_by: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- the sales process -----------------------------------------------------------------------


class SalesProcess(Audited, Base):
    """A tenant's stage machine as data (rules.SalesProcessDefinition); no row: the default."""

    __tablename__ = "sales_processes"

    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    definition: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Lead(Audited, TenantMixin, TimestampMixin, Base):
    __tablename__ = "leads"
    __table_args__ = (
        Index("ix_leads_agent_stage", "agent_id", "stage"),
        Index("ix_leads_tenant_created", "tenant_id", "created_at"),
        # The leads table's stage/heat filters and heat sort (migration 0007).
        Index("ix_leads_tenant_stage_heat_score", "tenant_id", "stage", "heat", "heat_score"),
    )
    # Heat is recomputed on every interaction and nightly; that is bookkeeping, not an edit.
    __audit_ignore__ = frozenset(
        {"updated_at", "heat_score", "heat", "last_interaction_at", "interaction_count"}
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The owner agent (a broker owns their own leads too); None while in the unassigned pool.
    # active_history: the old agent, privacy and stage are loaded before a change, so that
    # crm.tallies can move the lead between its counts (lead_stage_counts).
    agent_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None, active_history=True
    )
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254), default=None)
    phone: Mapped[str | None] = mapped_column(String(32), default=None)
    source: Mapped[str] = mapped_column(String(24), default=LeadSource.website)
    # Seed 004: a private lead is its owner's alone; a broker's own leads are private.
    is_private: Mapped[bool] = mapped_column(Boolean, default=False, active_history=True)
    stage: Mapped[str] = mapped_column(String(40), default="lead", active_history=True)
    stage_entered_at: Mapped[datetime] = mapped_column(default=utcnow)
    position: Mapped[int] = mapped_column(default=0)  # order within its Kanban column
    budget: Mapped[Decimal | None] = mapped_column(MONEY, default=None)
    zip_code: Mapped[str | None] = mapped_column(String(10), default=None)
    property_id: Mapped[int | None] = mapped_column(
        ForeignKey("properties.id", ondelete="SET NULL"), default=None
    )
    heat_score: Mapped[float] = mapped_column(Float, default=0.0)
    heat: Mapped[str] = mapped_column(String(8), default=Heat.cold)
    interaction_count: Mapped[int] = mapped_column(default=0)
    last_interaction_at: Mapped[datetime | None] = mapped_column(default=None)
    assigned_at: Mapped[datetime | None] = mapped_column(default=None)
    first_response_at: Mapped[datetime | None] = mapped_column(default=None)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    notes: Mapped[str] = mapped_column(Text, default="")


class LeadStageCount(TenantMixin, Base):
    """How many non-private leads an agent has in a stage, kept by crm.tallies in the
    transaction of every lead write (the broker dashboard reads these instead of counting)."""

    __tablename__ = "lead_stage_counts"

    agent_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    stage: Mapped[str] = mapped_column(String(40), primary_key=True)
    leads: Mapped[int] = mapped_column(default=0)


class LeadInteraction(TenantMixin, Base):
    """A touch point with a lead: what the heat formula counts."""

    __tablename__ = "lead_interactions"
    __table_args__ = (Index("ix_lead_interactions_lead_at", "lead_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(Integer, default=None)
    kind: Mapped[str] = mapped_column(String(16))
    summary: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LeadMessage(TenantMixin, Base):
    """A WhatsApp or SMS message to a lead, with its type and delivery status (seed 003's
    `WhatsAppMessage`; `offer_sent` over WhatsApp is the Offer Sent prerequisite)."""

    __tablename__ = "lead_messages"
    __table_args__ = (Index("ix_lead_messages_lead_type", "lead_id", "message_type"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(12))
    message_type: Mapped[str] = mapped_column(String(24))
    body: Mapped[str] = mapped_column(Text)
    to_address: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(12), default=MessageStatus.queued)
    provider_id: Mapped[str | None] = mapped_column(String(100), default=None)
    error: Mapped[str | None] = mapped_column(String(500), default=None)
    sent_by: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)


class Task(TenantMixin, Base):
    __tablename__ = "crm_tasks"
    __table_args__ = (
        Index("ix_crm_tasks_assignee_status_due", "assignee_id", "status", "due_at"),
        Index("ix_crm_tasks_lead", "lead_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    assignee_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    lead_id: Mapped[int | None] = mapped_column(
        ForeignKey("leads.id", ondelete="CASCADE"), default=None
    )
    kind: Mapped[str] = mapped_column(String(16), default=TaskKind.follow_up)
    title: Mapped[str] = mapped_column(String(200))
    due_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(12), default=TaskStatus.pending)
    # The stage whose template created it; None for a task made by hand.
    created_for_stage: Mapped[str | None] = mapped_column(String(40), default=None)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
    overdue_notified_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- clients and appointments (seed 004) ------------------------------------------------------


class Client(Audited, TenantMixin, TimestampMixin, Base):
    __tablename__ = "clients"
    __table_args__ = (Index("ix_clients_agent_status", "agent_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254), default=None)
    phone: Mapped[str | None] = mapped_column(String(32), default=None)
    source: Mapped[str] = mapped_column(String(24), default=LeadSource.referral)
    status: Mapped[str] = mapped_column(String(12), default=ClientStatus.active)
    lead_id: Mapped[int | None] = mapped_column(
        ForeignKey("leads.id", ondelete="SET NULL"), default=None
    )
    # The client's own login to the portal, when they have one.
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    notes: Mapped[str] = mapped_column(Text, default="")


class Appointment(Audited, TenantMixin, TimestampMixin, Base):
    __tablename__ = "appointments"
    __table_args__ = (Index("ix_appointments_agent_start", "agent_id", "start_time"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    lead_id: Mapped[int | None] = mapped_column(
        ForeignKey("leads.id", ondelete="SET NULL"), default=None
    )
    client_id: Mapped[int | None] = mapped_column(
        ForeignKey("clients.id", ondelete="SET NULL"), default=None
    )
    title: Mapped[str] = mapped_column(String(200))
    start_time: Mapped[datetime]
    end_time: Mapped[datetime]
    location: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(12), default=AppointmentStatus.scheduled)
    is_private: Mapped[bool] = mapped_column(Boolean, default=True)
    outcome: Mapped[str] = mapped_column(Text, default="")


# --- assignment ----------------------------------------------------------------------------


class AgentProfile(TenantMixin, Base):
    """An agent's availability for new leads (paused: on vacation)."""

    __tablename__ = "agent_profiles"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    paused_reason: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AssignmentSettings(Audited, Base):
    """A tenant's assignment strategy chain and its routing rules (rules.AssignmentConfig)."""

    __tablename__ = "lead_assignment_settings"

    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    last_round_robin_agent_id: Mapped[int | None] = mapped_column(Integer, default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class LeadAssignment(TenantMixin, Base):
    """Why a lead went to an agent: the strategy, the reason in words, and every candidate."""

    __tablename__ = "lead_assignments"
    __table_args__ = (Index("ix_lead_assignments_tenant_created", "tenant_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    strategy: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(500))
    candidates: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    decided_by: Mapped[int | None] = mapped_column(Integer, default=None)  # None: automatic
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- who may read what (platform/access.py applies these to every query) ---------------------
#
# Properties are the brokerage's shared inventory: every staff member reads them.
# Leads, appointments and tasks are private pipelines: only their owner (and admins, who
# configure and reassign) read the rows; the broker reads agents' leads as metrics only,
# through the broker module's aggregates (seed 004 levels 2 and 3). Clients are level 1: the
# broker reads those of their agents in full.

STAFF = (Role.admin, Role.broker, Role.agent)


def _properties_policy(principal: Principal) -> ColumnElement[bool]:
    return true() if principal.role in STAFF else false()


def _owner_only(column: Any) -> Any:
    def policy(principal: Principal) -> ColumnElement[bool]:
        if principal.role == Role.admin:
            return true()
        if principal.role in (Role.broker, Role.agent):
            return column == principal.user_id
        return false()

    return policy


def _clients_policy(principal: Principal) -> ColumnElement[bool]:
    if principal.role == Role.admin:
        return true()
    if principal.role == Role.broker:
        team = select(User.id).where(User.broker_id == principal.user_id)
        return or_(Client.agent_id == principal.user_id, Client.agent_id.in_(team))
    if principal.role == Role.agent:
        return Client.agent_id == principal.user_id
    if principal.role == Role.client:
        return Client.user_id == principal.user_id
    return false()


register_policy(Property, _properties_policy)
register_policy(PropertyImage, _properties_policy)
register_policy(Lead, _owner_only(Lead.agent_id))
register_policy(Appointment, _owner_only(Appointment.agent_id))
register_policy(Task, _owner_only(Task.assignee_id))
register_policy(Client, _clients_policy)


def _through_lead(model: Any) -> Any:
    def policy(principal: Principal) -> ColumnElement[bool]:
        owner = _owner_only(Lead.agent_id)(principal)
        return model.lead_id.in_(select(Lead.id).where(owner))

    return policy


register_policy(LeadInteraction, _through_lead(LeadInteraction))
register_policy(LeadMessage, _through_lead(LeadMessage))


# Wherever leads can be written, their counts follow (the listener of crm.tallies).
from doorstep.crm import tallies  # noqa: E402, F401
