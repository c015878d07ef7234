"""The sales warehouse of seed 001, in its medallion layers.

- `bronze`: the raw JSON of each Square order as the API returned it (latest version per order).
- `silver`: typed sources — customers as SCD Type 2 (a new row whenever a customer's attributes
  change), products and locations.
- `gold`: the star schema the dashboard reads — `fact_sales` (one row per order line, partitioned
  by year on PostgreSQL), `dim_customer`, `dim_product`, `dim_location`, `dim_date` — and the
  rollups refreshed after each load for the affected days only (`daily_sales_summary`,
  `product_performance`, `hourly_sales`, `customer_daily`, `customer_monthly`) and for the
  affected customers (`customer_lifetime`, `cohort_activity`).
- `predictions`: the outputs of the churn, demand and LTV models, and one row per training run.

On PostgreSQL these are real schemas; on SQLite the engine's `schema_translate_map` puts the
same tables in the one database file (see `platform/db.py`), so table names are unique across
the layers.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from doorstep.platform.db import WAREHOUSE_SCHEMAS, Base, TenantMixin, utcnow

BRONZE, SILVER, GOLD, PREDICTIONS = WAREHOUSE_SCHEMAS
MONEY = Numeric(14, 2)
QUANTITY = Numeric(12, 3)
# Where an order came from: the Square API, a CSV upload, or the brokerage's own closings.
SOURCES = ("square", "csv", "brokerage", "demo")


# --- bronze --------------------------------------------------------------------------------------


class SquareOrder(TenantMixin, Base):
    """The latest version of one Square order, exactly as the API returned it."""

    __tablename__ = "square_orders"
    __table_args__ = (UniqueConstraint("tenant_id", "order_id"), {"schema": BRONZE})

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64))
    location_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)
    state: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column()
    payload: Mapped[dict[str, Any]] = mapped_column()
    loaded_at: Mapped[datetime] = mapped_column(default=utcnow)


class SquareLineItem(TenantMixin, Base):
    """The raw line items of the order's latest version (replaced with it)."""

    __tablename__ = "square_line_items"
    __table_args__ = (
        Index("ix_square_line_items_order", "tenant_id", "order_id"),
        {"schema": BRONZE},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64))
    uid: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column()


# --- silver --------------------------------------------------------------------------------------


class SilverCustomer(TenantMixin, Base):
    """A customer's attributes over time (SCD Type 2): the current row has `valid_to` NULL."""

    __tablename__ = "customers"
    __table_args__ = (
        Index("ix_customers_key", "tenant_id", "source", "customer_key", "is_current"),
        {"schema": SILVER},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    customer_key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    phone: Mapped[str] = mapped_column(String(32), default="")
    valid_from: Mapped[datetime] = mapped_column()
    valid_to: Mapped[datetime | None] = mapped_column(default=None)
    is_current: Mapped[bool] = mapped_column(Boolean, default=True)


class SilverProduct(TenantMixin, Base):
    __tablename__ = "products"
    __table_args__ = (UniqueConstraint("tenant_id", "source", "product_key"), {"schema": SILVER})

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    product_key: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(100), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SilverLocation(TenantMixin, Base):
    __tablename__ = "locations"
    __table_args__ = (
        UniqueConstraint("tenant_id", "source", "location_key"),
        {"schema": SILVER},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    location_key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# --- gold: dimensions ----------------------------------------------------------------------------


class DimCustomer(TenantMixin, Base):
    """One row per customer (current attributes); `first_order_date` gives the cohort."""

    __tablename__ = "dim_customer"
    __table_args__ = (
        UniqueConstraint("tenant_id", "source", "customer_key"),
        {"schema": GOLD},
    )

    customer_sk: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    customer_key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200), default="")
    first_order_date: Mapped[date | None] = mapped_column(Date, default=None)
    cohort_month: Mapped[date | None] = mapped_column(Date, default=None)


class DimProduct(TenantMixin, Base):
    __tablename__ = "dim_product"
    __table_args__ = (
        UniqueConstraint("tenant_id", "source", "product_key"),
        {"schema": GOLD},
    )

    product_sk: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    product_key: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(100), default="")


class DimLocation(TenantMixin, Base):
    __tablename__ = "dim_location"
    __table_args__ = (
        UniqueConstraint("tenant_id", "source", "location_key"),
        {"schema": GOLD},
    )

    location_sk: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    location_key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")


class DimDate(Base):
    """A calendar row per day (shared by every tenant); `weekday` 0 = Sunday as the seed reads."""

    __tablename__ = "dim_date"
    __table_args__ = ({"schema": GOLD},)

    date_key: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    day: Mapped[date] = mapped_column(Date, unique=True)
    year: Mapped[int] = mapped_column(SmallInteger)
    quarter: Mapped[int] = mapped_column(SmallInteger)
    month: Mapped[int] = mapped_column(SmallInteger)
    weekday: Mapped[int] = mapped_column(SmallInteger)
    is_weekend: Mapped[bool] = mapped_column(Boolean)
    month_start: Mapped[date] = mapped_column(Date)


# --- gold: facts ---------------------------------------------------------------------------------


class FactSales(Base):
    """One row per order line. `sale_date` and `hour` are in the location's time zone. The key
    includes `sale_date` because PostgreSQL partitions the table by year on it; an order that
    changes is deleted by (tenant, source, order_key) and inserted again."""

    __tablename__ = "fact_sales"
    __table_args__ = (
        Index("ix_fact_sales_order", "tenant_id", "source", "order_key"),
        Index("ix_fact_sales_day", "tenant_id", "sale_date", "location_sk"),
        {"schema": GOLD, "postgresql_partition_by": "RANGE (sale_date)"},
    )

    sale_date: Mapped[date] = mapped_column(Date, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(16), primary_key=True)
    order_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    line_no: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    order_ts: Mapped[datetime] = mapped_column()
    hour: Mapped[int] = mapped_column(SmallInteger)
    date_key: Mapped[int] = mapped_column(Integer)
    location_sk: Mapped[int] = mapped_column(Integer)
    customer_sk: Mapped[int | None] = mapped_column(Integer, default=None)
    product_sk: Mapped[int] = mapped_column(Integer)
    quantity: Mapped[Decimal] = mapped_column(QUANTITY)
    revenue: Mapped[Decimal] = mapped_column(MONEY)


# --- gold: rollups (refreshed for the days a load touched) ---------------------------------------


class DailySalesSummary(Base):
    __tablename__ = "daily_sales_summary"
    __table_args__ = ({"schema": GOLD},)

    tenant_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sale_date: Mapped[date] = mapped_column(Date, primary_key=True)
    location_sk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    orders: Mapped[int] = mapped_column(Integer)
    revenue: Mapped[Decimal] = mapped_column(MONEY)
    items: Mapped[Decimal] = mapped_column(QUANTITY)


class ProductPerformance(Base):
    __tablename__ = "product_performance"
    __table_args__ = ({"schema": GOLD},)

    tenant_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sale_date: Mapped[date] = mapped_column(Date, primary_key=True)
    location_sk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    product_sk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    quantity: Mapped[Decimal] = mapped_column(QUANTITY)
    revenue: Mapped[Decimal] = mapped_column(MONEY)
    orders: Mapped[int] = mapped_column(Integer)


class HourlySales(Base):
    __tablename__ = "hourly_sales"
    __table_args__ = ({"schema": GOLD},)

    tenant_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sale_date: Mapped[date] = mapped_column(Date, primary_key=True)
    location_sk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    hour: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    orders: Mapped[int] = mapped_column(Integer)
    revenue: Mapped[Decimal] = mapped_column(MONEY)


class CustomerDaily(Base):
    """A customer's orders and spend on one day at one location (identified orders only)."""

    __tablename__ = "customer_daily"
    __table_args__ = (
        # One customer's days: the refresh of their lifetime row, the models' histories.
        Index("ix_customer_daily_customer", "tenant_id", "customer_sk", "sale_date"),
        {"schema": GOLD},
    )

    tenant_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sale_date: Mapped[date] = mapped_column(Date, primary_key=True)
    location_sk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    customer_sk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    orders: Mapped[int] = mapped_column(Integer)
    revenue: Mapped[Decimal] = mapped_column(MONEY)


class CustomerMonthly(Base):
    """The same per calendar month: cohorts and long ranges read this instead of the days."""

    __tablename__ = "customer_monthly"
    __table_args__ = ({"schema": GOLD},)

    tenant_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    location_sk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    customer_sk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    orders: Mapped[int] = mapped_column(Integer)
    revenue: Mapped[Decimal] = mapped_column(MONEY)


# Rows of the customer rollups below with `location_sk` ALL_LOCATIONS count every location
# together (a customer's figures at "any location" cannot be added up from the per-location rows).
ALL_LOCATIONS = 0


class CustomerLifetime(Base):
    """A customer's whole history at one location (or at every location, `ALL_LOCATIONS`):
    orders, spend, first and last day, and the days of the 2nd, 5th and 10th latest orders.

    For a period that runs to the end of the data, a customer bought in it when `last_date` is
    in it, placed at least 2 (5, 10) orders in it when `second_last_date` (`fifth_`, `tenth_`)
    is, and spent `revenue` up to its end: the dashboard's customers, segments (rules.SEGMENTS)
    and CLV come from these rows alone, without summing the customer's days."""

    __tablename__ = "customer_lifetime"
    __table_args__ = (
        # Covering: a period's customers are read from the index alone.
        Index(
            "ix_customer_lifetime_recent",
            "tenant_id",
            "location_sk",
            "last_date",
            "second_last_date",
            "fifth_last_date",
            "tenth_last_date",
            "revenue",
        ),
        {"schema": GOLD},
    )

    tenant_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    location_sk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    customer_sk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    orders: Mapped[int] = mapped_column(Integer)
    revenue: Mapped[Decimal] = mapped_column(MONEY)
    first_date: Mapped[date] = mapped_column(Date)
    last_date: Mapped[date] = mapped_column(Date)
    second_last_date: Mapped[date | None] = mapped_column(Date, default=None)
    fifth_last_date: Mapped[date | None] = mapped_column(Date, default=None)
    tenth_last_date: Mapped[date | None] = mapped_column(Date, default=None)


class CohortActivity(Base):
    """How many customers of a cohort (month of first purchase) bought in a month, at one
    location (or at any location, `ALL_LOCATIONS`): the cohort table's cells."""

    __tablename__ = "cohort_activity"
    __table_args__ = ({"schema": GOLD},)

    tenant_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    location_sk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    cohort_month: Mapped[date] = mapped_column(Date, primary_key=True)
    customers: Mapped[int] = mapped_column(Integer)


# --- predictions ---------------------------------------------------------------------------------


class ModelRun(TenantMixin, Base):
    """One training run: which model, its version, its held-out figures."""

    __tablename__ = "model_runs"
    __table_args__ = (
        Index("ix_model_runs_latest", "tenant_id", "model", "created_at"),
        {"schema": PREDICTIONS},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model: Mapped[str] = mapped_column(String(16))  # churn | demand | ltv
    model_version: Mapped[str] = mapped_column(String(64))
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CustomerChurnScore(TenantMixin, Base):
    __tablename__ = "customer_churn_scores"
    __table_args__ = (
        Index("ix_churn_scores_tenant", "tenant_id", "probability"),
        # The churn alert joins a tenant's scores with its customers' lifetime rows.
        Index("ix_churn_scores_customer", "tenant_id", "customer_sk"),
        {"schema": PREDICTIONS},
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    customer_sk: Mapped[int] = mapped_column(Integer)
    probability: Mapped[float] = mapped_column()
    model_version: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DemandForecast(TenantMixin, Base):
    __tablename__ = "demand_forecasts"
    __table_args__ = (
        Index("ix_demand_forecasts_tenant", "tenant_id", "forecast_date"),
        {"schema": PREDICTIONS},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_sk: Mapped[int] = mapped_column(Integer)
    forecast_date: Mapped[date] = mapped_column(Date)
    predicted_quantity: Mapped[float] = mapped_column()
    lower_bound: Mapped[float] = mapped_column()
    upper_bound: Mapped[float] = mapped_column()
    model_version: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CustomerLtvScore(TenantMixin, Base):
    __tablename__ = "customer_ltv_scores"
    __table_args__ = (
        Index("ix_ltv_scores_tenant", "tenant_id", "customer_sk"),
        {"schema": PREDICTIONS},
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    customer_sk: Mapped[int] = mapped_column(Integer)
    predicted_ltv: Mapped[Decimal] = mapped_column(MONEY)
    expected_purchases: Mapped[float] = mapped_column()
    probability_alive: Mapped[float] = mapped_column()
    model_version: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- the tenant's sources ------------------------------------------------------------------------


class AnalyticsSource(TenantMixin, Base):
    """A tenant's Square connection and sync state. The token is never logged or returned."""

    __tablename__ = "analytics_sources"
    __table_args__ = (UniqueConstraint("tenant_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    square_token: Mapped[str] = mapped_column(String(256), default="")
    square_base_url: Mapped[str] = mapped_column(String(256), default="")
    # The incremental cursor: the latest `updated_at` of an order already loaded.
    orders_cursor: Mapped[datetime | None] = mapped_column(default=None)
    last_sync_at: Mapped[datetime | None] = mapped_column(default=None)
    last_sync_status: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
