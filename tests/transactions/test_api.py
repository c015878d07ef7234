"""The transactions API: who may do what (a test per role), bad input, milestone moves with
their events and celebrations, settings."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from doorstep.platform.auth import Role
from doorstep.platform.db import utcnow
from doorstep.platform.events import Event, audience_allows
from doorstep.transactions.models import Celebration, Milestone
from tests.conftest import Brokerage, bearer, principal_of
from tests.transactions.conftest import deal_body

URL = "/api/v1/transactions/"


def milestone(client: TestClient, headers: dict[str, str], tx_id: int, **body: Any) -> Any:
    return client.put(f"{URL}{tx_id}/milestones", json=body, headers=headers)


def test_the_agent_opens_a_deal_with_the_plan_of_its_loan_type(deal: dict[str, Any]) -> None:
    types = [m["milestone_type"] for m in deal["milestones"]]
    assert types[0] == "contract_signed"
    assert types[-1] == "closing_day"
    assert len(types) == 8
    assert deal["milestones"][0]["status"] == "completed"
    assert deal["progress_percentage"] == "15.00"
    assert deal["escrow_status"] == "Active"
    assert deal["transaction_id"].startswith("TX-")
    assert deal["health_score"] == 100


def test_a_cash_deal_has_no_loan_milestones(client: TestClient, brokerage: Brokerage) -> None:
    response = client.post(
        URL, json=deal_body(brokerage, loan_type="cash"), headers=bearer(client, brokerage.agent)
    )
    assert response.status_code == 201, response.text
    types = {m["milestone_type"] for m in response.json()["milestones"]}
    assert types.isdisjoint({"loan_application", "appraisal_ordered", "loan_approval"})


@pytest.mark.parametrize("role", [Role.client, Role.analyst])
def test_clients_and_analysts_cannot_open_deals(
    client: TestClient, brokerage: Brokerage, role: Role
) -> None:
    user = brokerage.by_role(role)
    response = client.post(URL, json=deal_body(brokerage), headers=bearer(client, user))
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


def test_brokers_name_one_of_their_agents(
    client: TestClient, brokerage: Brokerage, rival: Brokerage
) -> None:
    headers = bearer(client, brokerage.broker)
    ok = client.post(
        URL, json=deal_body(brokerage, agent_id=brokerage.other_agent.id), headers=headers
    )
    assert ok.status_code == 201
    assert ok.json()["agent_id"] == brokerage.other_agent.id
    foreign = client.post(URL, json=deal_body(brokerage, agent_id=rival.agent.id), headers=headers)
    assert foreign.status_code == 422
    assert "not an agent of this brokerage" in foreign.json()["detail"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"target_closing_date": "2020-01-01"}, "target_closing_date must be after contract_date"),
        ({"loan_type": "bitcoin"}, "loan_type"),
        ({"purchase_price": "-5"}, "purchase_price"),
        ({"buyer_ids": [987654321]}, "not clients of this brokerage"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_deals_are_refused_and_change_nothing(
    client: TestClient, brokerage: Brokerage, db: Session, overrides: dict[str, Any], message: str
) -> None:
    headers = bearer(client, brokerage.agent)
    before = client.get(URL, headers=headers).json()["total"]
    response = client.post(URL, json=deal_body(brokerage, **overrides), headers=headers)
    assert response.status_code == 422
    assert message in response.text
    assert client.get(URL, headers=headers).json()["total"] == before


def test_a_contract_date_in_the_future_is_refused(client: TestClient, brokerage: Brokerage) -> None:
    later = utcnow().date() + timedelta(days=3)
    body = deal_body(
        brokerage, contract_date=str(later), target_closing_date=str(later + timedelta(days=30))
    )
    response = client.post(URL, json=body, headers=bearer(client, brokerage.agent))
    assert response.status_code == 422
    assert "in the future" in response.json()["detail"]


# --- who sees which deal: one test per role -------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "sees"),
    [
        (Role.admin, True),
        (Role.broker, True),
        (Role.agent, True),
        (Role.client, True),
        (Role.analyst, False),
    ],
)
def test_each_role_of_the_brokerage(
    client: TestClient, brokerage: Brokerage, deal: dict[str, Any], role: Role, sees: bool
) -> None:
    headers = bearer(client, brokerage.by_role(role))
    listed = client.get(URL, headers=headers).json()
    assert (deal["id"] in [t["id"] for t in listed["items"]]) is sees
    one = client.get(f"{URL}{deal['id']}", headers=headers)
    assert one.status_code == (200 if sees else 404)


def test_another_agent_and_another_tenant_get_404_everywhere(
    client: TestClient, brokerage: Brokerage, rival: Brokerage, deal: dict[str, Any]
) -> None:
    for user in (brokerage.other_agent, rival.admin, rival.agent, rival.client):
        headers = bearer(client, user)
        assert client.get(URL, headers=headers).json()["total"] == 0
        for path in ("", "/health", "/analytics", "/celebrations", "/events"):
            assert client.get(f"{URL}{deal['id']}{path}", headers=headers).status_code == 404, path
        moved = milestone(
            client, headers, deal["id"], milestone_type="loan_application", status="completed"
        )
        assert moved.status_code == 404


def test_the_buyer_reads_but_cannot_change_the_deal(
    client: TestClient, brokerage: Brokerage, deal: dict[str, Any]
) -> None:
    headers = bearer(client, brokerage.client)
    moved = milestone(
        client, headers, deal["id"], milestone_type="loan_application", status="completed"
    )
    assert moved.status_code == 403
    assert (
        client.patch(f"{URL}{deal['id']}", json={"notes": "x"}, headers=headers).status_code == 403
    )
    custom = {"title": "Yay", "message": "Party"}
    assert (
        client.post(f"{URL}{deal['id']}/celebrate", json=custom, headers=headers).status_code == 403
    )


def test_list_filters_sorts_and_paginates(client: TestClient, brokerage: Brokerage) -> None:
    headers = bearer(client, brokerage.agent)
    for n, loan in enumerate(["fha", "va", "cash"]):
        body = deal_body(
            brokerage,
            loan_type=loan,
            property_address=f"{n + 1} Elm Road",
            purchase_price=str(300000 + n * 1000),
        )
        assert client.post(URL, json=body, headers=headers).status_code == 201
    page = client.get(
        URL, params={"sort": "-purchase_price", "per_page": 2}, headers=headers
    ).json()
    assert page["total"] == 3
    assert len(page["items"]) == 2
    assert [t["purchase_price"] for t in page["items"]] == ["302000.00", "301000.00"]
    second = client.get(
        URL, params={"sort": "-purchase_price", "per_page": 2, "page": 2}, headers=headers
    )
    assert [t["loan_type"] for t in second.json()["items"]] == ["fha"]
    only_va = client.get(URL, params={"loan_type": "va"}, headers=headers).json()
    assert [t["loan_type"] for t in only_va["items"]] == ["va"]
    found = client.get(URL, params={"q": "2 elm"}, headers=headers).json()
    assert found["total"] == 1
    bad = client.get(URL, params={"sort": "password_hash"}, headers=headers)
    assert bad.status_code == 422
    assert "Cannot sort by" in bad.json()["detail"]
    assert client.get(URL, params={"per_page": 0}, headers=headers).status_code == 422


# --- milestones ------


def test_completing_a_milestone_moves_progress_and_celebrates_once(
    client: TestClient, brokerage: Brokerage, deal: dict[str, Any], db: Session
) -> None:
    headers = bearer(client, brokerage.agent)
    moved = milestone(
        client, headers, deal["id"], milestone_type="loan_application", status="completed"
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["progress_percentage"] == "30.00"
    keys = set(
        db.scalars(select(Celebration.trigger_key).where(Celebration.transaction_id == deal["id"]))
    )
    # Due two days from now, done today: ahead of schedule too.
    assert keys == {"milestone:loan_application", "progress:25", "ahead_of_schedule"}
    celebrations = client.get(
        f"{URL}{deal['id']}/celebrations", headers=bearer(client, brokerage.client)
    )
    assert {c["trigger_key"] for c in celebrations.json()} == keys
    # Starting and re-completing other milestones never fires the same trigger again.
    milestone(client, headers, deal["id"], milestone_type="home_inspection", status="in_progress")
    milestone(client, headers, deal["id"], milestone_type="home_inspection", status="completed")
    after = list(
        db.scalars(select(Celebration.trigger_key).where(Celebration.transaction_id == deal["id"]))
    )
    assert len(after) == len(set(after))
    assert "milestone:home_inspection" in after
    assert "progress:50" in after


def test_refused_transitions_explain_why_and_change_nothing(
    client: TestClient, brokerage: Brokerage, deal: dict[str, Any], db: Session
) -> None:
    headers = bearer(client, brokerage.agent)
    early = milestone(
        client, headers, deal["id"], milestone_type="loan_approval", status="completed"
    )
    assert early.status_code == 409
    assert early.json() == {
        "detail": "Loan Approval cannot be completed before Loan Application",
        "code": "conflict",
    }
    unknown = milestone(
        client, headers, deal["id"], milestone_type="moving_day", status="completed"
    )
    assert unknown.status_code == 422
    assert "milestone_type" in unknown.text
    bad_status = milestone(
        client, headers, deal["id"], milestone_type="title_search", status="done"
    )
    assert bad_status.status_code == 422
    future = str(utcnow().date() + timedelta(days=1))
    later = milestone(
        client,
        headers,
        deal["id"],
        milestone_type="loan_application",
        status="completed",
        actual_date=future,
    )
    assert later.status_code == 422
    assert "in the future" in later.json()["detail"]
    statuses = {
        m.milestone_type: m.status
        for m in db.scalars(select(Milestone).where(Milestone.transaction_id == deal["id"]))
    }
    assert statuses["loan_application"] == "pending"
    assert statuses["loan_approval"] == "pending"


def test_agent_only_events_never_reach_the_buyer(
    client: TestClient, brokerage: Brokerage, deal: dict[str, Any], db: Session
) -> None:
    headers = bearer(client, brokerage.agent)
    milestone(
        client,
        headers,
        deal["id"],
        milestone_type="loan_application",
        status="completed",
        notes="Lender asked for two more pay stubs",
    )
    staff_feed = client.get(f"{URL}{deal['id']}/events", headers=headers).json()["items"]
    buyer_feed = client.get(
        f"{URL}{deal['id']}/events", headers=bearer(client, brokerage.client)
    ).json()["items"]
    assert any(e["visibility"] == "agent" for e in staff_feed)
    assert all(e["visibility"] == "client" for e in buyer_feed)
    assert "pay stubs" not in str(buyer_feed)
    outbox = db.scalars(
        select(Event).where(Event.channels.contains(f"transaction:{deal['id']}"))
        if False
        else select(Event)
    ).all()
    mine = [e for e in outbox if f"transaction:{deal['id']}" in e.channels]
    note = next(e for e in mine if e.type == "milestone.note")
    assert not audience_allows(note.audience, principal_of(brokerage.client))
    assert audience_allows(note.audience, principal_of(brokerage.agent))
    assert audience_allows(note.audience, principal_of(brokerage.broker))
    assert not audience_allows(note.audience, principal_of(brokerage.other_agent))
    completed = next(e for e in mine if e.type == "milestone.completed")
    assert audience_allows(completed.audience, principal_of(brokerage.client))
    assert completed.data["progress_shown"] == 30


def test_the_buyer_acknowledges_feed_entries(
    client: TestClient, brokerage: Brokerage, deal: dict[str, Any]
) -> None:
    headers = bearer(client, brokerage.client)
    entry = client.get(f"{URL}{deal['id']}/events", headers=headers).json()["items"][0]
    done = client.post(f"{URL}{deal['id']}/events/{entry['id']}/acknowledge", headers=headers)
    assert done.status_code == 200
    assert done.json()["acknowledged_at"] is not None
    missing = client.post(f"{URL}{deal['id']}/events/999999/acknowledge", headers=headers)
    assert missing.status_code == 404


def test_closing_day_closes_the_escrow(
    client: TestClient, brokerage: Brokerage, deal: dict[str, Any]
) -> None:
    headers = bearer(client, brokerage.agent)
    for step in [
        "loan_application",
        "home_inspection",
        "appraisal_ordered",
        "loan_approval",
        "title_search",
        "final_walkthrough",
        "closing_day",
    ]:
        response = milestone(client, headers, deal["id"], milestone_type=step, status="completed")
        assert response.status_code == 200, (step, response.text)
    closed = response.json()
    assert closed["escrow_status"] == "Closed"
    assert closed["progress_percentage"] == "100.00"
    assert closed["actual_closing_date"] == str(utcnow().date())
    again = milestone(client, headers, deal["id"], milestone_type="closing_day", status="pending")
    assert again.status_code == 409


def test_cancelling_needs_a_reason(
    client: TestClient, brokerage: Brokerage, deal: dict[str, Any]
) -> None:
    headers = bearer(client, brokerage.agent)
    silent = client.patch(
        f"{URL}{deal['id']}", json={"escrow_status": "Cancelled"}, headers=headers
    )
    assert silent.status_code == 422
    body = {"escrow_status": "Cancelled", "cancellation_reason": "Financing fell through"}
    cancelled = client.patch(f"{URL}{deal['id']}", json=body, headers=headers)
    assert cancelled.status_code == 200
    assert cancelled.json()["escrow_status"] == "Cancelled"


# --- health, analytics, celebrations, engagement ------


def test_health_has_its_factors_weights_and_trend(
    client: TestClient, brokerage: Brokerage, deal: dict[str, Any]
) -> None:
    body = client.get(f"{URL}{deal['id']}/health", headers=bearer(client, brokerage.client)).json()
    assert set(body["factors"]) == {
        "on_schedule",
        "milestone_progress",
        "communication",
        "no_delays",
        "stakeholder_ready",
    }
    assert body["weights"]["on_schedule"] == 0.4
    assert body["trend"]
    assert body["trend"][0]["score"] == deal["health_score"]


def test_custom_celebrations_and_engagement(
    client: TestClient, brokerage: Brokerage, deal: dict[str, Any]
) -> None:
    agent, buyer = bearer(client, brokerage.agent), bearer(client, brokerage.client)
    made = client.post(
        f"{URL}{deal['id']}/celebrate",
        json={"title": "Happy move-in month!", "message": "We're close.", "animation": "sparkles"},
        headers=agent,
    )
    assert made.status_code == 201
    assert made.json()["trigger_type"] == "custom"
    cid = made.json()["id"]
    seen = client.post(
        f"{URL}{deal['id']}/celebrations/{cid}/engagement",
        json={"shown": True, "seconds_viewed": 4.5, "shared": True, "share_channel": "copy_link"},
        headers=buyer,
    )
    assert seen.status_code == 200
    assert seen.json()["shown_at"]
    assert seen.json()["seconds_viewed"] == 4.5
    assert seen.json()["shared"]
    staff = client.post(
        f"{URL}{deal['id']}/celebrations/{cid}/engagement", json={"shown": True}, headers=agent
    )
    assert staff.status_code == 403
    bad = client.post(
        f"{URL}{deal['id']}/celebrations/{cid}/engagement",
        json={"seconds_viewed": -1},
        headers=buyer,
    )
    assert bad.status_code == 422
    stats = client.get(f"{URL}{deal['id']}/analytics", headers=agent).json()
    assert stats["celebrations"]["shown"] == 1
    assert stats["celebrations"]["shared"] == 1


# --- tenant settings ------


WEIGHTS = {
    "on_schedule": 0.4,
    "milestone_progress": 0.3,
    "communication": 0.15,
    "no_delays": 0.1,
    "stakeholder_ready": 0.05,
}


@pytest.mark.parametrize("role", [Role.broker, Role.agent, Role.client, Role.analyst])
def test_only_admins_change_settings(client: TestClient, brokerage: Brokerage, role: Role) -> None:
    headers = bearer(client, brokerage.by_role(role))
    response = client.put(f"{URL}settings/health-weights", json=WEIGHTS, headers=headers)
    assert response.status_code == 403


def test_health_weights_must_sum_to_one(client: TestClient, brokerage: Brokerage) -> None:
    headers = bearer(client, brokerage.admin)
    bad = client.put(
        f"{URL}settings/health-weights", json=WEIGHTS | {"on_schedule": 0.6}, headers=headers
    )
    assert bad.status_code == 422
    assert "sum to 1" in bad.json()["detail"]
    negative = client.put(
        f"{URL}settings/health-weights", json=WEIGHTS | {"no_delays": -0.1}, headers=headers
    )
    assert negative.status_code == 422
    good = WEIGHTS | {"on_schedule": 0.3, "communication": 0.25}
    assert (
        client.put(f"{URL}settings/health-weights", json=good, headers=headers).status_code == 200
    )
    assert client.get(f"{URL}settings/health-weights", headers=headers).json() == good


def test_a_tenant_plan_is_validated_and_used(client: TestClient, brokerage: Brokerage) -> None:
    admin = bearer(client, brokerage.admin)
    plan = {
        "steps": [
            {
                "milestone_type": "contract_signed",
                "name": "Signed",
                "progress_weight": 20,
                "offset_days": 0,
            },
            {
                "milestone_type": "title_search",
                "name": "Title",
                "progress_weight": 30,
                "offset_days": 10,
                "requires": ["contract_signed"],
            },
            {
                "milestone_type": "closing_day",
                "name": "Keys!",
                "progress_weight": 50,
                "offset_days": 14,
                "requires": ["title_search"],
            },
        ]
    }
    assert client.put(f"{URL}settings/plans/cash", json=plan, headers=admin).status_code == 200
    broken = {"steps": plan["steps"][:2]}
    refused = client.put(f"{URL}settings/plans/cash", json=broken, headers=admin)
    assert refused.status_code == 422
    assert "must end with closing_day" in refused.json()["detail"]
    made = client.post(
        URL, json=deal_body(brokerage, loan_type="cash"), headers=bearer(client, brokerage.agent)
    )
    assert [m["name"] for m in made.json()["milestones"]] == ["Signed", "Title", "Keys!"]


def test_celebration_templates_are_per_tenant(
    client: TestClient, brokerage: Brokerage, rival: Brokerage
) -> None:
    body = {
        "title": "Cha-ching {percent}%",
        "message": "m",
        "animation": "fireworks",
        "duration": 3,
    }
    for variant in ("A", "B"):
        r = client.put(
            f"{URL}settings/celebrations/progress/{variant}",
            json=body,
            headers=bearer(client, brokerage.admin),
        )
        assert r.status_code == 200
    unknown = client.put(
        f"{URL}settings/celebrations/wedding/A", json=body, headers=bearer(client, brokerage.admin)
    )
    assert unknown.status_code == 422
    assert "progress" in unknown.json()["detail"]
    agent = bearer(client, brokerage.agent)
    made = client.post(URL, json=deal_body(brokerage), headers=agent).json()
    client.put(
        f"{URL}{made['id']}/milestones",
        json={"milestone_type": "loan_application", "status": "completed"},
        headers=agent,
    )
    titles = [
        c["title"] for c in client.get(f"{URL}{made['id']}/celebrations", headers=agent).json()
    ]
    assert "Cha-ching 25%" in titles


# --- predictions and the system status ------


def test_predictions_explain_the_risk(
    client: TestClient, brokerage: Brokerage, deal: dict[str, Any]
) -> None:
    body = client.get(f"{URL}{deal['id']}/predictions", headers=bearer(client, brokerage.agent))
    assert body.status_code == 200, body.text
    prediction = body.json()
    assert 0 <= prediction["delay_probability"] <= 1
    assert prediction["risk_level"] in {"low", "medium", "high"}
    low, mid, high = (
        prediction["closing_date_low"],
        prediction["predicted_closing_date"],
        prediction["closing_date_high"],
    )
    assert low <= mid <= high
    assert set(prediction["factors"]) >= {"timeline_pressure", "financial_complexity"}
    again = client.get(f"{URL}{deal['id']}/predictions", headers=bearer(client, brokerage.agent))
    assert again.json()["id"] == prediction["id"]  # nothing changed: the stored one is reused


@pytest.mark.parametrize(
    ("role", "status"),
    [
        (Role.admin, 200),
        (Role.broker, 200),
        (Role.agent, 403),
        (Role.client, 403),
        (Role.analyst, 403),
    ],
)
def test_system_status_reports_real_figures_to_admins_and_brokers(
    client: TestClient, brokerage: Brokerage, deal: dict[str, Any], role: Role, status: int
) -> None:
    response = client.get(f"{URL}system/status", headers=bearer(client, brokerage.by_role(role)))
    assert response.status_code == status
    if status == 200:
        body = response.json()
        assert body["database"]["status"] == "ok"
        assert body["database"]["ping_ms"] >= 0
        assert body["transactions"]["open"] == 1
        assert body["bus"]["kind"] in {"in-process", "redis"}
        assert "connected_clients" in body["realtime"]
        assert isinstance(body["models"], list)


def test_readiness_changes_are_history_for_staff_only(
    client: TestClient, brokerage: Brokerage, deal: dict[str, Any]
) -> None:
    agent = bearer(client, brokerage.agent)
    body = {"stakeholders": {"lender": False, "title company": True}}
    changed = client.patch(f"{URL}{deal['id']}", json=body, headers=agent)
    assert changed.status_code == 200
    assert changed.json()["health_factors"]["factors"]["stakeholder_ready"]["score"] == 0.5
    staff = client.get(f"{URL}{deal['id']}/events", headers=agent).json()["items"]
    assert staff[0]["event_type"] == "stakeholders.updated"
    assert staff[0]["data"]["stakeholders"] == {"lender": False, "title company": True}
    buyer = bearer(client, brokerage.client)
    feed = client.get(f"{URL}{deal['id']}/events", headers=buyer).json()["items"]
    assert "stakeholders.updated" not in {e["event_type"] for e in feed}


@pytest.mark.parametrize("status", ["delayed", "in_progress", "completed"])
def test_the_agents_notes_stay_internal_whatever_the_status(
    client: TestClient, brokerage: Brokerage, deal: dict[str, Any], status: str
) -> None:
    agent, buyer = bearer(client, brokerage.agent), bearer(client, brokerage.client)
    note = "Seller's lawyer is slow; do not tell the buyer yet"
    moved = milestone(
        client, agent, deal["id"], milestone_type="loan_application", status=status, notes=note
    )
    assert moved.status_code == 200, moved.text
    assert note in str(client.get(f"{URL}{deal['id']}/events", headers=agent).json())
    assert "lawyer" not in str(client.get(f"{URL}{deal['id']}/events", headers=buyer).json())
