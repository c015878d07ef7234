"""Tables of seed 002: companies and their valuation data (the seed's `ValuationAnalytics`,
`MarketBenchmarks`, `CompanyMetricsHistory`, `UserActivity`), generated reports and schedules.

A company belongs to a tenant (the brokerage itself, the café, a client company). It may be
linked to a tenant's analytics warehouse (`warehouse_tenant_id`): its monthly metrics are then
computed from that tenant's real sales (service.refresh_metrics) instead of entered by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql import ColumnElement, false, or_, true

from doorstep.platform.access import register_policy
from doorstep.platform.audit import Audited
from doorstep.platform.auth import Principal, Role
from doorstep.platform.db import Base, JSONType, TenantMixin, TimestampMixin, utcnow


class Company(Audited, TenantMixin, TimestampMixin, Base):
    __tablename__ = "companies"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    industry: Mapped[str] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text, default=None)
    # Metrics history computed from this tenant's sales warehouse (None: entered or imported).
    warehouse_tenant_id: Mapped[int | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="SET NULL"), default=None
    )


class Valuation(Audited, TenantMixin, Base):
    """The seed's `ValuationAnalytics`: one valuation of a company by one method."""

    __tablename__ = "valuation_analytics"
    __table_args__ = (Index("ix_valuation_analytics_company_date", "company_id", "valued_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    method: Mapped[str] = mapped_column(String(32))  # rules.METHODS
    value: Mapped[Decimal] = mapped_column(Numeric(16, 2))
    low: Mapped[Decimal] = mapped_column(Numeric(16, 2))
    high: Mapped[Decimal] = mapped_column(Numeric(16, 2))
    confidence: Mapped[Decimal] = mapped_column(Numeric(4, 3))  # 0..1
    valued_on: Mapped[date] = mapped_column(Date)
    notes: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MarketBenchmark(TenantMixin, Base):
    """The seed's `MarketBenchmarks`: an industry's percentiles of one metric, as of a date."""

    __tablename__ = "market_benchmarks"
    __table_args__ = (UniqueConstraint("tenant_id", "industry", "metric", "as_of"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    industry: Mapped[str] = mapped_column(String(64))
    metric: Mapped[str] = mapped_column(String(32))  # rules.BENCHMARK_METRICS
    p25: Mapped[Decimal] = mapped_column(Numeric(16, 4))
    p50: Mapped[Decimal] = mapped_column(Numeric(16, 4))
    p75: Mapped[Decimal] = mapped_column(Numeric(16, 4))
    as_of: Mapped[date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(200))


class CompanyMetric(TenantMixin, Base):
    """The seed's `CompanyMetricsHistory`: one company's figures for one month."""

    __tablename__ = "company_metrics_history"
    __table_args__ = (UniqueConstraint("company_id", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    period: Mapped[date] = mapped_column(Date)  # the month's first day
    revenue: Mapped[Decimal] = mapped_column(Numeric(16, 2))
    growth: Mapped[Decimal | None] = mapped_column(Numeric(8, 4), default=None)  # vs last month
    margin: Mapped[Decimal | None] = mapped_column(Numeric(8, 4), default=None)  # EBITDA margin
    churn: Mapped[Decimal | None] = mapped_column(Numeric(8, 4), default=None)  # monthly
    customers: Mapped[int | None] = mapped_column(Integer, default=None)
    orders: Mapped[int | None] = mapped_column(Integer, default=None)
    source: Mapped[str] = mapped_column(String(16), default="manual")  # manual|import|warehouse


class UserActivity(TenantMixin, Base):
    """The seed's `UserActivity`: what people did (reports generated and downloaded, ...)."""

    __tablename__ = "user_activity"
    __table_args__ = (Index("ix_user_activity_tenant_at", "tenant_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    action: Mapped[str] = mapped_column(String(48))
    subject: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Report(TenantMixin, Base):
    """A requested report: generated by a background job, stored with its size and checksum."""

    __tablename__ = "reports"
    __table_args__ = (Index("ix_reports_tenant_created", "tenant_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    requested_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    schedule_id: Mapped[int | None] = mapped_column(
        ForeignKey("report_schedules.id", ondelete="SET NULL"), default=None
    )
    template: Mapped[str] = mapped_column(String(48))
    format: Mapped[str] = mapped_column(String(8))
    sections: Mapped[list[str]] = mapped_column(JSONType)
    company_id: Mapped[int | None] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), default=None
    )
    agent_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), default=None
    )
    title: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(12), default="queued")  # queued|running|done|failed
    error: Mapped[str | None] = mapped_column(Text, default=None)
    filename: Mapped[str | None] = mapped_column(String(200), default=None)
    media_type: Mapped[str | None] = mapped_column(String(120), default=None)
    size: Mapped[int | None] = mapped_column(Integer, default=None)
    checksum: Mapped[str | None] = mapped_column(String(64), default=None)  # SHA-256, hex
    content: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class ReportSchedule(Audited, TenantMixin, TimestampMixin, Base):
    """A report made again every week, month or quarter and e-mailed to its recipients."""

    __tablename__ = "report_schedules"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    template: Mapped[str] = mapped_column(String(48))
    format: Mapped[str] = mapped_column(String(8))
    sections: Mapped[list[str]] = mapped_column(JSONType)
    company_id: Mapped[int | None] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), default=None
    )
    agent_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), default=None
    )
    cadence: Mapped[str] = mapped_column(String(12))  # weekly|monthly|quarterly
    recipients: Mapped[list[str]] = mapped_column(JSONType)
    next_run_at: Mapped[datetime]
    active: Mapped[bool] = mapped_column(default=True)
    last_report_id: Mapped[int | None] = mapped_column(Integer, default=None)


# --- who reads what (platform/access.py applies these to every query) ---------------------------

_VIEWERS = frozenset({Role.admin, Role.broker, Role.analyst})


def _viewers_only(_model: Any) -> Callable[[Principal], ColumnElement[bool]]:
    def policy(principal: Principal) -> ColumnElement[bool]:
        return true() if principal.role in _VIEWERS else false()

    return policy


def _reports_policy(principal: Principal) -> ColumnElement[bool]:
    """An admin reads every report; a broker or analyst their own and the company reports (they
    may see every company); anyone else only their own."""
    mine = Report.requested_by == principal.user_id
    if principal.role == Role.admin:
        return true()
    if principal.role in _VIEWERS:
        return or_(mine, Report.company_id.is_not(None))
    return mine


def _activity_policy(principal: Principal) -> ColumnElement[bool]:
    if principal.role == Role.admin:
        return true()
    return UserActivity.user_id == principal.user_id


for _model in (Company, Valuation, MarketBenchmark, CompanyMetric):
    register_policy(_model, _viewers_only(_model))
register_policy(Report, _reports_policy)
register_policy(ReportSchedule, lambda p: ReportSchedule.owner_id == p.user_id)
register_policy(UserActivity, _activity_policy)
