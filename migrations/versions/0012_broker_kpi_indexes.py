"""broker KPI indexes: index-only scans for the dashboard's lead and escrow aggregates (issue 6)

`GET /api/broker/agents/kpis` counts every non-private lead of the broker's team (1.84M of the
2M leads in the large benchmark) and sums the team's escrows twice (the period and the year to
date). Without these indexes PostgreSQL read the whole leads table (a parallel sequential scan
of 45,000 pages) and the whole escrows table for each sum. `ix_leads_agent_public_created`
holds exactly the non-private leads with every column the count reads (agent, created_at,
stage); `ix_transactions_agent_contract` the escrows by agent and contract date with the
columns summed. See docs/performance.md, "Broker KPIs (issue 6)". The models declare both in
doorstep.broker.models.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-22 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_leads_agent_public_created",
        "leads",
        ["agent_id", "created_at"],
        postgresql_include=["stage"],
        postgresql_where=sa.text("is_private IS false"),
        sqlite_where=sa.text("is_private IS 0"),
    )
    op.create_index(
        "ix_transactions_agent_contract",
        "real_estate_transactions",
        ["agent_id", "contract_date"],
        postgresql_include=[
            "escrow_status",
            "purchase_price",
            "my_commission",
            "created_at",
            "tenant_id",
        ],
    )


def downgrade() -> None:
    op.drop_index("ix_transactions_agent_contract", table_name="real_estate_transactions")
    op.drop_index("ix_leads_agent_public_created", table_name="leads")
