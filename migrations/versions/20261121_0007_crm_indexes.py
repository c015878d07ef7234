"""crm indexes: the leads table's filter and sort (issue 5 benchmark)

The leads table filtered by stage and heat and sorted by heat score, over a whole brokerage
(an admin's view of ~40,000 leads), read every lead of the tenant and sorted them: 10.4 ms for
the page and 2.7 ms for its count (EXPLAIN ANALYZE, PostgreSQL 15, demo data). With this index
both are index scans of the matching rows only: 0.26 ms and 0.25 ms. See docs/performance.md.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21 22:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_leads_tenant_stage_heat_score",
        "leads",
        ["tenant_id", "stage", "heat", "heat_score"],
    )


def downgrade() -> None:
    op.drop_index("ix_leads_tenant_stage_heat_score", table_name="leads")
