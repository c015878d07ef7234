"""Tables of seed 004: monthly KPI snapshots per agent and each broker's notification settings.

The rows the dashboard counts (leads, appointments, escrows, clients, listings) belong to the
crm and transactions modules; this module reads them through aggregates only."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, Numeric, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from doorstep.crm.models import Lead
from doorstep.platform.audit import Audited
from doorstep.platform.db import Base, TenantMixin, utcnow
from doorstep.transactions.models import Transaction


class AgentKpi(TenantMixin, Base):
    """The seed's `agent_kpis`: one agent's figures for one calendar month."""

    __tablename__ = "agent_kpis"
    __table_args__ = (
        UniqueConstraint("user_id", "period_start", "period_end"),
        Index("ix_agent_kpis_broker", "broker_id"),
        Index("ix_agent_kpis_period", "period_start", "period_end"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    broker_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    total_leads: Mapped[int] = mapped_column(Integer, default=0)
    new_leads: Mapped[int] = mapped_column(Integer, default=0)
    converted_leads: Mapped[int] = mapped_column(Integer, default=0)
    conversion_rate: Mapped[Decimal | None] = mapped_column(Numeric(5, 2), default=None)
    total_appointments: Mapped[int] = mapped_column(Integer, default=0)
    completed_appointments: Mapped[int] = mapped_column(Integer, default=0)
    no_shows: Mapped[int] = mapped_column(Integer, default=0)
    show_rate: Mapped[Decimal | None] = mapped_column(Numeric(5, 2), default=None)
    total_escrows: Mapped[int] = mapped_column(Integer, default=0)
    total_clients: Mapped[int] = mapped_column(Integer, default=0)
    active_listings: Mapped[int] = mapped_column(Integer, default=0)
    total_volume: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal(0))
    total_commission: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=Decimal(0))
    last_activity: Mapped[datetime | None] = mapped_column(default=None)
    days_active: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BrokerNotificationSettings(Audited, TenantMixin, Base):
    """The seed's `broker_notification_settings`: which events, which channels, a threshold."""

    __tablename__ = "broker_notification_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    broker_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    notify_escrow_created: Mapped[bool] = mapped_column(Boolean, default=True)
    notify_client_created: Mapped[bool] = mapped_column(Boolean, default=True)
    notify_listing_created: Mapped[bool] = mapped_column(Boolean, default=True)
    notify_escrow_closed: Mapped[bool] = mapped_column(Boolean, default=True)
    email_notifications: Mapped[bool] = mapped_column(Boolean, default=True)
    in_app_notifications: Mapped[bool] = mapped_column(Boolean, default=True)
    sms_notifications: Mapped[bool] = mapped_column(Boolean, default=False)
    min_escrow_value: Mapped[Decimal | None] = mapped_column(Numeric(12, 2), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# --- indexes for the dashboard's aggregates (issue 6) ------------------------------------------
# The KPI queries are crm.service.pipeline_metrics and transactions.service.production_by_agent;
# these indexes exist only for them, so they are declared here with the dashboard (migration
# 0012). Both make their query an index-only scan: every column it reads is in the index.

# Leads: `agent_id IN team AND is_private IS false AND created_at < end`, counting all, new
# (created_at) and won (stage), and the latest created_at, grouped by agent. Partial: a broker
# never counts private leads.
Index(
    "ix_leads_agent_public_created",
    Lead.agent_id,
    Lead.created_at,
    postgresql_include=["stage"],
    postgresql_where=Lead.is_private.is_(False),
    sqlite_where=Lead.is_private.is_(False),
)

# Escrows: `agent_id IN team AND contract_date in [start, end)` (the period and year to date),
# with the status filter, the sums, the latest created_at and the tenant condition of the
# visibility policy read from the index.
Index(
    "ix_transactions_agent_contract",
    Transaction.agent_id,
    Transaction.contract_date,
    postgresql_include=[
        "escrow_status",
        "purchase_price",
        "my_commission",
        "created_at",
        "tenant_id",
    ],
)
