"""Broker notices (seed 004): which events notify the broker, with what, on which channels,
above which threshold — and that leads and appointments never do."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from doorstep.platform.db import utcnow
from doorstep.platform.notify import Delivery, Notification
from tests.conftest import Brokerage, bearer
from tests.crm.conftest import HOME
from tests.transactions.conftest import deal_body

NOTICES = "/api/broker/notifications"
SETTINGS = "/api/broker/notification-settings"


def notices_of(db: Session, user_id: int) -> list[Notification]:
    return list(
        db.scalars(
            select(Notification).where(Notification.user_id == user_id).order_by(Notification.id)
        )
    )


def open_escrow(client: TestClient, brokerage: Brokerage, **overrides: Any) -> Any:
    response = client.post(
        "/api/v1/transactions/",
        json=deal_body(brokerage, **overrides),
        headers=bearer(client, brokerage.agent),
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_a_new_escrow_notifies_the_broker_with_the_seeds_content(
    client: TestClient, db: Session, brokerage: Brokerage
) -> None:
    deal = open_escrow(client, brokerage)
    [notice] = notices_of(db, brokerage.broker.id)
    assert notice.type == "escrow.created"
    assert notice.title == f"New escrow: {brokerage.agent.full_name}"
    assert "12 Oak Street, Austin" in notice.body
    assert "$450,000" in notice.body
    assert notice.link == f"/transactions/{deal['id']}"
    listed = client.get(
        NOTICES, params={"unread": "true"}, headers=bearer(client, brokerage.broker)
    )
    assert listed.json()["notifications"][0]["title"] == notice.title
    assert notices_of(db, brokerage.other_agent.id) == []


def test_clients_and_listings_notify_leads_and_appointments_never(
    client: TestClient, db: Session, brokerage: Brokerage
) -> None:
    agent = bearer(client, brokerage.agent)
    made = client.post("/api/clients/", json={"name": "Sarah Johnson"}, headers=agent)
    assert made.status_code == 201
    home = client.post("/api/properties/", json=HOME, headers=agent)
    assert home.status_code == 201
    lead = client.post("/api/leads/", json={"name": "Quiet Lead"}, headers=agent).json()
    start = utcnow() + timedelta(days=1)
    client.post(
        "/api/appointments/",
        json={
            "title": "Viewing",
            "start_time": start.isoformat(),
            "end_time": (start + timedelta(hours=1)).isoformat(),
            "lead_id": lead["id"],
        },
        headers=agent,
    )
    client.post(
        f"/api/leads/{lead['id']}/transition", json={"to_stage": "needs_analysis"}, headers=agent
    )
    notices = notices_of(db, brokerage.broker.id)
    assert [n.type for n in notices] == ["client.created", "listing.created"]
    assert "Sarah Johnson" in notices[0].body
    assert notices[0].link == "/crm/clients?q=Sarah+Johnson"  # the clients page's own filter
    assert notices[1].title == f"New listing: {brokerage.agent.full_name}"
    assert "$450,000" in notices[1].body
    every_text = " ".join(f"{n.title} {n.body} {n.link}" for n in notices)
    assert "Quiet Lead" not in every_text


def test_settings_choose_events_channels_and_the_threshold(
    client: TestClient, db: Session, brokerage: Brokerage
) -> None:
    broker = bearer(client, brokerage.broker)
    defaults = client.get(SETTINGS, headers=broker).json()
    assert defaults["notify_escrow_created"] is True
    assert defaults["sms_notifications"] is False
    assert defaults["min_escrow_value"] is None

    saved = client.put(SETTINGS, json={"min_escrow_value": 500000}, headers=broker)
    assert saved.json()["min_escrow_value"] == 500000.0
    open_escrow(client, brokerage)  # $450,000: below the threshold
    assert notices_of(db, brokerage.broker.id) == []
    open_escrow(client, brokerage, purchase_price="650000.00", property_address="9 Elm")
    assert len(notices_of(db, brokerage.broker.id)) == 1

    client.put(
        SETTINGS,
        json={"notify_escrow_created": False, "notify_client_created": True},
        headers=broker,
    )
    open_escrow(client, brokerage, purchase_price="700000.00", property_address="3 Ash")
    assert len(notices_of(db, brokerage.broker.id)) == 1

    client.put(
        SETTINGS,
        json={
            "in_app_notifications": False,
            "email_notifications": False,
            "sms_notifications": True,
        },
        headers=broker,
    )
    client.post(
        "/api/clients/", json={"name": "Texted Client"}, headers=bearer(client, brokerage.agent)
    )
    notice = notices_of(db, brokerage.broker.id)[-1]
    assert notice.type == "client.created"
    assert notice.in_app is False
    channels = db.scalars(select(Delivery.channel).where(Delivery.notification_id == notice.id))
    assert list(channels) == ["sms"]

    bad = [{"notify_escrow_created": None}, {"min_escrow_value": -1}, {"email": True}]
    for body in bad:
        assert client.put(SETTINGS, json=body, headers=broker).status_code == 422, body
    for user in (brokerage.agent, brokerage.admin, brokerage.client):
        assert client.put(SETTINGS, json={}, headers=bearer(client, user)).status_code == 403


def test_notices_are_read_one_by_one(
    client: TestClient, db: Session, brokerage: Brokerage, rival: Brokerage
) -> None:
    open_escrow(client, brokerage)
    broker = bearer(client, brokerage.broker)
    [notice] = client.get(NOTICES, headers=broker).json()["notifications"]
    assert client.patch(f"{NOTICES}/{notice['id']}/read", headers=broker).json()["read"] is True
    assert client.get(NOTICES, params={"unread": "true"}, headers=broker).json()["total"] == 0
    assert (
        client.patch(
            f"{NOTICES}/{notice['id']}/read", headers=bearer(client, rival.broker)
        ).status_code
        == 404
    )
    assert client.get(NOTICES, params={"limit": 0}, headers=broker).status_code == 422
    assert client.get(NOTICES, headers=bearer(client, brokerage.agent)).status_code == 403


def test_a_brokers_own_deals_and_closings(
    client: TestClient, db: Session, brokerage: Brokerage
) -> None:
    own = client.post(
        "/api/v1/transactions/",
        json=deal_body(brokerage),
        headers=bearer(client, brokerage.broker),
    )
    assert own.status_code == 201, own.text
    assert notices_of(db, brokerage.broker.id) == []  # nobody tells the broker their own deal


def test_a_closing_notifies_the_broker(
    client: TestClient, db: Session, brokerage: Brokerage
) -> None:
    deal = open_escrow(client, brokerage)
    agent = bearer(client, brokerage.agent)
    for step in (
        "loan_application",
        "home_inspection",
        "appraisal_ordered",
        "loan_approval",
        "title_search",
        "final_walkthrough",
        "closing_day",
    ):
        moved = client.put(
            f"/api/v1/transactions/{deal['id']}/milestones",
            json={"milestone_type": step, "status": "completed"},
            headers=agent,
        )
        assert moved.status_code == 200, (step, moved.text)
    types = [n.type for n in notices_of(db, brokerage.broker.id)]
    assert types == ["escrow.created", "escrow.closed"]
    closed = notices_of(db, brokerage.broker.id)[-1]
    assert closed.title == f"Escrow closed: {brokerage.agent.full_name}"
