"""analytics warehouse

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22 00:26:28.131947
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import doorstep.platform.db
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


SCHEMAS = ("bronze", "silver", "gold", "predictions")


def upgrade() -> None:
    # The warehouse's layers are schemas on PostgreSQL (translated away on SQLite). fact_sales is
    # partitioned by year; the loader creates each year's partition before it writes to it.
    if op.get_bind().dialect.name == "postgresql":
        for schema in SCHEMAS:
            op.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    op.create_table(
        "customer_daily",
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("sale_date", sa.Date(), nullable=False),
        sa.Column("location_sk", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("customer_sk", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("revenue", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "sale_date", "location_sk", "customer_sk", name=op.f("pk_customer_daily")
        ),
        schema="gold",
    )
    op.create_table(
        "customer_monthly",
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("location_sk", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("customer_sk", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("revenue", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "month", "location_sk", "customer_sk", name=op.f("pk_customer_monthly")
        ),
        schema="gold",
    )
    op.create_table(
        "daily_sales_summary",
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("sale_date", sa.Date(), nullable=False),
        sa.Column("location_sk", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("revenue", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("items", sa.Numeric(precision=12, scale=3), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "sale_date", "location_sk", name=op.f("pk_daily_sales_summary")
        ),
        schema="gold",
    )
    op.create_table(
        "dim_date",
        sa.Column("date_key", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("year", sa.SmallInteger(), nullable=False),
        sa.Column("quarter", sa.SmallInteger(), nullable=False),
        sa.Column("month", sa.SmallInteger(), nullable=False),
        sa.Column("weekday", sa.SmallInteger(), nullable=False),
        sa.Column("is_weekend", sa.Boolean(), nullable=False),
        sa.Column("month_start", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("date_key", name=op.f("pk_dim_date")),
        sa.UniqueConstraint("day", name=op.f("uq_dim_date_day")),
        schema="gold",
    )
    op.create_table(
        "fact_sales",
        sa.Column("sale_date", sa.Date(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("order_key", sa.String(length=64), nullable=False),
        sa.Column("line_no", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("order_ts", doorstep.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("hour", sa.SmallInteger(), nullable=False),
        sa.Column("date_key", sa.Integer(), nullable=False),
        sa.Column("location_sk", sa.Integer(), nullable=False),
        sa.Column("customer_sk", sa.Integer(), nullable=True),
        sa.Column("product_sk", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=12, scale=3), nullable=False),
        sa.Column("revenue", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.PrimaryKeyConstraint(
            "sale_date", "tenant_id", "source", "order_key", "line_no", name=op.f("pk_fact_sales")
        ),
        schema="gold",
        postgresql_partition_by="RANGE (sale_date)",
    )
    with op.batch_alter_table("fact_sales", schema="gold") as batch_op:
        batch_op.create_index(
            "ix_fact_sales_day", ["tenant_id", "sale_date", "location_sk"], unique=False
        )
        batch_op.create_index(
            "ix_fact_sales_order", ["tenant_id", "source", "order_key"], unique=False
        )

    op.create_table(
        "hourly_sales",
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("sale_date", sa.Date(), nullable=False),
        sa.Column("location_sk", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("hour", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("revenue", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "sale_date", "location_sk", "hour", name=op.f("pk_hourly_sales")
        ),
        schema="gold",
    )
    op.create_table(
        "product_performance",
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("sale_date", sa.Date(), nullable=False),
        sa.Column("location_sk", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("product_sk", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("quantity", sa.Numeric(precision=12, scale=3), nullable=False),
        sa.Column("revenue", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id",
            "sale_date",
            "location_sk",
            "product_sk",
            name=op.f("pk_product_performance"),
        ),
        schema="gold",
    )
    op.create_table(
        "analytics_sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("square_token", sa.String(length=256), nullable=False),
        sa.Column("square_base_url", sa.String(length=256), nullable=False),
        sa.Column("orders_cursor", doorstep.platform.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_sync_at", doorstep.platform.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_sync_status", sa.String(length=200), nullable=False),
        sa.Column("updated_at", doorstep.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_analytics_sources_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_sources")),
        sa.UniqueConstraint("tenant_id", name=op.f("uq_analytics_sources_tenant_id")),
    )
    with op.batch_alter_table("analytics_sources", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_analytics_sources_tenant_id"), ["tenant_id"], unique=False
        )

    op.create_table(
        "square_line_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("uid", sa.String(length=64), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_square_line_items_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_square_line_items")),
        schema="bronze",
    )
    with op.batch_alter_table("square_line_items", schema="bronze") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_bronze_square_line_items_tenant_id"), ["tenant_id"], unique=False
        )
        batch_op.create_index("ix_square_line_items_order", ["tenant_id", "order_id"], unique=False)

    op.create_table(
        "square_orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("location_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("updated_at", doorstep.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("loaded_at", doorstep.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_square_orders_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_square_orders")),
        sa.UniqueConstraint("tenant_id", "order_id", name=op.f("uq_square_orders_tenant_id")),
        schema="bronze",
    )
    with op.batch_alter_table("square_orders", schema="bronze") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_bronze_square_orders_tenant_id"), ["tenant_id"], unique=False
        )

    op.create_table(
        "dim_customer",
        sa.Column("customer_sk", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("customer_key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("first_order_date", sa.Date(), nullable=True),
        sa.Column("cohort_month", sa.Date(), nullable=True),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_dim_customer_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_sk", name=op.f("pk_dim_customer")),
        sa.UniqueConstraint(
            "tenant_id", "source", "customer_key", name=op.f("uq_dim_customer_tenant_id")
        ),
        schema="gold",
    )
    with op.batch_alter_table("dim_customer", schema="gold") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_gold_dim_customer_tenant_id"), ["tenant_id"], unique=False
        )

    op.create_table(
        "dim_location",
        sa.Column("location_sk", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("location_key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_dim_location_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("location_sk", name=op.f("pk_dim_location")),
        sa.UniqueConstraint(
            "tenant_id", "source", "location_key", name=op.f("uq_dim_location_tenant_id")
        ),
        schema="gold",
    )
    with op.batch_alter_table("dim_location", schema="gold") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_gold_dim_location_tenant_id"), ["tenant_id"], unique=False
        )

    op.create_table(
        "dim_product",
        sa.Column("product_sk", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("product_key", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("category", sa.String(length=100), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_dim_product_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("product_sk", name=op.f("pk_dim_product")),
        sa.UniqueConstraint(
            "tenant_id", "source", "product_key", name=op.f("uq_dim_product_tenant_id")
        ),
        schema="gold",
    )
    with op.batch_alter_table("dim_product", schema="gold") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_gold_dim_product_tenant_id"), ["tenant_id"], unique=False
        )

    op.create_table(
        "customer_churn_scores",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("customer_sk", sa.Integer(), nullable=False),
        sa.Column("probability", sa.Double(), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("created_at", doorstep.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_customer_churn_scores_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_churn_scores")),
        schema="predictions",
    )
    with op.batch_alter_table("customer_churn_scores", schema="predictions") as batch_op:
        batch_op.create_index("ix_churn_scores_tenant", ["tenant_id", "probability"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_predictions_customer_churn_scores_tenant_id"),
            ["tenant_id"],
            unique=False,
        )

    op.create_table(
        "customer_ltv_scores",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("customer_sk", sa.Integer(), nullable=False),
        sa.Column("predicted_ltv", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("expected_purchases", sa.Double(), nullable=False),
        sa.Column("probability_alive", sa.Double(), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("created_at", doorstep.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_customer_ltv_scores_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_ltv_scores")),
        schema="predictions",
    )
    with op.batch_alter_table("customer_ltv_scores", schema="predictions") as batch_op:
        batch_op.create_index("ix_ltv_scores_tenant", ["tenant_id", "customer_sk"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_predictions_customer_ltv_scores_tenant_id"), ["tenant_id"], unique=False
        )

    op.create_table(
        "demand_forecasts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product_sk", sa.Integer(), nullable=False),
        sa.Column("forecast_date", sa.Date(), nullable=False),
        sa.Column("predicted_quantity", sa.Double(), nullable=False),
        sa.Column("lower_bound", sa.Double(), nullable=False),
        sa.Column("upper_bound", sa.Double(), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("created_at", doorstep.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_demand_forecasts_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_demand_forecasts")),
        schema="predictions",
    )
    with op.batch_alter_table("demand_forecasts", schema="predictions") as batch_op:
        batch_op.create_index(
            "ix_demand_forecasts_tenant", ["tenant_id", "forecast_date"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_predictions_demand_forecasts_tenant_id"), ["tenant_id"], unique=False
        )

    op.create_table(
        "model_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=16), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column(
            "metrics",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", doorstep.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_model_runs_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_runs")),
        schema="predictions",
    )
    with op.batch_alter_table("model_runs", schema="predictions") as batch_op:
        batch_op.create_index(
            "ix_model_runs_latest", ["tenant_id", "model", "created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_predictions_model_runs_tenant_id"), ["tenant_id"], unique=False
        )

    op.create_table(
        "customers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("customer_key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("valid_from", doorstep.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("valid_to", doorstep.platform.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("is_current", sa.Boolean(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_customers_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
        schema="silver",
    )
    with op.batch_alter_table("customers", schema="silver") as batch_op:
        batch_op.create_index(
            "ix_customers_key", ["tenant_id", "source", "customer_key", "is_current"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_silver_customers_tenant_id"), ["tenant_id"], unique=False
        )

    op.create_table(
        "locations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("location_key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("updated_at", doorstep.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_locations_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_locations")),
        sa.UniqueConstraint(
            "tenant_id", "source", "location_key", name=op.f("uq_locations_tenant_id")
        ),
        schema="silver",
    )
    with op.batch_alter_table("locations", schema="silver") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_silver_locations_tenant_id"), ["tenant_id"], unique=False
        )

    op.create_table(
        "products",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("product_key", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("category", sa.String(length=100), nullable=False),
        sa.Column("updated_at", doorstep.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_products_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
        sa.UniqueConstraint(
            "tenant_id", "source", "product_key", name=op.f("uq_products_tenant_id")
        ),
        schema="silver",
    )
    with op.batch_alter_table("products", schema="silver") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_silver_products_tenant_id"), ["tenant_id"], unique=False
        )

    # ### end Alembic commands ###


def downgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    with op.batch_alter_table("products", schema="silver") as batch_op:
        batch_op.drop_index(batch_op.f("ix_silver_products_tenant_id"))

    op.drop_table("products", schema="silver")
    with op.batch_alter_table("locations", schema="silver") as batch_op:
        batch_op.drop_index(batch_op.f("ix_silver_locations_tenant_id"))

    op.drop_table("locations", schema="silver")
    with op.batch_alter_table("customers", schema="silver") as batch_op:
        batch_op.drop_index(batch_op.f("ix_silver_customers_tenant_id"))
        batch_op.drop_index("ix_customers_key")

    op.drop_table("customers", schema="silver")
    with op.batch_alter_table("model_runs", schema="predictions") as batch_op:
        batch_op.drop_index(batch_op.f("ix_predictions_model_runs_tenant_id"))
        batch_op.drop_index("ix_model_runs_latest")

    op.drop_table("model_runs", schema="predictions")
    with op.batch_alter_table("demand_forecasts", schema="predictions") as batch_op:
        batch_op.drop_index(batch_op.f("ix_predictions_demand_forecasts_tenant_id"))
        batch_op.drop_index("ix_demand_forecasts_tenant")

    op.drop_table("demand_forecasts", schema="predictions")
    with op.batch_alter_table("customer_ltv_scores", schema="predictions") as batch_op:
        batch_op.drop_index(batch_op.f("ix_predictions_customer_ltv_scores_tenant_id"))
        batch_op.drop_index("ix_ltv_scores_tenant")

    op.drop_table("customer_ltv_scores", schema="predictions")
    with op.batch_alter_table("customer_churn_scores", schema="predictions") as batch_op:
        batch_op.drop_index(batch_op.f("ix_predictions_customer_churn_scores_tenant_id"))
        batch_op.drop_index("ix_churn_scores_tenant")

    op.drop_table("customer_churn_scores", schema="predictions")
    with op.batch_alter_table("dim_product", schema="gold") as batch_op:
        batch_op.drop_index(batch_op.f("ix_gold_dim_product_tenant_id"))

    op.drop_table("dim_product", schema="gold")
    with op.batch_alter_table("dim_location", schema="gold") as batch_op:
        batch_op.drop_index(batch_op.f("ix_gold_dim_location_tenant_id"))

    op.drop_table("dim_location", schema="gold")
    with op.batch_alter_table("dim_customer", schema="gold") as batch_op:
        batch_op.drop_index(batch_op.f("ix_gold_dim_customer_tenant_id"))

    op.drop_table("dim_customer", schema="gold")
    with op.batch_alter_table("square_orders", schema="bronze") as batch_op:
        batch_op.drop_index(batch_op.f("ix_bronze_square_orders_tenant_id"))

    op.drop_table("square_orders", schema="bronze")
    with op.batch_alter_table("square_line_items", schema="bronze") as batch_op:
        batch_op.drop_index("ix_square_line_items_order")
        batch_op.drop_index(batch_op.f("ix_bronze_square_line_items_tenant_id"))

    op.drop_table("square_line_items", schema="bronze")
    with op.batch_alter_table("analytics_sources", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_analytics_sources_tenant_id"))

    op.drop_table("analytics_sources")
    op.drop_table("product_performance", schema="gold")
    op.drop_table("hourly_sales", schema="gold")
    with op.batch_alter_table("fact_sales", schema="gold") as batch_op:
        batch_op.drop_index("ix_fact_sales_order")
        batch_op.drop_index("ix_fact_sales_day")

    op.drop_table("fact_sales", schema="gold")
    op.drop_table("dim_date", schema="gold")
    op.drop_table("daily_sales_summary", schema="gold")
    op.drop_table("customer_monthly", schema="gold")
    op.drop_table("customer_daily", schema="gold")
    # ### end Alembic commands ###
    if op.get_bind().dialect.name == "postgresql":
        for schema in SCHEMAS:
            op.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
