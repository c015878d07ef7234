"""The audit log: every create, update and delete with who, when, before and after."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from doorstep.platform.audit import REDACTED, AuditEntry, set_actor
from doorstep.platform.auth import Role
from tests.conftest import Brokerage, Factory, bearer, principal_of, web_login


def _entries(db: Session, entity: str, entity_id: int) -> list[AuditEntry]:
    db.expire_all()
    return list(
        db.scalars(
            select(AuditEntry)
            .where(AuditEntry.entity == entity, AuditEntry.entity_id == str(entity_id))
            .order_by(AuditEntry.id)
        )
    )


def test_create_update_delete_are_recorded(db: Session, factory: Factory) -> None:
    tenant = factory.tenant("Audit Homes")
    admin = factory.user(tenant, Role.admin)
    set_actor(db, principal_of(admin))
    agent = factory.user(tenant, Role.agent, name="Before Name")
    agent.full_name = "After Name"
    db.flush()
    db.delete(agent)
    db.flush()
    create, update, delete = _entries(db, "users", agent.id)
    assert (create.action, update.action, delete.action) == ("create", "update", "delete")
    assert {e.actor for e in (create, update, delete)} == {admin.email}
    assert {e.actor_id for e in (create, update, delete)} == {admin.id}
    assert {e.tenant_id for e in (create, update, delete)} == {tenant.id}
    assert create.before is None
    assert create.after is not None
    assert create.after["full_name"] == "Before Name"
    assert create.after["password_hash"] == REDACTED
    assert update.before == {"full_name": "Before Name"}
    assert update.after == {"full_name": "After Name"}
    assert delete.before is not None
    assert delete.before["full_name"] == "After Name"
    assert delete.after is None


def test_api_changes_are_attributed_to_the_caller(
    client: TestClient, brokerage: Brokerage, db: Session
) -> None:
    response = client.patch(
        f"/api/users/{brokerage.agent.id}",
        json={"phone": "+15550001111", "password": "a-brand-new-password"},
        headers=bearer(client, brokerage.admin),
    )
    assert response.status_code == 200
    update = _entries(db, "users", brokerage.agent.id)[-1]
    assert update.action == "update"
    assert update.actor == brokerage.admin.email
    assert update.after == {"phone": "+15550001111", "password_hash": REDACTED}
    assert update.before == {"phone": None, "password_hash": REDACTED}


def test_sign_in_is_not_an_audited_change(
    client: TestClient, brokerage: Brokerage, db: Session
) -> None:
    before = len(_entries(db, "users", brokerage.broker.id))
    bearer(client, brokerage.broker)
    assert len(_entries(db, "users", brokerage.broker.id)) == before


def test_audit_api_filters_and_paginates(client: TestClient, brokerage: Brokerage) -> None:
    auth = bearer(client, brokerage.admin)
    client.patch("/api/tenant", json={"name": "Alpha Homes North"}, headers=auth)
    tenants = client.get(
        "/api/audit", params={"entity": "tenants", "action": "update"}, headers=auth
    )
    items = tenants.json()["items"]
    assert [(i["entity"], i["action"]) for i in items] == [("tenants", "update")]
    assert items[0]["before"] == {"name": "Alpha Homes"}
    assert items[0]["after"] == {"name": "Alpha Homes North"}
    page = client.get("/api/audit", params={"per_page": 2, "page": 2}, headers=auth).json()
    assert page["per_page"] == 2
    assert page["page"] == 2
    assert len(page["items"]) == 2
    assert page["total"] >= 7
    since = client.get("/api/audit", params={"since": "2999-01-01"}, headers=auth).json()
    assert since["items"] == []


def test_audit_page_lists_and_filters(client: TestClient, brokerage: Brokerage) -> None:
    web_login(client, brokerage.admin)
    page = client.get("/admin/audit", params={"entity": "users", "action": "create"})
    assert page.status_code == 200
    assert 'data-testid="audit-table"' in page.text
    assert brokerage.agent.full_name in page.text
    empty = client.get("/admin/audit", params={"action": "delete"})
    assert 'data-testid="empty-state"' in empty.text
    bad = client.get("/admin/audit", params={"since": "soon"}, headers={"accept": "text/html"})
    assert bad.status_code == 400
    assert "is not a date" in bad.text
