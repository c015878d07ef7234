"""Per-agent lead counts kept up to date in the transaction of every lead write.

The broker dashboard (seed 004) shows, for each agent, how many non-private leads they have and
how many of those are won. Counting 2,000,000 leads per request costs more than the dashboard's
whole budget, so the counts are kept as `lead_stage_counts` rows, one per (agent, stage): a
lead counts in the row of its agent and its current stage while it is not private. "Won" is the
sum over the tenant's won stages at read time, so editing the sales process changes nothing
here.

The rows are maintained by one `after_flush` listener over every ORM change to a lead (create,
stage move, privacy change, reassignment, delete), in the same transaction as the change: a
rollback takes the counts back with it. Bulk inserts that bypass the ORM (the demo loader,
benchmarks) call `rebuild()` afterwards; `drift()` compares the rows with a plain count, and
the nightly `crm.check_lead_counts` job mends and reports any difference."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import delete, event, func, insert, inspect, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from doorstep.crm.models import Lead, LeadStageCount

Key = tuple[int, int, str]  # tenant, agent, stage


def _key(tenant_id: Any, agent_id: Any, stage: Any, is_private: Any) -> Key | None:
    """The row a lead in this state counts in, or None when it counts nowhere."""
    if agent_id is None or is_private or stage is None:
        return None
    return int(tenant_id), int(agent_id), str(stage)


def _before(lead: Lead) -> Key | None:
    """The row the lead counted in before this flush (its committed values)."""
    state = inspect(lead)

    def old(name: str) -> Any:
        history = state.attrs[name].history
        if history.deleted:
            return history.deleted[0]
        return history.unchanged[0] if history.unchanged else None

    return _key(lead.tenant_id, old("agent_id"), old("stage"), old("is_private"))


def _after(lead: Lead) -> Key | None:
    return _key(lead.tenant_id, lead.agent_id, lead.stage, lead.is_private)


@event.listens_for(Session, "after_flush")
def _follow(session: Session, _context: Any) -> None:
    delta: Counter[Key] = Counter()
    for obj in session.new:
        if isinstance(obj, Lead) and (key := _after(obj)):
            delta[key] += 1
    for obj in session.dirty:
        if isinstance(obj, Lead) and session.is_modified(obj, include_collections=False):
            before, after = _before(obj), _after(obj)
            if before != after:
                if before:
                    delta[before] -= 1
                if after:
                    delta[after] += 1
    for obj in session.deleted:  # (deleting an expired lead loads it first)
        if isinstance(obj, Lead) and (key := _before(obj)):
            delta[key] -= 1
    changes = [(key, n) for key, n in sorted(delta.items()) if n]  # sorted: no deadlocks
    if changes:
        _add(session, changes)


def _add(session: Session, changes: list[tuple[Key, int]]) -> None:
    connection = session.connection()
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    rows = [
        {"tenant_id": tenant_id, "agent_id": agent_id, "stage": stage, "leads": n}
        for (tenant_id, agent_id, stage), n in changes
    ]
    stmt = dialect.insert(LeadStageCount)
    connection.execute(
        stmt.on_conflict_do_update(
            index_elements=[LeadStageCount.agent_id, LeadStageCount.stage],
            set_={"leads": LeadStageCount.leads + stmt.excluded.leads},
        ),
        rows,
    )


def _counted(tenant_id: int) -> Any:
    return (
        select(Lead.tenant_id, Lead.agent_id, Lead.stage, func.count().label("leads"))
        .where(Lead.tenant_id == tenant_id, Lead.agent_id.is_not(None), Lead.is_private.is_(False))
        .group_by(Lead.tenant_id, Lead.agent_id, Lead.stage)
    )


def rebuild(db: Session, *, tenant_id: int) -> int:
    """Count the tenant's leads afresh (after a bulk insert that bypassed the ORM)."""
    db.flush()
    db.execute(delete(LeadStageCount).where(LeadStageCount.tenant_id == tenant_id))
    result = db.execute(
        insert(LeadStageCount).from_select(
            ["tenant_id", "agent_id", "stage", "leads"], _counted(tenant_id)
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def drift(db: Session, *, tenant_id: int) -> dict[tuple[int, str], tuple[int, int]]:
    """(agent, stage) -> (kept, counted) wherever the kept rows differ from a plain count."""
    db.flush()
    kept = {
        (row.agent_id, row.stage): row.leads
        for row in db.execute(
            select(LeadStageCount).where(LeadStageCount.tenant_id == tenant_id)
        ).scalars()
    }
    counted = {(row.agent_id, row.stage): row.leads for row in db.execute(_counted(tenant_id))}
    return {
        key: (kept.get(key, 0), counted.get(key, 0))
        for key in kept.keys() | counted.keys()
        if kept.get(key, 0) != counted.get(key, 0)
    }
