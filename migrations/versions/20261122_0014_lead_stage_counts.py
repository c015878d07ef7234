"""lead stage counts: per-agent counts of non-private leads by stage (issue 6)

The broker dashboard counted every non-private lead of the team per request (1.84M index
entries in the large benchmark, 350 ms: over its whole budget). `lead_stage_counts` holds one
row per (agent, stage), kept by `doorstep.crm.tallies` in the transaction of every lead write;
the dashboard reads about ten rows per agent. The upgrade fills it from the existing leads.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-22 07:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lead_stage_counts",
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=40), nullable=False),
        sa.Column("leads", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["users.id"],
            name=op.f("fk_lead_stage_counts_agent_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_lead_stage_counts_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("agent_id", "stage", name=op.f("pk_lead_stage_counts")),
    )
    with op.batch_alter_table("lead_stage_counts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lead_stage_counts_tenant_id"), ["tenant_id"], unique=False
        )
    op.execute(
        "INSERT INTO lead_stage_counts (tenant_id, agent_id, stage, leads) "
        "SELECT tenant_id, agent_id, stage, count(*) FROM leads "
        "WHERE agent_id IS NOT NULL AND is_private = false "
        "GROUP BY tenant_id, agent_id, stage"
    )


def downgrade() -> None:
    with op.batch_alter_table("lead_stage_counts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lead_stage_counts_tenant_id"))
    op.drop_table("lead_stage_counts")
