"""Tables of seed 000: transactions (also seed 004's escrows), milestones, the activity feed,
predictions, celebrations, and each tenant's templates and settings."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
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


class LoanType(StrEnum):
    cash = "cash"
    conventional = "conventional"
    fha = "fha"
    va = "va"


class EscrowStatus(StrEnum):
    active = "Active"
    pending = "Pending"
    closed = "Closed"
    cancelled = "Cancelled"


class MilestoneType(StrEnum):
    contract_signed = "contract_signed"
    loan_application = "loan_application"
    home_inspection = "home_inspection"
    appraisal_ordered = "appraisal_ordered"
    loan_approval = "loan_approval"
    title_search = "title_search"
    final_walkthrough = "final_walkthrough"
    closing_day = "closing_day"


class MilestoneStatus(StrEnum):
    pending = "pending"
    in_progress = "in_progress"
    completed = "completed"
    delayed = "delayed"
    skipped = "skipped"


class Visibility(StrEnum):
    client = "client"  # the buyer sees it, and so does the agent
    agent = "agent"  # the brokerage's people only


class Priority(StrEnum):
    critical = "critical"
    high = "high"
    medium = "medium"
    low = "low"


class Transaction(Audited, TenantMixin, TimestampMixin, Base):
    """The seed's `real_estate_transactions`; seed 004 calls the same rows escrows."""

    __tablename__ = "real_estate_transactions"
    __table_args__ = (
        UniqueConstraint("tenant_id", "transaction_id"),
        Index(
            "ix_transactions_tenant_status_closing",
            "tenant_id",
            "escrow_status",
            "target_closing_date",
        ),
        Index("ix_transactions_agent_status", "agent_id", "escrow_status"),
        # The list's default order: the first page without sorting every visible row.
        Index("ix_transactions_tenant_closing", "tenant_id", "target_closing_date", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The human reference shown to buyers and in e-mails ("RR-2026-00042").
    transaction_id: Mapped[str] = mapped_column(String(32))
    agent_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    # Seed 003's property, once the CRM module exists; the address is kept here either way so a
    # transaction reads on its own.
    property_id: Mapped[int | None] = mapped_column(Integer, default=None, index=True)
    property_address: Mapped[str] = mapped_column(String(200))
    property_city: Mapped[str] = mapped_column(String(100), default="")
    property_state: Mapped[str] = mapped_column(String(2), default="")
    property_zip: Mapped[str] = mapped_column(String(10), default="")
    property_type: Mapped[str] = mapped_column(String(20), default="residential")
    buyer_name: Mapped[str] = mapped_column(String(200))
    purchase_price: Mapped[Decimal] = mapped_column(MONEY)
    down_payment: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    loan_type: Mapped[str] = mapped_column(String(16))
    my_commission: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    escrow_status: Mapped[str] = mapped_column(String(16), default=EscrowStatus.active)
    contract_date: Mapped[date] = mapped_column(Date)
    target_closing_date: Mapped[date] = mapped_column(Date)
    actual_closing_date: Mapped[date | None] = mapped_column(Date, default=None)
    progress_percentage: Mapped[Decimal] = mapped_column(Numeric(5, 2), default=Decimal(0))
    health_score: Mapped[int] = mapped_column(default=100)
    health_factors: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Who still has to confirm they are ready (lender, title company, inspector, ...): name -> bool.
    stakeholders: Mapped[dict[str, Any]] = mapped_column(default=dict)
    delay_count: Mapped[int] = mapped_column(default=0)
    last_communication_at: Mapped[datetime] = mapped_column(default=utcnow)
    cancellation_reason: Mapped[str | None] = mapped_column(String(500), default=None)
    notes: Mapped[str] = mapped_column(Text, default="")


class TransactionParty(TenantMixin, Base):
    """A client user on a transaction: its buyer(s) (and sellers, later)."""

    __tablename__ = "transaction_parties"
    __table_args__ = (UniqueConstraint("transaction_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    transaction_id: Mapped[int] = mapped_column(
        ForeignKey("real_estate_transactions.id", ondelete="CASCADE")
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16), default="buyer")


class Milestone(TenantMixin, Base):
    """The seed's `transaction_milestones`, copied from the tenant's template at creation."""

    __tablename__ = "transaction_milestones"
    __table_args__ = (UniqueConstraint("transaction_id", "milestone_type"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    transaction_id: Mapped[int] = mapped_column(
        ForeignKey("real_estate_transactions.id", ondelete="CASCADE"), index=True
    )
    milestone_type: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(16), default=MilestoneStatus.pending)
    order_sequence: Mapped[int]
    target_date: Mapped[date] = mapped_column(Date)
    actual_date: Mapped[date | None] = mapped_column(Date, default=None)
    progress_weight: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    celebration_message: Mapped[str] = mapped_column(String(300), default="")
    requires: Mapped[list[str]] = mapped_column(JSONType, default=list)
    optional: Mapped[bool] = mapped_column(Boolean, default=False)
    notes: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class MilestoneTemplate(TenantMixin, Base):
    """A tenant's own milestone plan for a loan type; without rows the built-in plan applies."""

    __tablename__ = "milestone_templates"
    __table_args__ = (UniqueConstraint("tenant_id", "loan_type", "milestone_type"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_type: Mapped[str] = mapped_column(String(16))
    milestone_type: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(80))
    order_sequence: Mapped[int]
    progress_weight: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    offset_days: Mapped[int]
    requires: Mapped[list[str]] = mapped_column(JSONType, default=list)
    optional: Mapped[bool] = mapped_column(Boolean, default=False)
    celebration_message: Mapped[str] = mapped_column(String(300), default="")


class TransactionEvent(TenantMixin, Base):
    """The seed's `transaction_events`: the activity feed, with client or agent visibility.
    Live delivery goes through the platform outbox (`outbox_id`)."""

    __tablename__ = "transaction_events"
    __table_args__ = (Index("ix_transaction_events_tx_created", "transaction_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    transaction_id: Mapped[int] = mapped_column(
        ForeignKey("real_estate_transactions.id", ondelete="CASCADE")
    )
    event_type: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    priority: Mapped[str] = mapped_column(String(12), default=Priority.medium)
    visibility: Mapped[str] = mapped_column(String(8), default=Visibility.client)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    actor_id: Mapped[int | None] = mapped_column(Integer, default=None)
    outbox_id: Mapped[int | None] = mapped_column(Integer, default=None)
    acknowledged_at: Mapped[datetime | None] = mapped_column(default=None)
    acknowledged_by: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Prediction(TenantMixin, Base):
    """The seed's `transaction_predictions`, with the outcome filled in when the deal ends."""

    __tablename__ = "transaction_predictions"

    id: Mapped[int] = mapped_column(primary_key=True)
    transaction_id: Mapped[int] = mapped_column(
        ForeignKey("real_estate_transactions.id", ondelete="CASCADE"), index=True
    )
    model_version: Mapped[str] = mapped_column(String(64), index=True)
    delay_probability: Mapped[float] = mapped_column(Float)
    predicted_closing_date: Mapped[date] = mapped_column(Date)
    closing_date_low: Mapped[date] = mapped_column(Date)
    closing_date_high: Mapped[date] = mapped_column(Date)
    confidence: Mapped[float] = mapped_column(Float)
    factors: Mapped[dict[str, Any]] = mapped_column(default=dict)
    risk_factors: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    recommended_actions: Mapped[list[str]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Filled in when the transaction closes or is cancelled.
    outcome_delayed: Mapped[bool | None] = mapped_column(Boolean, default=None)
    outcome_closing_date: Mapped[date | None] = mapped_column(Date, default=None)
    outcome_recorded_at: Mapped[datetime | None] = mapped_column(default=None)


class DelayModel(Base):
    """A trained delay/closing-date model. `tenant_id` None: the simulator-trained default."""

    __tablename__ = "delay_models"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("tenants.id", ondelete="CASCADE"), index=True, default=None
    )
    version: Mapped[str] = mapped_column(String(64), unique=True)
    trained_on: Mapped[str] = mapped_column(String(32))  # "simulator" or "tenant"
    samples: Mapped[int]
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    blob: Mapped[bytes] = mapped_column(LargeBinary)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Celebration(TenantMixin, Base):
    """The seed's `transaction_celebrations`: one per trigger and transaction, ever."""

    __tablename__ = "transaction_celebrations"
    __table_args__ = (UniqueConstraint("transaction_id", "trigger_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    transaction_id: Mapped[int] = mapped_column(
        ForeignKey("real_estate_transactions.id", ondelete="CASCADE")
    )
    trigger_type: Mapped[str] = mapped_column(String(32))
    trigger_key: Mapped[str] = mapped_column(String(64))
    variant: Mapped[str] = mapped_column(String(8))
    title: Mapped[str] = mapped_column(String(120))
    message: Mapped[str] = mapped_column(String(500))
    animation: Mapped[str] = mapped_column(String(16))
    duration: Mapped[int]
    share_message: Mapped[str] = mapped_column(String(300), default="")
    channels: Mapped[list[str]] = mapped_column(JSONType, default=list)
    delivery_status: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    shown_at: Mapped[datetime | None] = mapped_column(default=None)
    seconds_viewed: Mapped[float] = mapped_column(Float, default=0.0)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    share_channel: Mapped[str | None] = mapped_column(String(16), default=None)


class CelebrationTemplate(TenantMixin, Base):
    """A tenant's wording for a trigger (a milestone type, `progress`, `countdown`, ...)."""

    __tablename__ = "celebration_templates"
    __table_args__ = (UniqueConstraint("tenant_id", "trigger", "variant"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    trigger: Mapped[str] = mapped_column(String(32))
    variant: Mapped[str] = mapped_column(String(8))
    title: Mapped[str] = mapped_column(String(120))
    message: Mapped[str] = mapped_column(String(500))
    animation: Mapped[str] = mapped_column(String(16))
    duration: Mapped[int]
    share_message: Mapped[str] = mapped_column(String(300), default="")


class TransactionSettings(Audited, Base):
    """Per-tenant settings of the module: the health-score weights."""

    __tablename__ = "transaction_settings"

    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    health_weights: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# --- who may read which transaction (platform/access.py applies it to every query) -------------


def _transactions_policy(principal: Principal) -> ColumnElement[bool]:
    if principal.role == Role.admin:
        return true()
    if principal.role == Role.broker:
        # Level 1: the broker sees every escrow of the agents under them, and their own.
        team = select(User.id).where(User.broker_id == principal.user_id)
        return or_(Transaction.agent_id == principal.user_id, Transaction.agent_id.in_(team))
    if principal.role == Role.agent:
        return Transaction.agent_id == principal.user_id
    if principal.role == Role.client:
        mine = select(TransactionParty.transaction_id).where(
            TransactionParty.user_id == principal.user_id
        )
        return Transaction.id.in_(mine)
    return false()  # analysts read aggregates through the analytics module, not deals


register_policy(Transaction, _transactions_policy)
