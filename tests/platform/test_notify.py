"""Notifications: who gets what on which channel, the live events, and that people only ever
touch their own notifications (a test per role, through the API and the pages)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from doorstep.platform import notify
from doorstep.platform.auth import Role, User
from doorstep.platform.errors import Forbidden, RuleViolation
from doorstep.platform.events import Event, audience_allows
from doorstep.platform.jobs import Job
from doorstep.platform.notify import (
    Channel,
    Delivery,
    DeliveryStatus,
    Notification,
    PreferenceChange,
)
from tests.conftest import Brokerage, bearer, principal_of, web_login

ROLES = list(Role)


def send(db: Session, user: User, *, title: str = "Hello", link: str | None = "/") -> Notification:
    row = notify.notify(
        db, user_id=user.id, type="account.updated", title=title, body="Body text", link=link
    )
    assert row is not None
    return row


def choose(db: Session, user: User, type: str, **channels: bool) -> None:
    notify.update_settings(
        db,
        principal=principal_of(user),
        changes=[PreferenceChange(type, Channel(c), on) for c, on in channels.items()],
    )


def deliveries(db: Session, row: Notification) -> dict[str, Delivery]:
    found = db.scalars(select(Delivery).where(Delivery.notification_id == row.id))
    return {d.channel: d for d in found}


def last_event(db: Session) -> Event:
    event = db.scalars(select(Event).order_by(Event.id.desc()).limit(1)).first()
    assert event is not None
    return event


# --- service rules ----------------------------------------------------------------------------


def test_defaults_are_in_app_and_email(db: Session, brokerage: Brokerage) -> None:
    row = send(db, brokerage.agent)
    assert row.in_app
    sent = deliveries(db, row)
    assert set(sent) == {"email"}
    assert sent["email"].address == brokerage.agent.email
    assert sent["email"].status == DeliveryStatus.queued
    job = db.scalar(select(Job).where(Job.key == f"deliver:{sent['email'].id}"))
    assert job is not None
    assert job.name == "notify.deliver"
    assert job.args == {"delivery_id": sent["email"].id}
    assert job.tenant_id == brokerage.tenant.id


def test_new_notification_is_announced_to_its_user_only(db: Session, brokerage: Brokerage) -> None:
    send(db, brokerage.agent, title="First")
    row = send(db, brokerage.agent, title="Second", link="/somewhere")
    event = last_event(db)
    assert event.type == "notification.created"
    assert event.channels == [f"user:{brokerage.agent.id}"]
    assert event.data == {
        "id": row.id,
        "type": "account.updated",
        "title": "Second",
        "body": "Body text",
        "link": "/somewhere",
        "created_at": row.created_at.isoformat(),
        "unread": 2,
    }
    assert audience_allows(event.audience, principal_of(brokerage.agent))
    for other in (brokerage.admin, brokerage.broker, brokerage.other_agent, brokerage.client):
        assert not audience_allows(event.audience, principal_of(other))


def test_settings_choose_the_channels(db: Session, brokerage: Brokerage) -> None:
    user = brokerage.client
    user.phone = "+15557654321"
    choose(db, user, "account.updated", email=False, sms=True, whatsapp=True)
    sent = deliveries(db, send(db, user))
    assert set(sent) == {"sms", "whatsapp"}
    assert {d.address for d in sent.values()} == {"+15557654321"}
    # Another user's choices are theirs alone.
    assert set(deliveries(db, send(db, brokerage.agent))) == {"email"}


def test_in_app_off_keeps_the_notification_out_of_the_centre(
    db: Session, brokerage: Brokerage
) -> None:
    user = brokerage.agent
    choose(db, user, "account.updated", in_app=False)
    before = last_event(db).id if db.scalar(select(Event.id).limit(1)) else 0
    row = send(db, user)
    assert not row.in_app
    assert set(deliveries(db, row)) == {"email"}
    assert notify.unread_count(db, principal=principal_of(user)) == 0
    assert notify.list_notifications(db, principal=principal_of(user)) == ([], 0)
    created = db.scalars(
        select(Event).where(Event.id > before, Event.type == "notification.created")
    ).all()
    assert created == []


def test_every_channel_off_sends_nothing(db: Session, brokerage: Brokerage) -> None:
    choose(db, brokerage.agent, "account.updated", in_app=False, email=False)
    assert (
        notify.notify(db, user_id=brokerage.agent.id, type="account.updated", title="t", body="b")
        is None
    )


def test_inactive_users_get_nothing(db: Session, factory, brokerage: Brokerage) -> None:
    gone = factory.user(brokerage.tenant, Role.agent, active=False)
    assert notify.notify(db, user_id=gone.id, type="account.updated", title="t", body="b") is None


def test_sms_without_a_phone_fails_at_once_without_a_job(db: Session, brokerage: Brokerage) -> None:
    choose(db, brokerage.agent, "account.updated", email=False, sms=True)
    sms = deliveries(db, send(db, brokerage.agent))["sms"]
    assert sms.status == DeliveryStatus.failed
    assert sms.reason == "The user has no phone number"
    assert db.scalar(select(Job).where(Job.key == f"deliver:{sms.id}")) is None


def test_unknown_types_and_foreign_links_are_refused(db: Session, brokerage: Brokerage) -> None:
    with pytest.raises(LookupError):
        notify.notify(db, user_id=brokerage.agent.id, type="no.such", title="t", body="b")
    for link in ("https://evil.example/", "//evil.example", "javascript:alert(1)"):
        with pytest.raises(ValueError, match="path on this site"):
            send(db, brokerage.agent, link=link)


def test_registered_types_appear_in_settings(db: Session, brokerage: Brokerage) -> None:
    notify.register_type("test.module_type", label="From a module", roles=[Role.broker])
    try:
        broker = {
            s.type.key: s for s in notify.get_settings(db, principal=principal_of(brokerage.broker))
        }
        agent = {
            s.type.key for s in notify.get_settings(db, principal=principal_of(brokerage.agent))
        }
        assert broker["test.module_type"].channels == {
            Channel.in_app: True,
            Channel.email: True,
            Channel.sms: False,
            Channel.whatsapp: False,
        }
        assert "test.module_type" not in agent
        assert "system.test" not in agent
        assert {"account.updated", "system.test"} <= {
            s.type.key for s in notify.get_settings(db, principal=principal_of(brokerage.admin))
        }
    finally:
        notify._types.pop("test.module_type")


def test_settings_refuse_types_not_offered(db: Session, brokerage: Brokerage) -> None:
    for type_ in ("no.such", "system.test"):
        with pytest.raises(RuleViolation):
            choose(db, brokerage.agent, type_, email=False)


def test_changing_a_choice_twice_keeps_one_row(db: Session, brokerage: Brokerage) -> None:
    choose(db, brokerage.agent, "account.updated", sms=True)
    choose(db, brokerage.agent, "account.updated", sms=False)
    rows = db.scalars(
        select(notify.NotificationPreference).where(
            notify.NotificationPreference.user_id == brokerage.agent.id
        )
    ).all()
    assert [(r.type, r.channel, r.enabled) for r in rows] == [("account.updated", "sms", False)]


def test_mark_read_announces_the_new_unread_count(db: Session, brokerage: Brokerage) -> None:
    me = principal_of(brokerage.agent)
    first, _second = send(db, brokerage.agent), send(db, brokerage.agent)
    notify.mark_read(db, principal=me, notification_id=first.id)
    event = last_event(db)
    assert (event.type, event.data) == (
        "notification.read",
        {"ids": [first.id], "all": False, "unread": 1},
    )
    assert event.channels == [f"user:{brokerage.agent.id}"]
    notify.mark_read(db, principal=me, notification_id=first.id)  # already read: no new event
    assert last_event(db).id == event.id
    assert notify.mark_all_read(db, principal=me) == 1
    assert last_event(db).data == {"ids": None, "all": True, "unread": 0}
    assert notify.unread_count(db, principal=me) == 0
    assert notify.mark_all_read(db, principal=me) == 0


def test_only_admins_send_test_notifications(db: Session, brokerage: Brokerage) -> None:
    row = notify.send_test(db, principal=principal_of(brokerage.admin))
    assert row is not None
    assert (row.type, row.user_id) == ("system.test", brokerage.admin.id)
    with pytest.raises(Forbidden):
        notify.send_test(db, principal=principal_of(brokerage.broker))


def test_outbox_is_for_admins_of_the_tenant(
    db: Session, brokerage: Brokerage, rival: Brokerage
) -> None:
    send(db, brokerage.agent)
    send(db, rival.agent)
    mine, total = notify.list_deliveries(db, principal=principal_of(brokerage.admin))
    assert total == 1
    assert mine[0].recipient == brokerage.agent.full_name
    for role in (Role.broker, Role.agent, Role.client, Role.analyst):
        with pytest.raises(Forbidden):
            notify.list_deliveries(db, principal=principal_of(brokerage.by_role(role)))


def test_admin_changing_an_account_notifies_its_owner(
    client: TestClient, brokerage: Brokerage, db: Session
) -> None:
    headers = bearer(client, brokerage.admin)
    response = client.patch(
        f"/api/users/{brokerage.agent.id}",
        json={"phone": "+15550001111", "full_name": "Renamed Agent"},
        headers=headers,
    )
    assert response.status_code == 200
    rows, _ = notify.list_notifications(db, principal=principal_of(brokerage.agent))
    assert [(n.type, n.title) for n in rows] == [("account.updated", "Your account was updated")]
    assert rows[0].body == f"{brokerage.admin.full_name} changed your name and phone number."
    # Changing your own account, or changing nothing, notifies nobody.
    client.patch(
        f"/api/users/{brokerage.admin.id}", json={"phone": "+15550002222"}, headers=headers
    )
    client.patch(
        f"/api/users/{brokerage.agent.id}", json={"phone": "+15550001111"}, headers=headers
    )
    assert notify.list_notifications(db, principal=principal_of(brokerage.admin))[1] == 0
    assert notify.list_notifications(db, principal=principal_of(brokerage.agent))[1] == 1


def test_rollback_leaves_no_notification_and_no_job(db: Session, brokerage: Brokerage) -> None:
    row = send(db, brokerage.agent)
    ident, delivery_id = row.id, deliveries(db, row)["email"].id
    db.rollback()
    assert db.get(Notification, ident) is None
    assert db.scalar(select(Job).where(Job.key == f"deliver:{delivery_id}")) is None


# --- the API, per role --------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_api_lists_and_reads_only_your_own(
    role: Role, client: TestClient, db: Session, brokerage: Brokerage, rival: Brokerage
) -> None:
    me = brokerage.by_role(role)
    colleague = brokerage.other_agent if role != Role.agent else brokerage.broker
    mine = [send(db, me, title=f"mine {n}") for n in range(3)]
    theirs = send(db, colleague, title="a colleague's")
    foreign = send(db, rival.by_role(role), title="another tenant's")
    db.commit()
    headers = bearer(client, me)

    listed = client.get("/api/notifications", headers=headers).json()
    assert listed["total"] == 3
    assert [n["title"] for n in listed["items"]] == ["mine 2", "mine 1", "mine 0"]
    page = client.get("/api/notifications?per_page=2&page=2", headers=headers).json()
    assert [n["id"] for n in page["items"]] == [mine[0].id]

    for other in (theirs, foreign):
        assert client.get(f"/api/notifications/{other.id}", headers=headers).status_code == 404
        refused = client.post(f"/api/notifications/{other.id}/read", headers=headers)
        assert refused.status_code == 404
        assert refused.json()["code"] == "not_found"
    db.expire_all()
    assert db.get(Notification, theirs.id).read_at is None  # type: ignore[union-attr]
    assert db.get(Notification, foreign.id).read_at is None  # type: ignore[union-attr]

    assert client.get("/api/notifications/unread-count", headers=headers).json() == {"unread": 3}
    read = client.post(f"/api/notifications/{mine[1].id}/read", headers=headers)
    assert read.status_code == 200
    assert read.json()["read_at"] is not None
    detail = client.get(f"/api/notifications/{mine[1].id}", headers=headers).json()
    assert [(d["channel"], d["status"]) for d in detail["deliveries"]] == [("email", "queued")]
    assert client.get("/api/notifications?unread=true", headers=headers).json()["total"] == 2
    assert client.post("/api/notifications/read-all", headers=headers).json() == {
        "marked": 2,
        "unread": 0,
    }
    # Read-all touched nobody else's notifications.
    db.expire_all()
    assert db.get(Notification, theirs.id).read_at is None  # type: ignore[union-attr]


@pytest.mark.parametrize("role", ROLES)
def test_api_settings_are_your_own(
    role: Role, client: TestClient, db: Session, brokerage: Brokerage
) -> None:
    me, other = (
        brokerage.by_role(role),
        brokerage.analyst if role != Role.analyst else brokerage.client,
    )
    headers = bearer(client, me)
    got = client.get("/api/notifications/settings", headers=headers).json()
    assert [c["key"] for c in got["channels"]] == ["in_app", "email", "sms", "whatsapp"]
    types = {t["type"]: t["channels"] for t in got["types"]}
    assert types["account.updated"] == {
        "in_app": True,
        "email": True,
        "sms": False,
        "whatsapp": False,
    }
    assert ("system.test" in types) == (role == Role.admin)
    body = {"preferences": [{"type": "account.updated", "channel": "sms", "enabled": True}]}
    put = client.put("/api/notifications/settings", json=body, headers=headers)
    assert put.status_code == 200, put.text
    assert {t["type"]: t for t in put.json()["types"]}["account.updated"]["channels"]["sms"]
    assert notify.enabled_channels(db, user_id=me.id, type="account.updated") == {
        Channel.in_app,
        Channel.email,
        Channel.sms,
    }
    assert Channel.sms not in notify.enabled_channels(db, user_id=other.id, type="account.updated")


def test_api_settings_bodies_are_strict(client: TestClient, brokerage: Brokerage) -> None:
    headers = bearer(client, brokerage.agent)
    for body in (
        {"preferences": [{"type": "account.updated", "channel": "pigeon", "enabled": True}]},
        {"preferences": [{"type": "account.updated", "channel": "sms", "enabled": True, "x": 1}]},
        {"preferences": [], "user_id": brokerage.admin.id},
        {"prefs": []},
    ):
        response = client.put("/api/notifications/settings", json=body, headers=headers)
        assert response.status_code == 422, body
        assert response.json()["code"] == "validation_error"
    unknown = {"preferences": [{"type": "system.test", "channel": "sms", "enabled": True}]}
    response = client.put("/api/notifications/settings", json=unknown, headers=headers)
    assert response.status_code == 422
    assert response.json()["code"] == "rule_violation"


def test_api_needs_a_signed_in_user(client: TestClient) -> None:
    for method, path in (
        ("GET", "/api/notifications"),
        ("GET", "/api/notifications/unread-count"),
        ("POST", "/api/notifications/read-all"),
        ("GET", "/api/notifications/settings"),
    ):
        assert client.request(method, path).status_code in (401, 403), path


@pytest.mark.parametrize("role", ROLES)
def test_api_test_notification_is_for_admins(
    role: Role, client: TestClient, brokerage: Brokerage
) -> None:
    response = client.post(
        "/api/notifications/test", headers=bearer(client, brokerage.by_role(role))
    )
    if role == Role.admin:
        assert response.status_code == 201
        assert response.json()["type"] == "system.test"
    else:
        assert response.status_code == 403


# --- pages ------------------------------------------------------------------------------------


def test_bell_shows_the_unread_count(client: TestClient, db: Session, brokerage: Brokerage) -> None:
    web_login(client, brokerage.client)
    page = client.get("/").text
    assert 'data-testid="bell"' in page
    assert 'data-testid="unread-count" hidden>0<' in page
    send(db, brokerage.client)
    send(db, brokerage.client)
    db.commit()
    assert 'data-testid="unread-count">2<' in client.get("/").text


def test_list_page_marks_read_with_htmx(
    client: TestClient, db: Session, brokerage: Brokerage
) -> None:
    first = send(db, brokerage.agent, title="First news", link="/notifications/settings")
    second = send(db, brokerage.agent, title="Second news")
    theirs = send(db, brokerage.other_agent, title="Not yours")
    db.commit()
    token = web_login(client, brokerage.agent)
    page = client.get("/notifications")
    assert page.status_code == 200
    assert "First news" in page.text
    assert "Second news" in page.text
    assert "Not yours" not in page.text
    htmx = {"HX-Request": "true", "X-CSRF-Token": token}

    assert (
        client.post(f"/notifications/{first.id}/read", headers={"HX-Request": "true"}).status_code
        == 403
    )
    one = client.post(f"/notifications/{first.id}/read", headers=htmx)
    assert one.status_code == 200
    assert f'id="notification-{first.id}"' in one.text
    assert 'data-unread="false"' in one.text
    assert json.loads(one.headers["HX-Trigger"]) == {"doorstep:unread": {"unread": 1}}
    assert client.post(f"/notifications/{theirs.id}/read", headers=htmx).status_code == 404

    everything = client.post("/notifications/read-all", headers=htmx)
    assert everything.status_code == 200
    assert 'id="notification-list"' in everything.text
    assert 'data-unread="true"' not in everything.text
    assert json.loads(everything.headers["HX-Trigger"]) == {"doorstep:unread": {"unread": 0}}
    db.expire_all()
    assert db.get(Notification, second.id).read_at is not None  # type: ignore[union-attr]
    assert db.get(Notification, theirs.id).read_at is None  # type: ignore[union-attr]

    # The live refresh asks for the list fragment alone.
    fragment = client.get(
        "/notifications", headers={"HX-Request": "true", "HX-Target": "notification-list"}
    )
    assert fragment.text.lstrip().startswith('<div id="notification-list"')


def test_opening_a_notification_marks_it_read_and_follows_its_link(
    client: TestClient, db: Session, brokerage: Brokerage
) -> None:
    row = send(db, brokerage.broker, link="/notifications/settings")
    theirs = send(db, brokerage.agent, link="/")
    db.commit()
    token = web_login(client, brokerage.broker)
    opened = client.post(
        f"/notifications/{row.id}/open", data={"csrf_token": token}, follow_redirects=False
    )
    assert opened.status_code == 303
    assert opened.headers["location"] == "/notifications/settings"
    db.expire_all()
    assert db.get(Notification, row.id).read_at is not None  # type: ignore[union-attr]
    refused = client.post(
        f"/notifications/{theirs.id}/open", data={"csrf_token": token}, follow_redirects=False
    )
    assert refused.status_code == 404


def test_settings_page_saves_the_grid(
    client: TestClient, db: Session, brokerage: Brokerage
) -> None:
    token = web_login(client, brokerage.admin)
    page = client.get("/notifications/settings")
    assert page.status_code == 200
    assert (
        'value="account.updated:email" aria-label="Changes to your account by E-mail"' in page.text
    )
    assert 'data-testid="no-phone"' in page.text
    saved = client.post(
        "/notifications/settings",
        data={"csrf_token": token, "choice": ["account.updated:in_app", "account.updated:sms"]},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    assert notify.enabled_channels(db, user_id=brokerage.admin.id, type="account.updated") == {
        Channel.in_app,
        Channel.sms,
    }
    # A type whose boxes were all left empty is off everywhere.
    assert notify.enabled_channels(db, user_id=brokerage.admin.id, type="system.test") == set()


@pytest.mark.parametrize("path", ["/admin/outbox", "/admin/jobs"])
@pytest.mark.parametrize("role", [Role.broker, Role.agent, Role.client, Role.analyst])
def test_admin_pages_refuse_other_roles(
    path: str, role: Role, client: TestClient, brokerage: Brokerage
) -> None:
    web_login(client, brokerage.by_role(role))
    assert client.get(path).status_code == 403


def test_outbox_test_button_notifies_the_admin(
    client: TestClient, db: Session, brokerage: Brokerage
) -> None:
    token = web_login(client, brokerage.admin)
    page = client.get("/admin/outbox")
    assert page.status_code == 200
    assert 'data-testid="send-test"' in page.text
    done = client.post("/admin/outbox/test", data={"csrf_token": token}, follow_redirects=False)
    assert done.status_code == 303
    rows, _ = notify.list_notifications(db, principal=principal_of(brokerage.admin))
    assert [n.type for n in rows] == ["system.test"]
    outbox = client.get("/admin/outbox").text
    assert 'data-testid="delivery" data-status="queued" data-channel="email"' in outbox
