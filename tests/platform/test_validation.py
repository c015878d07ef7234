"""Bad input gets a clear 4xx and changes nothing."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from doorstep.platform.auth import Tenant, User
from tests.conftest import Brokerage, bearer

GOOD_USER = {
    "email": "valid.person@example.com",
    "full_name": "Valid Person",
    "role": "agent",
    "password": "long-enough-password",
}


def _user_count(db: Session) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(User)) or 0


def test_malformed_json(client: TestClient, brokerage: Brokerage, db: Session) -> None:
    before = _user_count(db)
    response = client.post(
        "/api/users",
        content=b'{"email": "x@example.com",',
        headers={**bearer(client, brokerage.admin), "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "Request body is not valid JSON", "code": "malformed_json"}
    assert _user_count(db) == before


def test_wrong_content_type(client: TestClient, brokerage: Brokerage, db: Session) -> None:
    before = _user_count(db)
    response = client.post(
        "/api/users",
        content=b"email=x@example.com",
        headers={
            **bearer(client, brokerage.admin),
            "content-type": "application/x-www-form-urlencoded",
        },
    )
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"
    json_to_form = client.post("/api/auth/token", json={"username": "a", "password": "b"})
    assert json_to_form.status_code == 415
    assert _user_count(db) == before


def test_body_over_ten_megabytes(client: TestClient, brokerage: Brokerage) -> None:
    big = b"{" + b" " * (10 * 1024 * 1024 + 10) + b"}"
    response = client.post(
        "/api/users",
        content=big,
        headers={**bearer(client, brokerage.admin), "content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


def test_body_over_limit_without_content_length(client: TestClient, brokerage: Brokerage) -> None:
    def chunks():  # a streamed (chunked) body declares no length
        for _ in range(11):
            yield b" " * (1024 * 1024)

    response = client.post(
        "/api/users",
        content=chunks(),
        headers={**bearer(client, brokerage.admin), "content-type": "application/json"},
    )
    assert response.status_code == 413


def test_unknown_fields_are_refused(client: TestClient, brokerage: Brokerage, db: Session) -> None:
    before = _user_count(db)
    response = client.post(
        "/api/users",
        json={**GOOD_USER, "is_superuser": True},
        headers=bearer(client, brokerage.admin),
    )
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_error"
    assert "is_superuser" in body["detail"]
    assert _user_count(db) == before


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"password": "short"}, "password"),
        ({"role": "superuser"}, "role"),
        ({"full_name": ""}, "full_name"),
        ({"broker_id": "seven"}, "broker_id"),
    ],
)
def test_invalid_user_fields(
    client: TestClient, brokerage: Brokerage, db: Session, change: dict[str, str], field: str
) -> None:
    before = _user_count(db)
    response = client.post(
        "/api/users", json={**GOOD_USER, **change}, headers=bearer(client, brokerage.admin)
    )
    assert response.status_code == 422
    assert field in response.json()["detail"]
    assert _user_count(db) == before


def test_links_must_point_to_the_right_role_in_the_tenant(
    client: TestClient, brokerage: Brokerage, rival: Brokerage
) -> None:
    auth = bearer(client, brokerage.admin)
    for broker_id in (brokerage.agent.id, rival.broker.id, 999_999):
        response = client.post(
            "/api/users", json={**GOOD_USER, "broker_id": broker_id}, headers=auth
        )
        assert response.status_code == 422
        assert response.json()["detail"] == "broker_id must be the id of a broker of this tenant"
    ok = client.post(
        "/api/users", json={**GOOD_USER, "broker_id": brokerage.broker.id}, headers=auth
    )
    assert ok.status_code == 201


def test_duplicate_email_conflicts(client: TestClient, brokerage: Brokerage) -> None:
    response = client.post(
        "/api/users",
        json={**GOOD_USER, "email": brokerage.agent.email.replace("example.test", "example.com")},
        headers=bearer(client, brokerage.admin),
    )
    assert response.status_code in (201, 409)
    again = client.post(
        "/api/users",
        json={**GOOD_USER, "email": response.json().get("email", "x@example.com")},
        headers=bearer(client, brokerage.admin),
    )
    assert again.status_code == 409
    assert again.json()["code"] == "conflict"


def test_admin_cannot_lock_themselves_out(client: TestClient, brokerage: Brokerage) -> None:
    auth = bearer(client, brokerage.admin)
    for change in ({"is_active": False}, {"role": "agent"}):
        response = client.patch(f"/api/users/{brokerage.admin.id}", json=change, headers=auth)
        assert response.status_code == 422


def test_deactivating_a_user_ends_their_sessions(client: TestClient, brokerage: Brokerage) -> None:
    agent = bearer(client, brokerage.agent)
    off = client.patch(
        f"/api/users/{brokerage.agent.id}",
        json={"is_active": False},
        headers=bearer(client, brokerage.admin),
    )
    assert off.status_code == 200
    assert client.get("/api/auth/me", headers=agent).status_code == 401


@pytest.mark.parametrize(
    "change",
    [
        {"primary_color": "red"},
        {"primary_color": "#12345"},
        {"timezone": "Mars/Olympus"},
        {"name": ""},
    ],
)
def test_invalid_branding(
    client: TestClient, brokerage: Brokerage, db: Session, change: dict[str, str]
) -> None:
    response = client.patch("/api/tenant", json=change, headers=bearer(client, brokerage.admin))
    assert response.status_code == 422
    db.expire_all()
    tenant = db.get(Tenant, brokerage.tenant.id)
    assert tenant is not None
    assert (tenant.name, tenant.primary_color, tenant.timezone) == (
        "Alpha Homes",
        "#206bc4",
        "America/New_York",
    )


def test_logo_must_be_a_small_png_or_jpeg(client: TestClient, brokerage: Brokerage) -> None:
    auth = bearer(client, brokerage.admin)
    svg = b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"
    bad = client.put(
        "/api/tenant/logo", files={"logo": ("x.svg", svg, "image/svg+xml")}, headers=auth
    )
    assert bad.status_code == 422
    assert bad.json()["detail"] == "The logo must be a PNG or JPEG image"
    huge = b"\x89PNG\r\n\x1a\n" + b"\x00" * (600 * 1024)
    too_big = client.put(
        "/api/tenant/logo", files={"logo": ("x.png", huge, "image/png")}, headers=auth
    )
    assert too_big.status_code == 422
    assert client.get("/api/tenant", headers=auth).json()["has_logo"] is False


@pytest.mark.parametrize(
    "query", ["per_page=0", "per_page=1000", "page=0", "role=king", "page=abc"]
)
def test_bad_query_strings(client: TestClient, brokerage: Brokerage, query: str) -> None:
    response = client.get(f"/api/users?{query}", headers=bearer(client, brokerage.admin))
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


def test_audit_filters_are_validated(client: TestClient, brokerage: Brokerage) -> None:
    auth = bearer(client, brokerage.admin)
    assert client.get("/api/audit?action=drop", headers=auth).status_code == 422
    assert client.get("/api/audit?since=yesterday", headers=auth).status_code == 422


def test_unknown_path_and_method(client: TestClient) -> None:
    missing = client.get("/api/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
    wrong = client.delete("/api/auth/me")
    assert wrong.status_code == 405
    assert wrong.json()["code"] == "method_not_allowed"
