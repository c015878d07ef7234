"""The kept lead counts (crm.tallies, `lead_stage_counts`): after any sequence of lead writes
through the service (create, stage moves, privacy, reassignment, delete), refused and
rolled-back changes included, the rows equal a plain count; bulk writes are mended by the
nightly check."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from doorstep.crm import service, tallies, tasks
from doorstep.crm.models import Lead, LeadStageCount
from doorstep.crm.schemas import LeadCreate, LeadUpdate
from doorstep.platform.auth import Role
from doorstep.platform.errors import DoorstepError
from tests.conftest import Brokerage, Factory, principal_of

STAGES = ["lead", "needs_analysis", "offer_sent", "negotiation", "closed_won", "closed_lost"]


def kept(db: Session, tenant_id: int) -> dict[tuple[int, str], int]:
    rows = db.scalars(select(LeadStageCount).where(LeadStageCount.tenant_id == tenant_id))
    return {(row.agent_id, row.stage): row.leads for row in rows if row.leads}


def counted(db: Session, tenant_id: int) -> dict[tuple[int, str], int]:
    """The plain way: every lead loaded, counted in Python."""
    out: dict[tuple[int, str], int] = {}
    for lead in db.scalars(select(Lead).where(Lead.tenant_id == tenant_id)):
        if lead.agent_id is not None and not lead.is_private:
            key = (lead.agent_id, lead.stage)
            out[key] = out.get(key, 0) + 1
    return out


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_counts_follow_every_lead_write(
    db: Session, brokerage: Brokerage, factory: Factory, seed: int
) -> None:
    rng = random.Random(seed)
    tenant_id = brokerage.tenant.id
    agents = [brokerage.agent, brokerage.other_agent]
    agents.append(factory.user(brokerage.tenant, Role.agent, broker=brokerage.broker))
    db.commit()
    owners = [*agents, brokerage.broker]  # a broker's own leads are private
    admin = principal_of(brokerage.admin)
    lead_ids: list[int] = []
    done: dict[str, int] = {}
    for step in range(60):
        action = rng.choice(
            [
                "create",
                "create",
                "move",
                "move",
                "privacy",
                "reassign",
                "delete",
                "rollback",
                "blind",
                "blind_delete",
            ]
        )
        if action != "create" and not lead_ids:
            action = "create"
        if rng.random() < 0.3:
            db.expire_all()  # the old values must be loaded, not assumed
        before = kept(db, tenant_id)
        try:
            if action == "create":
                owner = rng.choice(owners)
                lead = service.create_lead(
                    db,
                    principal=principal_of(owner),
                    data=LeadCreate(name=f"Lead {step}", is_private=rng.random() < 0.2),
                )
                lead_ids.append(lead.id)
            elif action == "move":
                lead = db.get(Lead, rng.choice(lead_ids))
                assert lead is not None
                assert lead.agent_id is not None
                owner_user = next(u for u in owners if u.id == lead.agent_id)
                service.transition_lead(
                    db,
                    principal=principal_of(owner_user),
                    lead_id=lead.id,
                    to_stage=rng.choice(STAGES),
                )
            elif action == "privacy":
                lead_id = rng.choice(lead_ids)
                lead = db.get(Lead, lead_id)
                assert lead is not None
                assert lead.agent_id is not None
                owner_user = next(u for u in owners if u.id == lead.agent_id)
                service.update_lead(
                    db,
                    principal=principal_of(owner_user),
                    lead_id=lead_id,
                    data=LeadUpdate(is_private=not lead.is_private),
                )
            elif action == "reassign":
                service.reassign_lead(
                    db,
                    principal=admin,
                    lead_id=rng.choice(lead_ids),
                    agent_id=rng.choice(agents).id,
                )
            elif action == "delete":
                lead_id = lead_ids.pop(rng.randrange(len(lead_ids)))
                db.delete(db.get(Lead, lead_id))
            elif action in ("blind", "blind_delete"):
                # A change written onto an expired lead, without reading it first.
                lead_id = rng.choice(lead_ids)
                lead = db.get(Lead, lead_id)
                assert lead is not None
                db.expire(lead)
                if action == "blind_delete":
                    lead_ids.remove(lead_id)
                    db.delete(lead)
                else:
                    field = rng.choice(["stage", "is_private", "agent_id"])
                    value = {
                        "stage": rng.choice(STAGES),
                        "is_private": rng.random() < 0.5,
                        "agent_id": rng.choice(agents).id,
                    }[field]
                    setattr(lead, field, value)
            else:  # a change that is rolled back leaves the counts as they were
                lead = db.get(Lead, rng.choice(lead_ids))
                assert lead is not None
                lead.stage, lead.is_private = "closed_won", False
                db.flush()
                db.rollback()
                assert kept(db, tenant_id) == before
                continue
            db.commit()
            done[action] = done.get(action, 0) + 1
        except DoorstepError:  # a refused move (the sales rules) changes nothing
            db.rollback()
            assert kept(db, tenant_id) == before
            done["refused"] = done.get("refused", 0) + 1
        assert kept(db, tenant_id) == counted(db, tenant_id), (step, action)
        assert tallies.drift(db, tenant_id=tenant_id) == {}
    # The sequence really exercised every kind of write.
    assert {"create", "move", "privacy", "reassign", "delete", "blind", "blind_delete"} <= set(
        done
    ), done


def test_a_bulk_insert_is_found_and_mended_by_the_nightly_check(
    db: Session, brokerage: Brokerage, caplog: pytest.LogCaptureFixture
) -> None:
    tenant_id, agent_id = brokerage.tenant.id, brokerage.agent.id
    db.execute(
        insert(Lead),
        [
            {"tenant_id": tenant_id, "agent_id": agent_id, "name": f"Imported {n}", "stage": s}
            for n, s in enumerate(["lead", "lead", "closed_won"])
        ],
    )
    db.commit()
    assert tallies.drift(db, tenant_id=tenant_id) == {
        (agent_id, "lead"): (0, 2),
        (agent_id, "closed_won"): (0, 1),
    }
    tasks.check_lead_counts(db)
    db.commit()
    assert tallies.drift(db, tenant_id=tenant_id) == {}
    assert kept(db, tenant_id) == {(agent_id, "lead"): 2, (agent_id, "closed_won"): 1}
    assert "lead counts drifted" in caplog.text


def test_deleting_an_agent_drops_their_counts(db: Session, brokerage: Brokerage) -> None:
    tenant_id = brokerage.tenant.id
    service.create_lead(
        db, principal=principal_of(brokerage.other_agent), data=LeadCreate(name="Mine")
    )
    db.commit()
    assert (brokerage.other_agent.id, "lead") in kept(db, tenant_id)
    db.delete(brokerage.other_agent)  # the lead stays, unassigned (ON DELETE SET NULL)
    db.commit()
    db.expire_all()
    assert kept(db, tenant_id) == counted(db, tenant_id)
