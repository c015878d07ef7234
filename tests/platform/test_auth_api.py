"""Auth API: token, refresh rotation and reuse detection, expiry, forged tokens, logout, limits."""

from __future__ import annotations

from datetime import timedelta

import jwt
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from doorstep.platform.auth import AuthSession, Role, Tenant, User
from doorstep.platform.db import utcnow
from doorstep.platform.schemas import Me, TenantRead, UserRead
from tests.conftest import PASSWORD, Brokerage, bearer


def _tokens(client: TestClient, email: str, password: str = PASSWORD) -> dict[str, str]:
    response = client.post("/api/auth/token", data={"username": email, "password": password})
    assert response.status_code == 200, response.text
    return response.json()


def test_token_then_me(client: TestClient, brokerage: Brokerage) -> None:
    tokens = _tokens(client, brokerage.agent.email)
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 15 * 60
    me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200
    body = me.json()
    assert body["email"] == brokerage.agent.email
    assert body["role"] == "agent"
    assert body["broker_id"] == brokerage.broker.id
    assert body["tenant"]["name"] == "Alpha Homes"
    assert "password_hash" not in body


def test_me_answers_exactly_the_documented_body(
    client: TestClient, brokerage: Brokerage, db: Session
) -> None:
    """`/api/auth/me` renders its body itself (DirectRoute); it must be what FastAPI would have
    made of `response_model=Me`, and the OpenAPI document must say so."""
    response = client.get("/api/auth/me", headers=bearer(client, brokerage.broker))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    db.expire_all()  # the sign-in above set last_login_at
    user = db.get(User, brokerage.broker.id)
    assert user is not None
    expected = Me(
        **UserRead.model_validate(user).model_dump(),
        tenant=TenantRead.of(db.get(Tenant, user.tenant_id)),
    ).model_dump(mode="json")
    assert response.json() == expected
    spec = client.get("/api/openapi.json").json()["paths"]["/api/auth/me"]
    assert list(spec) == ["get"]
    schema = spec["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/Me"}
    assert client.post("/api/auth/me", headers=bearer(client, brokerage.broker)).status_code == 405


def test_wrong_password_and_unknown_email_look_the_same(
    client: TestClient, brokerage: Brokerage
) -> None:
    wrong = client.post(
        "/api/auth/token", data={"username": brokerage.agent.email, "password": "nope-nope-nope"}
    )
    unknown = client.post(
        "/api/auth/token", data={"username": "nobody@example.test", "password": "nope-nope-nope"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert (
        wrong.json()
        == unknown.json()
        == {
            "detail": "Incorrect email or password",
            "code": "invalid_credentials",
        }
    )


def test_inactive_user_cannot_sign_in(
    client: TestClient, brokerage: Brokerage, db: Session
) -> None:
    brokerage.analyst.is_active = False
    db.commit()
    response = client.post(
        "/api/auth/token", data={"username": brokerage.analyst.email, "password": PASSWORD}
    )
    assert response.status_code == 401


def test_refresh_rotates_and_old_token_reuse_revokes_family(
    client: TestClient, brokerage: Brokerage
) -> None:
    first = _tokens(client, brokerage.broker.email)
    second = client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200, second.text
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    # The new access token works...
    auth = {"Authorization": f"Bearer {rotated['access_token']}"}
    assert client.get("/api/auth/me", headers=auth).status_code == 200
    # ...until the old refresh token is replayed: the whole family is revoked.
    replay = client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    assert replay.json()["code"] == "invalid_token"
    assert client.get("/api/auth/me", headers=auth).status_code == 401
    newest = client.post("/api/auth/refresh", json={"refresh_token": rotated["refresh_token"]})
    assert newest.status_code == 401


def test_reuse_revocation_is_persisted(
    client: TestClient, brokerage: Brokerage, db: Session
) -> None:
    first = _tokens(client, brokerage.broker.email)
    client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    revoked = db.scalars(
        select(AuthSession).where(AuthSession.user_id == brokerage.broker.id)
    ).all()
    assert [s.revoked_reason for s in revoked] == ["refresh_token_reuse"]


def test_refresh_with_garbage_is_rejected(client: TestClient) -> None:
    for token in ("x" * 20, "abc.def-not-real-token", "." * 12):
        response = client.post("/api/auth/refresh", json={"refresh_token": token})
        assert response.status_code == 401, token


def test_expired_access_token(client: TestClient, brokerage: Brokerage, app) -> None:
    tokens = _tokens(client, brokerage.agent.email)
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    claims["exp"] = int((utcnow() - timedelta(minutes=1)).timestamp())
    expired = jwt.encode(claims, app.state.token_settings.secret_key, algorithm="HS256")
    response = client.get("/api/auth/me", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401
    assert response.json() == {"detail": "Access token expired", "code": "invalid_token"}


def test_forged_signature_and_alg_none(client: TestClient, brokerage: Brokerage) -> None:
    tokens = _tokens(client, brokerage.agent.email)
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    claims["sub"] = str(brokerage.admin.id)
    forged = jwt.encode(claims, "not-the-server-key-" + "z" * 30, algorithm="HS256")
    unsigned = jwt.encode(claims, key=None, algorithm="none")
    for token in (forged, unsigned, tokens["access_token"][:-4] + "AAAA", "not.a.jwt"):
        response = client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, token
        assert response.headers["www-authenticate"] == "Bearer"


def test_refresh_token_is_not_an_access_token(client: TestClient, brokerage: Brokerage) -> None:
    tokens = _tokens(client, brokerage.agent.email)
    response = client.get(
        "/api/auth/me", headers={"Authorization": f"Bearer {tokens['refresh_token']}"}
    )
    assert response.status_code == 401


def test_logout_revokes_access_and_refresh(client: TestClient, brokerage: Brokerage) -> None:
    tokens = _tokens(client, brokerage.client.email)
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    out = client.post(
        "/api/auth/logout", headers=auth, json={"refresh_token": tokens["refresh_token"]}
    )
    assert out.status_code == 204
    assert client.get("/api/auth/me", headers=auth).status_code == 401
    again = client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert again.status_code == 401


def test_logout_needs_authentication(client: TestClient) -> None:
    assert client.post("/api/auth/logout").status_code in (401, 403)


def test_login_rate_limit_returns_429_with_retry_after(
    client: TestClient, brokerage: Brokerage
) -> None:
    email = brokerage.analyst.email
    for _ in range(5):  # the test settings allow 5 failures per window
        bad = client.post("/api/auth/token", data={"username": email, "password": "wrong-wrong"})
        assert bad.status_code == 401
    limited = client.post("/api/auth/token", data={"username": email, "password": PASSWORD})
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert limited.json()["code"] == "rate_limited"
    # Another account from the same address is not locked out by these five failures.
    assert bearer(client, brokerage.agent)


def test_me_requires_authentication(client: TestClient) -> None:
    response = client.get("/api/auth/me")
    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication required", "code": "not_authenticated"}


def test_malformed_authorization_header(client: TestClient) -> None:
    response = client.get("/api/auth/me", headers={"Authorization": "Basic abc"})
    assert response.status_code == 401


def test_roles_are_reported(client: TestClient, brokerage: Brokerage) -> None:
    for role in Role:
        user = brokerage.by_role(role)
        me = client.get("/api/auth/me", headers=bearer(client, user)).json()
        assert me["role"] == role
