"""Tenant isolation and role checks through the API and the pages: one test per role."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from doorstep.platform.auth import Role
from tests.conftest import Brokerage, bearer, web_login

ALL_ROLES = list(Role)
NOT_ADMIN = [r for r in Role if r != Role.admin]


@pytest.mark.parametrize("role", ALL_ROLES)
def test_no_role_reads_another_tenants_user(
    client: TestClient, brokerage: Brokerage, rival: Brokerage, role: Role
) -> None:
    auth = bearer(client, brokerage.by_role(role))
    for other in (rival.admin, rival.agent, rival.client):
        response = client.get(f"/api/users/{other.id}", headers=auth)
        assert response.status_code == 404, (role, other.role)
        assert response.json()["code"] == "not_found"
    listed = client.get("/api/users", params={"per_page": 200}, headers=auth).json()
    assert {u["tenant_id"] for u in listed["items"]} <= {brokerage.tenant.id}


@pytest.mark.parametrize("role", ALL_ROLES)
def test_no_role_changes_another_tenants_user(
    client: TestClient, brokerage: Brokerage, rival: Brokerage, role: Role
) -> None:
    auth = bearer(client, brokerage.by_role(role))
    response = client.patch(
        f"/api/users/{rival.agent.id}", json={"full_name": "Hijacked"}, headers=auth
    )
    assert response.status_code == (404 if role == Role.admin else 403)
    rival_auth = bearer(client, rival.admin)
    assert (
        client.get(f"/api/users/{rival.agent.id}", headers=rival_auth).json()["full_name"]
        != "Hijacked"
    )


@pytest.mark.parametrize("role", ALL_ROLES)
def test_tenant_endpoint_shows_only_own_tenant(
    client: TestClient, brokerage: Brokerage, rival: Brokerage, role: Role
) -> None:
    body = client.get("/api/tenant", headers=bearer(client, brokerage.by_role(role))).json()
    assert body["id"] == brokerage.tenant.id
    assert body["name"] == "Alpha Homes"


@pytest.mark.parametrize("role", ALL_ROLES)
def test_only_admin_creates_users(client: TestClient, brokerage: Brokerage, role: Role) -> None:
    body = {
        "email": f"new-{role}@example.com",
        "full_name": "New Person",
        "role": "analyst",
        "password": "long-enough-password",
    }
    response = client.post("/api/users", json=body, headers=bearer(client, brokerage.by_role(role)))
    if role == Role.admin:
        assert response.status_code == 201, response.text
        assert response.json()["tenant_id"] == brokerage.tenant.id
    else:
        assert response.status_code == 403
        assert response.json() == {
            "detail": "This needs one of the roles: admin",
            "code": "forbidden",
        }


@pytest.mark.parametrize("role", ALL_ROLES)
def test_only_admin_changes_branding(client: TestClient, brokerage: Brokerage, role: Role) -> None:
    auth = bearer(client, brokerage.by_role(role))
    response = client.patch("/api/tenant", json={"primary_color": "#aa0000"}, headers=auth)
    assert response.status_code == (200 if role == Role.admin else 403)
    color = client.get("/api/tenant", headers=auth).json()["primary_color"]
    assert color == ("#aa0000" if role == Role.admin else "#206bc4")


@pytest.mark.parametrize("role", ALL_ROLES)
def test_only_admin_reads_audit_log(
    client: TestClient, brokerage: Brokerage, rival: Brokerage, role: Role
) -> None:
    response = client.get("/api/audit", headers=bearer(client, brokerage.by_role(role)))
    if role != Role.admin:
        assert response.status_code == 403
        return
    entries = response.json()["items"]
    assert entries, "creating the brokerage left audit entries"
    rival_ids = {str(u.id) for u in (rival.admin, rival.agent, rival.client)}
    assert not [e for e in entries if e["entity"] == "users" and e["entity_id"] in rival_ids]


def _visible(client: TestClient, auth: dict[str, str]) -> set[int]:
    return {
        u["id"]
        for u in client.get("/api/users", params={"per_page": 200}, headers=auth).json()["items"]
    }


def test_admin_and_broker_see_the_whole_brokerage(client: TestClient, brokerage: Brokerage) -> None:
    everyone = {u.id for u in (brokerage.by_role(r) for r in Role)} | {brokerage.other_agent.id}
    for role in (Role.admin, Role.broker):
        assert _visible(client, bearer(client, brokerage.by_role(role))) == everyone


def test_agent_sees_self_broker_and_own_clients(client: TestClient, brokerage: Brokerage) -> None:
    seen = _visible(client, bearer(client, brokerage.agent))
    assert seen == {brokerage.agent.id, brokerage.broker.id, brokerage.client.id}
    other = bearer(client, brokerage.other_agent)
    assert _visible(client, other) == {brokerage.other_agent.id, brokerage.broker.id}
    assert client.get(f"/api/users/{brokerage.client.id}", headers=other).status_code == 404


def test_client_sees_self_and_own_agent(client: TestClient, brokerage: Brokerage) -> None:
    auth = bearer(client, brokerage.client)
    assert _visible(client, auth) == {brokerage.client.id, brokerage.agent.id}
    assert client.get(f"/api/users/{brokerage.broker.id}", headers=auth).status_code == 404


def test_analyst_sees_only_self(client: TestClient, brokerage: Brokerage) -> None:
    assert _visible(client, bearer(client, brokerage.analyst)) == {brokerage.analyst.id}


# --- pages -------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ALL_ROLES)
def test_each_role_lands_on_its_own_home_page(
    client: TestClient, brokerage: Brokerage, role: Role
) -> None:
    web_login(client, brokerage.by_role(role))
    page = client.get("/")
    assert page.status_code == 200
    assert f'data-testid="home-{role}"' in page.text
    assert "Alpha Homes" in page.text
    assert ("/admin/audit" in page.text) == (role == Role.admin)


@pytest.mark.parametrize("role", NOT_ADMIN)
@pytest.mark.parametrize("path", ["/admin/users", "/admin/audit", "/admin/branding"])
def test_admin_pages_refuse_other_roles(
    client: TestClient, brokerage: Brokerage, role: Role, path: str
) -> None:
    web_login(client, brokerage.by_role(role))
    page = client.get(path, headers={"accept": "text/html"})
    assert page.status_code == 403
    assert 'data-testid="error-page"' in page.text


def test_admin_pages_list_only_own_tenant(
    client: TestClient, brokerage: Brokerage, rival: Brokerage
) -> None:
    web_login(client, rival.admin)
    page = client.get("/admin/users", params={"q": brokerage.agent.full_name.split()[0]})
    assert page.status_code == 200
    assert brokerage.agent.email not in page.text
    assert brokerage.admin.email not in page.text
    audit = client.get("/admin/audit")
    assert brokerage.agent.email not in audit.text


def test_pages_need_a_session(client: TestClient) -> None:
    response = client.get("/admin/users", headers={"accept": "text/html"}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/admin/users"


def test_logo_is_served_only_for_own_tenant(
    client: TestClient, brokerage: Brokerage, rival: Brokerage
) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    admin = bearer(client, rival.admin)
    assert (
        client.put(
            "/api/tenant/logo", files={"logo": ("l.png", png, "image/png")}, headers=admin
        ).status_code
        == 200
    )
    assert client.get("/api/tenant/logo", headers=admin).content == png
    # Alpha Homes has no logo; it never receives Rival Realty's.
    assert (
        client.get("/api/tenant/logo", headers=bearer(client, brokerage.admin)).status_code == 404
    )
