"""The outbox: events are appended in the transaction and announced only after commit."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from doorstep.platform import events
from doorstep.platform.auth import Role
from doorstep.platform.events import BUS_KEY, Audience, Event, audience_allows
from tests.conftest import Brokerage, bearer, principal_of


@dataclass
class RecordingBus:
    announced: list[tuple[int, int]] = field(default_factory=list)

    def announce(self, tenant_id: int, last_id: int) -> None:
        self.announced.append((tenant_id, last_id))


def test_rollback_announces_nothing_and_leaves_no_row(db: Session, brokerage: Brokerage) -> None:
    bus = RecordingBus()
    db.info[BUS_KEY] = bus
    row = events.record(
        db, tenant_id=brokerage.tenant.id, channels=["tenant:1"], type="x.happened", data={}
    )
    event_id = row.id
    db.rollback()
    assert bus.announced == []
    assert db.get(Event, event_id) is None


def test_commit_announces_the_newest_id_per_tenant(
    db: Session, brokerage: Brokerage, rival: Brokerage
) -> None:
    bus = RecordingBus()
    db.info[BUS_KEY] = bus
    ids = [
        events.record(db, tenant_id=t.id, channels=[f"tenant:{t.id}"], type="x", data={"n": n}).id
        for n, t in enumerate([brokerage.tenant, brokerage.tenant, rival.tenant])
    ]
    assert bus.announced == []  # nothing before commit
    db.commit()
    assert sorted(bus.announced) == sorted(
        [(brokerage.tenant.id, ids[1]), (rival.tenant.id, ids[2])]
    )
    assert ids == sorted(ids)


def test_a_savepoint_is_not_a_commit(db: Session, brokerage: Brokerage) -> None:
    """SQLAlchemy fires after_commit/after_rollback for SAVEPOINTs too: neither may announce
    early nor forget the outer transaction's events."""
    bus = RecordingBus()
    db.info[BUS_KEY] = bus
    tenant = brokerage.tenant.id
    first = events.record(db, tenant_id=tenant, channels=["tenant:1"], type="a.b", data={})
    with db.begin_nested():
        second = events.record(db, tenant_id=tenant, channels=["tenant:1"], type="a.b", data={})
    assert bus.announced == []  # released, not committed
    try:
        with db.begin_nested():
            raise LookupError("a refused step inside the request")
    except LookupError:
        pass
    db.commit()
    assert bus.announced == [(tenant, max(first.id, second.id))]


def test_api_changes_append_events_with_their_audience(
    client: TestClient, brokerage: Brokerage, db: Session
) -> None:
    response = client.patch(
        f"/api/users/{brokerage.agent.id}",
        json={"phone": "+15551234567"},
        headers=bearer(client, brokerage.admin),
    )
    assert response.status_code == 200
    row = db.scalars(select(Event).order_by(Event.id.desc())).first()
    assert row is not None
    assert row.type == "user.updated"
    assert row.tenant_id == brokerage.tenant.id
    assert set(row.channels) == {f"tenant:{brokerage.tenant.id}", f"user:{brokerage.agent.id}"}
    assert row.data["phone"] == "+15551234567"
    assert audience_allows(row.audience, principal_of(brokerage.admin))
    assert audience_allows(row.audience, principal_of(brokerage.agent))
    for other in (brokerage.client, brokerage.broker, brokerage.other_agent, brokerage.analyst):
        assert not audience_allows(row.audience, principal_of(other))


def test_failed_requests_append_no_event(
    client: TestClient, brokerage: Brokerage, db: Session
) -> None:
    before = db.scalar(select(Event.id).order_by(Event.id.desc()).limit(1))
    response = client.patch(
        f"/api/users/{brokerage.admin.id}",
        json={"is_active": False},
        headers=bearer(client, brokerage.admin),
    )
    assert response.status_code == 422
    assert db.scalar(select(Event.id).order_by(Event.id.desc()).limit(1)) == before


def test_audiences(brokerage: Brokerage) -> None:
    staff = Audience.staff().to_json()
    assert not audience_allows(staff, principal_of(brokerage.client))
    for role in (Role.agent, Role.broker, Role.admin):
        assert audience_allows(staff, principal_of(brokerage.by_role(role)))
    parties = Audience.parties(
        [brokerage.client.id, brokerage.agent.id], roles=[Role.broker]
    ).to_json()
    assert audience_allows(parties, principal_of(brokerage.client))
    assert audience_allows(parties, principal_of(brokerage.broker))
    assert not audience_allows(parties, principal_of(brokerage.other_agent))
    assert audience_allows(Audience.everyone().to_json(), principal_of(brokerage.analyst))
