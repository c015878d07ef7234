"""churn scores by customer

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-22 02:40:00

The dashboard's churn alert joins a tenant's scores with its customers' lifetime rows; without
this index SQLite scanned every score of the tenant for each recent customer (a minute at the
demo's 41,000 customers).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customer_churn_scores", schema="predictions") as batch_op:
        batch_op.create_index(
            "ix_churn_scores_customer", ["tenant_id", "customer_sk"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("customer_churn_scores", schema="predictions") as batch_op:
        batch_op.drop_index("ix_churn_scores_customer")
