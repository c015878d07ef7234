"""CSRF: every state-changing form and htmx request of a cookie session needs the token."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from doorstep.platform.auth import User
from tests.conftest import PASSWORD, Brokerage, bearer, csrf_from, web_login


def test_login_form_without_token_is_refused(client: TestClient, brokerage: Brokerage) -> None:
    client.get("/login")
    response = client.post(
        "/login",
        data={"email": brokerage.agent.email, "password": PASSWORD},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert "CSRF" in response.text
    assert "doorstep_session" not in response.cookies


def test_login_form_with_foreign_token_is_refused(client: TestClient, brokerage: Brokerage) -> None:
    client.get("/login")
    response = client.post(
        "/login",
        data={"email": brokerage.agent.email, "password": PASSWORD, "csrf_token": "x" * 43},
        follow_redirects=False,
    )
    assert response.status_code == 403


def _new_user_form(token: str | None) -> dict[str, str]:
    form = {
        "email": "csrf-victim@example.com",
        "full_name": "Created By Forgery",
        "role": "analyst",
        "password": "long-enough-password",
    }
    if token:
        form["csrf_token"] = token
    return form


def test_admin_form_needs_the_session_token(
    client: TestClient, brokerage: Brokerage, db: Session
) -> None:
    token = web_login(client, brokerage.admin)
    refused = client.post("/admin/users", data=_new_user_form(None), follow_redirects=False)
    assert refused.status_code == 403
    count = select(func.count()).select_from(User).where(User.email == "csrf-victim@example.com")
    assert db.scalar(count) == 0
    # The anonymous login-page token is not the session's token.
    accepted = client.post("/admin/users", data=_new_user_form(token), follow_redirects=False)
    assert accepted.status_code == 303, accepted.text
    db.expire_all()
    assert db.scalar(count) == 1


def test_htmx_requests_send_the_token_in_a_header(client: TestClient, brokerage: Brokerage) -> None:
    token = web_login(client, brokerage.agent)
    headers = {"HX-Request": "true"}
    assert client.post("/theme", headers=headers).status_code == 403
    ok = client.post("/theme", headers={**headers, "X-CSRF-Token": token})
    assert ok.status_code == 204
    assert ok.cookies.get("doorstep_theme") == "dark"


def test_logout_form_needs_the_token(client: TestClient, brokerage: Brokerage) -> None:
    token = web_login(client, brokerage.client)
    assert client.post("/logout", follow_redirects=False).status_code == 403
    assert client.get("/", follow_redirects=False).status_code == 200  # still signed in
    out = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303
    assert (
        client.get("/", headers={"accept": "text/html"}, follow_redirects=False).status_code == 303
    )


def test_cookie_authenticated_api_calls_need_the_token(
    client: TestClient, brokerage: Brokerage
) -> None:
    token = web_login(client, brokerage.admin)
    body = {"primary_color": "#123456"}
    assert client.patch("/api/tenant", json=body).status_code == 403
    assert (
        client.patch("/api/tenant", json=body, headers={"X-CSRF-Token": token}).status_code == 200
    )


def test_bearer_clients_need_no_csrf_token(client: TestClient, brokerage: Brokerage) -> None:
    response = client.patch(
        "/api/tenant", json={"name": "Alpha Homes West"}, headers=bearer(client, brokerage.admin)
    )
    assert response.status_code == 200


def test_session_token_differs_between_sessions(
    client: TestClient, brokerage: Brokerage, app
) -> None:
    first = web_login(client, brokerage.admin)
    with TestClient(app) as other:
        second = web_login(other, brokerage.admin)
    assert first != second
    assert csrf_from(client.get("/").text) == first
