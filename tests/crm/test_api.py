"""The CRM API: listings and their workflow, leads through the sales process with their tasks,
heat and messages, assignment, clients, appointments, CSV, and who may do what (per role)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from doorstep.crm import service, tasks
from doorstep.crm.models import Lead, LeadMessage, Task
from doorstep.platform.audit import AuditEntry
from doorstep.platform.db import utcnow
from doorstep.platform.notify import Notification
from tests.conftest import PASSWORD, Brokerage, Factory

# --- properties -------------------------------------------------------------------------------


def test_an_agent_lists_a_property_with_its_typed_attributes(
    api: Any, brokerage: Brokerage
) -> None:
    agent = api(brokerage.agent)
    home = agent.home()
    assert home["listing_agent_id"] == brokerage.agent.id
    assert home["status"] == "active"
    assert home["bedrooms"] == 3
    assert home["area_sqft"] == 1650
    assert home["features"] == ["garage", "pool"]
    assert agent.get(f"/api/properties/{home['id']}").json()["title"] == home["title"]


def test_bad_attributes_get_a_422_listing_every_field(api: Any, brokerage: Brokerage) -> None:
    agent = api(brokerage.agent)
    response = agent.post(
        "/api/properties/",
        {
            **_home_body(),
            "property_type": "commercial",
            "attributes": {"zoning": "C-2", "units": 0},
        },
    )
    assert response.status_code == 422
    body = response.json()
    assert any("units" in e for e in body["errors"])
    assert any("building_area_sqft" in e for e in body["errors"])
    assert agent.get("/api/properties/").json()["count"] == 0


@pytest.mark.parametrize(
    "patch",
    [
        {"price": "-5"},
        {"state": "California"},
        {"zip_code": "ABCDE"},
        {"property_type": "castle"},
        {"unknown": 1},
    ],
)
def test_bad_fields_are_refused(api: Any, brokerage: Brokerage, patch: dict[str, Any]) -> None:
    response = api(brokerage.agent).post("/api/properties/", {**_home_body(), **patch})
    assert response.status_code == 422, response.text


def _home_body() -> dict[str, Any]:
    from tests.crm.conftest import HOME

    return dict(HOME)


def test_property_list_is_drf_shaped_and_filters(api: Any, brokerage: Brokerage) -> None:
    agent = api(brokerage.agent)
    cheap = agent.home(price="200000.00", city="Fresno", features=["pool"])
    dear = agent.home(price="900000.00", zip_code="93311", features=["garage"])
    land = agent.home(
        property_type="land", price="150000.00", attributes={"acreage": 5}, features=[]
    )

    def ids(**params: Any) -> list[int]:
        page = agent.get("/api/properties/", **params).json()
        return [p["id"] for p in page["results"]]

    page = agent.get("/api/properties/", page_size=2, ordering="price").json()
    assert page["count"] == 3
    assert [p["id"] for p in page["results"]] == [land["id"], cheap["id"]]
    assert page["previous"] is None
    assert "page=2" in page["next"]
    assert page["next"].startswith("http")
    second = agent.client.get(page["next"], headers=agent.headers).json()
    assert [p["id"] for p in second["results"]] == [dear["id"]]
    assert second["next"] is None

    assert ids(min_price=300000) == [dear["id"]]
    assert ids(max_price=250000, ordering="-price") == [cheap["id"], land["id"]]
    assert ids(property_type="land") == [land["id"]]
    assert ids(city="fresno") == [cheap["id"]]
    assert ids(zip_code="9331") == [dear["id"]]
    assert ids(features="pool") == [cheap["id"]]
    assert ids(min_bedrooms=3, ordering="price") == [cheap["id"], dear["id"]]
    assert ids(search="sunny", ordering="price") == [land["id"], cheap["id"], dear["id"]]
    assert ids(search="nothing like it") == []
    assert ids(status="sold") == []
    for bad in ({"ordering": "secret"}, {"min_price": -1}, {"status": "gone"}, {"page": 0}):
        assert agent.get("/api/properties/", **bad).status_code == 422, bad
    assert agent.get("/api/properties/", min_price=10, max_price=5).status_code == 422


def test_listing_status_workflow_is_audited(api: Any, brokerage: Brokerage, db: Session) -> None:
    agent = api(brokerage.agent)
    home = agent.home()
    url = f"/api/properties/{home['id']}/status"
    sold = agent.post(url, {"status": "sold"})
    assert sold.status_code == 409
    assert "Active to Sold" in sold.json()["detail"]
    assert agent.post(url, {"status": "deposit_taken"}).json()["status"] == "deposit_taken"
    no_reason = agent.post(url, {"status": "active"})
    assert no_reason.status_code == 409
    assert "reason is required" in no_reason.json()["detail"]
    back = agent.post(url, {"status": "active", "reason": "buyer's financing fell through"})
    assert back.json()["status_reason"] == "buyer's financing fell through"
    changes = db.scalars(
        select(AuditEntry).where(
            AuditEntry.entity == "properties", AuditEntry.entity_id == str(home["id"])
        )
    ).all()
    statuses = [
        e.after["status"]
        for e in changes
        if e.after and e.before and e.after.get("status") != e.before.get("status")
    ]
    assert statuses == ["deposit_taken", "active"]
    assert changes[-1].actor_id == brokerage.agent.id


def test_who_may_change_a_listing(api: Any, brokerage: Brokerage, rival: Brokerage) -> None:
    home = api(brokerage.agent).home()
    url = f"/api/properties/{home['id']}"
    expected = {
        brokerage.agent: 200,  # the listing agent
        brokerage.broker: 200,  # the listing agent's broker
        brokerage.admin: 200,
        brokerage.other_agent: 403,  # sees the shared inventory, cannot change it
        brokerage.client: 404,
        brokerage.analyst: 404,
        rival.admin: 404,
    }
    for user, status in expected.items():
        response = api(user).patch(url, {"price": "455000.00"})
        assert response.status_code == status, (user.role, response.text)
    assert api(brokerage.other_agent).get(url).status_code == 200
    assert api(brokerage.client).get("/api/properties/").json()["count"] == 0


def test_listing_for_someone_else(api: Any, brokerage: Brokerage, rival: Brokerage) -> None:
    body = {**_home_body(), "listing_agent_id": brokerage.agent.id}
    assert api(brokerage.broker).post("/api/properties/", body).status_code == 201
    assert api(brokerage.admin).post("/api/properties/", body).status_code == 201
    assert api(brokerage.other_agent).post("/api/properties/", body).status_code == 403
    assert api(rival.admin).post("/api/properties/", body).status_code == 422
    assert api(brokerage.admin).post("/api/properties/", _home_body()).status_code == 422
    assert api(brokerage.client).post("/api/properties/", _home_body()).status_code == 422


# --- leads and the sales process ----------------------------------------------------------------


def test_a_new_lead_starts_in_lead_with_its_tasks(
    api: Any, brokerage: Brokerage, db: Session
) -> None:
    lead = api(brokerage.agent).lead(source="zillow_paid")
    assert lead["stage"] == "lead"
    assert lead["agent_id"] == brokerage.agent.id
    assert lead["is_private"] is False
    made = db.scalars(select(Task).where(Task.lead_id == lead["id"]).order_by(Task.due_at)).all()
    assert [t.title for t in made] == ["First call to Ana Ruiz", "Send Ana Ruiz a welcome e-mail"]
    assert all(t.assignee_id == brokerage.agent.id for t in made)
    assert api(brokerage.broker).lead()["is_private"] is True  # level 3: the broker's own


def move(agent: Any, lead_id: int, stage: str) -> Any:
    return agent.post(f"/api/leads/{lead_id}/transition", {"to_stage": stage})


def test_a_refused_move_is_a_409_listing_every_error(
    api: Any, brokerage: Brokerage, db: Session
) -> None:
    agent = api(brokerage.agent)
    lead = agent.lead()
    refused = move(agent, lead["id"], "offer_sent")
    assert refused.status_code == 409
    body = refused.json()
    assert body["code"] == "transition_refused"
    assert len(body["errors"]) == 2
    assert body["errors"][0].startswith("Invalid transition from Lead to Offer Sent.")
    assert body["errors"][1] == "Offer must be sent via WhatsApp before moving to this stage."
    assert agent.get(f"/api/leads/{lead['id']}").json()["stage"] == "lead"
    assert db.scalar(select(Task.id).where(Task.created_for_stage == "offer_sent")) is None
    unknown = move(agent, lead["id"], "Offer Sent")
    assert unknown.status_code == 409
    assert "Unknown stage" in unknown.json()["errors"][0]
    assert agent.post(f"/api/leads/{lead['id']}/transition", {}).status_code == 422


def test_the_whole_sales_flow(
    api: Any, brokerage: Brokerage, db: Session, capture_messages: object
) -> None:
    agent = api(brokerage.agent)
    lead = agent.lead(email=None)
    lead_id = lead["id"]
    assert move(agent, lead_id, "needs_analysis").status_code == 200
    assert move(agent, lead_id, "offer_sent").status_code == 409  # no WhatsApp offer yet

    # An SMS offer, or a WhatsApp message of another type, does not count.
    for channel, kind in (("sms", "offer_sent"), ("whatsapp", "follow_up")):
        sent = agent.post(
            f"/api/leads/{lead_id}/messages",
            {"channel": channel, "message_type": kind, "body": "Our offer: $440,000"},
        )
        assert sent.status_code == 202, sent.text
        tasks.send_message(db, message_id=sent.json()["id"])
        db.commit()
    assert move(agent, lead_id, "offer_sent").status_code == 409

    offer = agent.post(
        f"/api/leads/{lead_id}/messages",
        {"channel": "whatsapp", "message_type": "offer_sent", "body": "Our offer: $440,000"},
    ).json()
    assert offer["status"] == "queued"
    assert move(agent, lead_id, "offer_sent").status_code == 409  # queued is not sent
    tasks.send_message(db, message_id=offer["id"])
    db.commit()
    messages = agent.get(f"/api/leads/{lead_id}/messages").json()
    assert messages[0]["status"] == "captured"
    assert move(agent, lead_id, "offer_sent").status_code == 200
    assert move(agent, lead_id, "negotiation").status_code == 200

    no_email = move(agent, lead_id, "contract_signed")
    assert no_email.status_code == 409
    assert no_email.json()["errors"] == [
        "Contact details are required for the Contract Signed stage: email missing."
    ]
    agent.patch(f"/api/leads/{lead_id}", {"email": "ana@example.com"})
    assert move(agent, lead_id, "contract_signed").status_code == 200
    won = move(agent, lead_id, "closed_won").json()
    assert won["stage"] == "closed_won"
    assert won["closed_at"] is not None
    assert won["heat"] == "cold"
    stages = db.scalars(
        select(Task.created_for_stage).where(Task.lead_id == lead_id).distinct()
    ).all()
    assert set(stages) == {
        "lead",
        "needs_analysis",
        "offer_sent",
        "negotiation",
        "contract_signed",
        "closed_won",
    }
    kinds = [i["kind"] for i in agent.get(f"/api/leads/{lead_id}/interactions").json()]
    assert kinds.count("stage_change") == 5
    assert kinds.count("message") == 3


def test_messages_need_a_phone_and_a_configured_channel(
    api: Any, brokerage: Brokerage, db: Session, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    agent = api(brokerage.agent)
    no_phone = agent.lead(phone=None)
    refused = agent.post(f"/api/leads/{no_phone['id']}/messages", {"channel": "sms", "body": "Hi"})
    assert refused.status_code == 422
    assert "phone" in refused.json()["detail"]
    lead = agent.lead()
    for bad in ({"channel": "fax", "body": "x"}, {"channel": "sms", "body": ""}):
        assert agent.post(f"/api/leads/{lead['id']}/messages", bad).status_code == 422

    strict = settings.model_copy(update={"capture_messages": False})
    monkeypatch.setattr(tasks.jobs, "settings_of", lambda _s: strict)
    sent = agent.post(
        f"/api/leads/{lead['id']}/messages",
        {"channel": "whatsapp", "message_type": "offer_sent", "body": "Offer"},
    ).json()
    tasks.send_message(db, message_id=sent["id"])
    db.commit()
    message = db.get(LeadMessage, sent["id"])
    assert message is not None
    assert message.status == "failed"
    assert "whatsapp channel is not configured" in (message.error or "")


def test_interactions_warm_a_lead(api: Any, brokerage: Brokerage) -> None:
    agent = api(brokerage.agent)
    lead = agent.lead()
    # Just created: fresh in its stage (freshness 1) but never contacted (engagement 0).
    assert lead["heat_score"] == 30.0
    assert lead["heat"] == "warm"
    for kind in ("call", "email", "meeting"):
        made = agent.post(f"/api/leads/{lead['id']}/interactions", {"kind": kind, "summary": "x"})
        assert made.status_code == 201
    warmed = agent.get(f"/api/leads/{lead['id']}").json()
    assert warmed["interaction_count"] == 3
    assert warmed["heat"] == "hot"
    assert warmed["heat_score"] == pytest.approx(100 * (0.7 * 0.75 + 0.3), abs=0.2)
    assert warmed["first_response_at"] is not None
    bad = agent.post(f"/api/leads/{lead['id']}/interactions", {"kind": "stage_change"})
    assert bad.status_code == 422


def test_the_nightly_pass_cools_untouched_leads(
    api: Any, brokerage: Brokerage, db: Session
) -> None:
    lead = api(brokerage.agent).lead()
    db.get(Lead, lead["id"]).stage_entered_at = utcnow() - timedelta(days=28)  # type: ignore[union-attr]
    db.commit()
    assert service.refresh_all_heat(db, tenant_id=brokerage.tenant.id) >= 1
    cooled = db.get(Lead, lead["id"])
    assert cooled is not None
    assert cooled.heat_score == pytest.approx(100 * 0.3 * 0.25, abs=0.1)


def test_lead_filters_sorting_and_pagination(api: Any, brokerage: Brokerage) -> None:
    agent = api(brokerage.agent)
    made = [
        agent.lead(name=f"Lead {n:02d}", source="referral" if n % 2 else "website")
        for n in range(7)
    ]
    page = agent.get("/api/leads/", page_size=3, ordering="name").json()
    assert page["count"] == 7
    assert [r["name"] for r in page["results"]] == ["Lead 00", "Lead 01", "Lead 02"]
    assert agent.get("/api/leads/", source="referral").json()["count"] == 3
    assert agent.get("/api/leads/", search="lead 0").json()["count"] == 7
    assert agent.get("/api/leads/", stage="lead", heat="warm").json()["count"] == 7
    assert agent.get("/api/leads/", stage="closed_won").json()["count"] == 0
    last = agent.get("/api/leads/", page=3, page_size=3).json()
    assert len(last["results"]) == 1
    assert last["next"] is None
    assert made[0]["id"] in [
        r["id"] for r in agent.get("/api/leads/", page_size=200).json()["results"]
    ]
    for bad in ({"heat": "lukewarm"}, {"ordering": "password"}, {"page_size": 500}):
        assert agent.get("/api/leads/", **bad).status_code == 422, bad


def test_who_sees_which_leads(api: Any, brokerage: Brokerage, rival: Brokerage) -> None:
    mine = api(brokerage.agent).lead(name="Agent Lead")
    brokers = api(brokerage.broker).lead(name="Broker Lead")
    url = "/api/leads/{}"
    expected = {
        # (user, lead): status
        (brokerage.agent, "agent"): 200,
        (brokerage.other_agent, "agent"): 404,  # agents never see one another's leads
        (brokerage.broker, "agent"): 404,  # level 2: metrics only, never the record
        (brokerage.admin, "agent"): 200,
        (brokerage.client, "agent"): 404,
        (brokerage.analyst, "agent"): 404,
        (rival.admin, "agent"): 404,
        (brokerage.broker, "broker"): 200,
        (brokerage.agent, "broker"): 404,  # level 3: the broker's pipeline is private
    }
    for (user, owner), status in expected.items():
        lead = mine if owner == "agent" else brokers
        caller = api(user)
        assert caller.get(url.format(lead["id"])).status_code == status, (user.role, owner)
        moved = move(caller, lead["id"], "needs_analysis")
        assert moved.status_code == (status if status == 404 else moved.status_code)
        listed = [r["id"] for r in caller.get("/api/leads/", page_size=200).json()["results"]]
        assert (lead["id"] in listed) is (status == 200), (user.role, owner)
        exported = caller.client.get("/api/leads/export", headers=caller.headers).text
        assert (lead["name"] in exported) is (status == 200), (user.role, owner)


def test_clients_and_analysts_cannot_add_leads(api: Any, brokerage: Brokerage) -> None:
    for user in (brokerage.client, brokerage.analyst):
        assert api(user).post("/api/leads/", {"name": "Someone"}).status_code == 403
    agent = api(brokerage.agent)
    other = agent.post("/api/leads/", {"name": "X Y", "agent_id": brokerage.other_agent.id})
    assert other.status_code == 403
    for bad in ({"name": ""}, {"name": "Ok", "email": "nope"}, {"name": "Ok", "phone": "abc"}):
        assert agent.post("/api/leads/", bad).status_code == 422, bad


def test_kanban_board_and_card_positions(api: Any, brokerage: Brokerage) -> None:
    agent = api(brokerage.agent)
    first, second, third = (agent.lead(name=f"Card {n}") for n in range(3))
    moved = agent.post(
        f"/api/leads/{second['id']}/transition", {"to_stage": "needs_analysis", "position": 0}
    )
    assert moved.status_code == 200
    assert agent.put(f"/api/leads/{third['id']}/position", {"position": 0}).status_code == 200
    board = agent.get("/api/leads/board").json()
    by_stage = {c["stage"]: c for c in board}
    assert [c["stage"] for c in board][:2] == ["lead", "needs_analysis"]
    assert by_stage["lead"]["leads"][0]["id"] == third["id"]
    assert {card["id"] for card in by_stage["lead"]["leads"]} == {first["id"], third["id"]}
    assert [card["id"] for card in by_stage["needs_analysis"]["leads"]] == [second["id"]]
    assert by_stage["lead"]["allowed_targets"] == ["needs_analysis", "closed_lost"]
    assert by_stage["lead"]["total"] == 2
    assert (
        api(brokerage.other_agent).get("/api/leads/board", agent_id=brokerage.agent.id).status_code
        == 403
    )
    admin_view = api(brokerage.admin).get("/api/leads/board", agent_id=brokerage.agent.id)
    assert admin_view.status_code == 200
    assert agent.put(f"/api/leads/{first['id']}/position", {"position": -1}).status_code == 422


# --- tasks ------------------------------------------------------------------------------------


def test_overdue_tasks_are_marked_and_their_owner_told_once(
    api: Any, brokerage: Brokerage, db: Session
) -> None:
    agent = api(brokerage.agent)
    lead = agent.lead()
    later = utcnow() + timedelta(days=2)
    assert service.mark_overdue(db, now=later) == 2
    db.commit()
    overdue = agent.get("/api/tasks/", status="overdue").json()
    assert overdue["count"] == 2
    assert overdue["results"][0]["lead_name"] == lead["name"]
    notes = db.scalars(select(Notification).where(Notification.user_id == brokerage.agent.id)).all()
    assert [n.title for n in notes] == ["2 tasks overdue"]
    assert service.mark_overdue(db, now=later) == 0  # already overdue: not told again
    task_id = overdue["results"][0]["id"]
    done = agent.patch(f"/api/tasks/{task_id}", {"status": "done"})
    assert done.json()["status"] == "done"
    assert agent.patch(f"/api/tasks/{task_id}", {"status": "overdue"}).status_code == 422
    assert (
        api(brokerage.other_agent).patch(f"/api/tasks/{task_id}", {"status": "done"}).status_code
        == 404
    )
    assert agent.get("/api/tasks/", status="pending").json()["count"] == 0


def test_a_task_by_hand(api: Any, brokerage: Brokerage) -> None:
    agent = api(brokerage.agent)
    due = (utcnow() + timedelta(hours=3)).isoformat()
    made = agent.post("/api/tasks/", {"title": "Print flyers", "kind": "follow_up", "due_at": due})
    assert made.status_code == 201
    assert made.json()["status"] == "pending"
    naive = agent.post("/api/tasks/", {"title": "Print flyers", "due_at": "2026-12-01T09:00:00"})
    assert naive.status_code == 422
    other = api(brokerage.other_agent).lead()
    foreign = agent.post("/api/tasks/", {"title": "Spy", "due_at": due, "lead_id": other["id"]})
    assert foreign.status_code == 404


# --- assignment -------------------------------------------------------------------------------


def test_an_admins_lead_goes_to_the_least_loaded_agent_and_says_why(
    api: Any, brokerage: Brokerage, db: Session
) -> None:
    for _ in range(2):
        api(brokerage.agent).lead()
    admin = api(brokerage.admin)
    lead = admin.lead(name="Web Form Lead")
    assert lead["agent_id"] == brokerage.other_agent.id
    log = admin.get("/api/assignments/", lead_id=lead["id"]).json()
    assert log["count"] == 1
    entry = log["results"][0]
    assert entry["strategy"] == "workload"
    assert entry["agent_name"] == brokerage.other_agent.full_name
    assert "lowest workload score" in entry["reason"]
    assert {c["agent_id"] for c in entry["candidates"]} == {
        brokerage.agent.id,
        brokerage.other_agent.id,
    }
    tasks_of_new = db.scalars(select(Task.assignee_id).where(Task.lead_id == lead["id"])).all()
    assert set(tasks_of_new) == {brokerage.other_agent.id}
    told = db.scalars(
        select(Notification.title).where(Notification.user_id == brokerage.other_agent.id)
    ).all()
    assert "New lead: Web Form Lead" in told


def test_paused_agents_get_no_leads(api: Any, brokerage: Brokerage) -> None:
    admin = api(brokerage.admin)
    paused = admin.put(
        f"/api/agents/{brokerage.other_agent.id}/pause", {"paused": True, "reason": "vacation"}
    )
    assert paused.status_code == 200
    for _ in range(3):
        assert admin.lead()["agent_id"] == brokerage.agent.id
    assert (
        api(brokerage.agent)
        .put(f"/api/agents/{brokerage.other_agent.id}/pause", {"paused": False})
        .status_code
        == 403
    )
    assert (
        api(brokerage.other_agent)
        .put(f"/api/agents/{brokerage.other_agent.id}/pause", {"paused": False})
        .status_code
        == 200
    )
    assert admin.lead()["agent_id"] == brokerage.other_agent.id


def test_round_robin_and_rules_strategies(api: Any, brokerage: Brokerage) -> None:
    admin = api(brokerage.admin)
    settings_url = "/api/crm/settings/assignment"
    assert admin.put(settings_url, {"chain": ["round_robin"]}).status_code == 200
    owners = [admin.lead()["agent_id"] for _ in range(4)]
    ordered = sorted([brokerage.agent.id, brokerage.other_agent.id])
    assert owners == ordered * 2

    rules_config = {
        "chain": ["rules", "workload"],
        "rules": [
            {
                "name": "Zillow to Jayden",
                "sources": ["zillow_paid"],
                "agent_ids": [brokerage.agent.id],
            }
        ],
    }
    assert admin.put(settings_url, rules_config).status_code == 200
    for _ in range(3):
        assert admin.lead(source="zillow_paid")["agent_id"] == brokerage.agent.id
    log = admin.get("/api/assignments/", page_size=1).json()["results"][0]
    assert log["strategy"] == "rules"
    assert "Zillow to Jayden" in log["reason"]

    bad = [
        {"chain": []},
        {"chain": ["coin_flip"]},
        {"rules": [{"name": "x", "agent_ids": [999999]}]},
        {"rules": [{"name": "x", "agent_ids": [brokerage.client.id]}]},
    ]
    for body in bad:
        assert admin.put(settings_url, body).status_code == 422, body
    assert api(brokerage.broker).put(settings_url, {"chain": ["workload"]}).status_code == 403
    assert admin.get(settings_url).json()["rules"][0]["name"] == "Zillow to Jayden"


def test_admins_reassign_and_read_the_log(api: Any, brokerage: Brokerage) -> None:
    lead = api(brokerage.agent).lead()
    admin = api(brokerage.admin)
    moved = admin.post(f"/api/leads/{lead['id']}/assign", {"agent_id": brokerage.other_agent.id})
    assert moved.json()["agent_id"] == brokerage.other_agent.id
    assert api(brokerage.agent).get(f"/api/leads/{lead['id']}").status_code == 404
    assert (
        admin.get("/api/assignments/", lead_id=lead["id"])
        .json()["results"][0]["reason"]
        .startswith("assigned by")
    )
    for user in (brokerage.agent, brokerage.broker, brokerage.client):
        assert api(user).get("/api/assignments/").status_code == 403
        assert api(user).post(f"/api/leads/{lead['id']}/assign", {}).status_code == 403
    bad = admin.post(f"/api/leads/{lead['id']}/assign", {"agent_id": brokerage.client.id})
    assert bad.status_code == 422


def test_agent_performance_for_admins(api: Any, brokerage: Brokerage) -> None:
    agent = api(brokerage.agent)
    lead = agent.lead()
    agent.post(f"/api/leads/{lead['id']}/interactions", {"kind": "call"})
    move(agent, lead["id"], "closed_lost")
    rows = {r["agent_id"]: r for r in api(brokerage.admin).get("/api/agents/performance").json()}
    mine = rows[brokerage.agent.id]
    assert mine["lost"] == 1
    assert mine["conversion_rate"] == 0.0
    assert mine["responded"] == 1
    assert mine["median_first_response_hours"] is not None
    assert rows[brokerage.other_agent.id]["conversion_rate"] is None
    assert api(brokerage.broker).get("/api/agents/performance").status_code == 403


def test_the_sales_process_is_tenant_data(api: Any, brokerage: Brokerage) -> None:
    admin = api(brokerage.admin)
    url = "/api/crm/settings/sales-process"
    default = admin.get(url).json()
    assert default["stages"][0]["name"] == "lead"
    custom = {
        "stages": [
            {"name": "lead", "label": "New", "next": ["closed_won"]},
            {"name": "closed_won", "label": "Won", "kind": "won"},
            {"name": "closed_lost", "label": "Lost", "kind": "lost"},
        ]
    }
    assert admin.put(url, custom).status_code == 200
    agent = api(brokerage.agent)
    lead = agent.lead()
    assert move(agent, lead["id"], "closed_won").status_code == 200
    # A process without the stage a lead sits in is refused until the lead moves.
    lead_two = agent.lead()
    fresh = {"name": "fresh", "label": "Fresh", "next": ["closed_won"]}
    without_lead = {"stages": [fresh, *custom["stages"][1:]]}
    refused = admin.put(url, without_lead)
    assert refused.status_code == 409
    assert "lead (1 leads)" in refused.json()["detail"]
    assert lead_two["stage"] == "lead"
    assert api(brokerage.agent).put(url, custom).status_code == 403
    assert admin.put(url, {"stages": [{"name": "only", "label": "Only"}]}).status_code == 422


# --- CSV ---------------------------------------------------------------------------------------

GOOD_CSV = (
    "name,email,phone,source,budget,zip_code\n"
    'Ana Ruiz,ana@example.com,+1 661 555 0101,Zillow Paid,"$450,000",93301\n'
    "Bo Li,,,referral,,\n"
)
BAD_CSV = GOOD_CSV + "X,not-an-email,,carrier pigeon,lots,1\n"


def upload(caller: Any, text: str, **form: Any) -> Any:
    return caller.client.post(
        "/api/leads/import",
        files={"file": ("leads.csv", text.encode(), "text/csv")},
        data={k: str(v).lower() for k, v in form.items()},
        headers=caller.headers,
    )


def test_csv_import_previews_then_imports(api: Any, brokerage: Brokerage) -> None:
    agent = api(brokerage.agent)
    preview = upload(agent, BAD_CSV)
    assert preview.status_code == 200
    report = preview.json()
    assert (report["rows"], report["valid"], report["invalid"], report["imported"]) == (3, 2, 1, 0)
    problem = report["problems"][0]
    assert problem["line"] == 4
    assert any("budget" in e for e in problem["errors"])
    assert any("email" in e for e in problem["errors"])
    assert any("source" in e for e in problem["errors"])
    assert any("name" in e for e in problem["errors"])
    blocked = upload(agent, BAD_CSV, dry_run=False)
    assert blocked.status_code == 422
    assert agent.get("/api/leads/").json()["count"] == 0
    done = upload(agent, BAD_CSV, dry_run=False, only_valid=True).json()
    assert done["imported"] == 2
    leads = agent.get("/api/leads/", ordering="name").json()["results"]
    assert [(x["name"], x["source"], x["budget"]) for x in leads] == [
        ("Ana Ruiz", "zillow_paid", "450000.00"),
        ("Bo Li", "referral", None),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"email\nx@example.com\n", "name"),
        (b"name,password\nA B,x\n", "Unknown column"),
        (b"\xff\xfe\x00n", "UTF-8"),
        (b"name\n", "no rows"),
    ],
)
def test_csv_import_refusals(api: Any, brokerage: Brokerage, content: bytes, message: str) -> None:
    agent = api(brokerage.agent)
    response = agent.client.post(
        "/api/leads/import",
        files={"file": ("leads.csv", content, "text/csv")},
        data={"dry_run": "false"},
        headers=agent.headers,
    )
    assert response.status_code == 422
    assert message in response.json()["detail"]


def test_csv_export_neutralizes_formulas(api: Any, brokerage: Brokerage) -> None:
    agent = api(brokerage.agent)
    agent.lead(name="=HYPERLINK(1)", phone="+1 661 555 0101")
    text = agent.client.get("/api/leads/export", headers=agent.headers).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0]["name"] == "'=HYPERLINK(1)"
    assert rows[0]["phone"] == "'+1 661 555 0101"


# --- clients and appointments ------------------------------------------------------------------


def test_clients_are_level_one_for_the_broker(
    api: Any, brokerage: Brokerage, factory: Factory
) -> None:
    made = api(brokerage.agent).post(
        "/api/clients/", {"name": "Sarah Johnson", "source": "referral"}
    )
    assert made.status_code == 201
    client_id = made.json()["id"]
    expected = {
        brokerage.agent: 200,
        brokerage.broker: 200,  # full details of the team's clients
        brokerage.admin: 200,
        brokerage.other_agent: 404,
        brokerage.client: 404,
        brokerage.analyst: 404,
    }
    for user, status in expected.items():
        assert api(user).get(f"/api/clients/{client_id}").status_code == status, user.role
    assert (
        api(brokerage.broker).patch(f"/api/clients/{client_id}", {"status": "inactive"}).status_code
        == 403
    )
    assert (
        api(brokerage.agent)
        .patch(f"/api/clients/{client_id}", {"status": "inactive"})
        .json()["status"]
        == "inactive"
    )
    assert api(brokerage.admin).post("/api/clients/", {"name": "No Owner"}).status_code == 422
    assert api(brokerage.client).post("/api/clients/", {"name": "Me Me"}).status_code == 403


def test_appointments_are_private_and_record_outcomes(api: Any, brokerage: Brokerage) -> None:
    agent = api(brokerage.agent)
    lead = agent.lead()
    start = utcnow() + timedelta(days=1)
    body = {
        "title": "Viewing 456 Oak St",
        "start_time": start.isoformat(),
        "end_time": (start + timedelta(hours=1)).isoformat(),
        "location": "456 Oak St",
        "lead_id": lead["id"],
    }
    made = agent.post("/api/appointments/", body)
    assert made.status_code == 201
    appointment = made.json()
    assert appointment["is_private"] is True
    too_early = agent.patch(f"/api/appointments/{appointment['id']}", {"status": "completed"})
    assert too_early.status_code == 422
    assert (
        agent.patch(
            f"/api/appointments/{appointment['id']}", {"status": "cancelled", "outcome": "rain"}
        ).json()["status"]
        == "cancelled"
    )
    window = agent.get(
        "/api/appointments/",
        start=utcnow().isoformat(),
        end=(utcnow() + timedelta(days=2)).isoformat(),
    ).json()
    assert window["count"] == 1
    for user in (brokerage.broker, brokerage.other_agent, brokerage.client):
        assert api(user).get(f"/api/appointments/{appointment['id']}").status_code == 404
        assert api(user).get("/api/appointments/").json()["count"] == 0
    backwards = {**body, "end_time": (start - timedelta(hours=1)).isoformat()}
    assert agent.post("/api/appointments/", backwards).status_code == 422
    assert api(brokerage.admin).post("/api/appointments/", body).status_code == 403


# --- the seed's refresh-and-retry interceptor -------------------------------------------------


def test_an_expired_token_is_refreshed_and_the_request_retried(
    client: Any, brokerage: Brokerage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seed 003's PropertyService: on a 401 it refreshes the token and retries the request."""
    from doorstep.platform import auth

    issued_at = utcnow() - timedelta(hours=1)
    with monkeypatch.context() as past:
        past.setattr(auth, "utcnow", lambda: issued_at)
        pair = client.post(
            "/api/auth/token", data={"username": brokerage.agent.email, "password": PASSWORD}
        ).json()
    state = {"access": pair["access_token"], "refresh": pair["refresh_token"], "refreshes": 0}

    def request(url: str) -> Any:
        headers = {"Authorization": f"Bearer {state['access']}"}
        response = client.get(url, headers=headers)
        if response.status_code == 401:  # the interceptor
            renewed = client.post("/api/auth/refresh", json={"refresh_token": state["refresh"]})
            assert renewed.status_code == 200, renewed.text
            state["access"] = renewed.json()["access_token"]
            state["refresh"] = renewed.json()["refresh_token"]
            state["refreshes"] += 1
            response = client.get(url, headers={"Authorization": f"Bearer {state['access']}"})
        return response

    expired = client.get(
        "/api/properties/", headers={"Authorization": f"Bearer {pair['access_token']}"}
    )
    assert expired.status_code == 401
    assert expired.json()["detail"] == "Access token expired"
    page = request("/api/properties/?page_size=5")
    assert page.status_code == 200
    assert set(page.json()) == {"count", "next", "previous", "results"}
    assert state["refreshes"] == 1
    assert request("/api/leads/").status_code == 200
    assert state["refreshes"] == 1  # the new token is still fresh


def test_a_whatsapp_offer_goes_out_through_the_cloud_api(
    api: Any, brokerage: Brokerage, db: Session, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    """The real WhatsApp transport against a local server that speaks the Cloud API."""
    from tests.fakes.whatsapp import FakeWhatsApp

    agent = api(brokerage.agent)
    lead = agent.lead(phone="+1 (661) 555-0101")
    move(agent, lead["id"], "needs_analysis")
    fake = FakeWhatsApp("wa-token", "1234567890")
    with fake.running():
        configured = settings.model_copy(
            update={
                "capture_messages": False,
                "whatsapp_token": "wa-token",
                "whatsapp_phone_number_id": "1234567890",
                "whatsapp_base_url": f"{fake.url}/v21.0",
            }
        )
        monkeypatch.setattr(tasks.jobs, "settings_of", lambda _s: configured)
        sent = agent.post(
            f"/api/leads/{lead['id']}/messages",
            {"channel": "whatsapp", "message_type": "offer_sent", "body": "Offer: $440,000"},
        ).json()
        tasks.send_message(db, message_id=sent["id"])
        db.commit()
    [request] = fake.messages
    assert request["to"] == "16615550101"
    assert "Offer: $440,000" in request["text"]["body"]
    message = agent.get(f"/api/leads/{lead['id']}/messages").json()[0]
    assert message["status"] == "sent"
    assert move(agent, lead["id"], "offer_sent").status_code == 200
