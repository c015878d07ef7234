"""Platform pages: sign-in, safe redirects, error pages, htmx errors, branding, user admin."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from doorstep.platform.auth import User
from tests.conftest import PASSWORD, Brokerage, csrf_from, web_login


def test_login_page_sets_csrf_cookie(client: TestClient) -> None:
    page = client.get("/login")
    assert page.status_code == 200
    assert "Sign in to your account" in page.text
    assert client.cookies.get("doorstep_csrf") == csrf_from(page.text)


def test_wrong_password_shows_the_error(client: TestClient, brokerage: Brokerage) -> None:
    page = client.get("/login")
    response = client.post(
        "/login",
        data={
            "email": brokerage.agent.email,
            "password": "wrong-password",
            "csrf_token": csrf_from(page.text),
        },
    )
    assert response.status_code == 401
    assert 'data-testid="login-error"' in response.text
    assert "Incorrect email or password" in response.text
    assert brokerage.agent.email in response.text  # the form keeps what was typed


def test_session_cookie_flags(client: TestClient, brokerage: Brokerage) -> None:
    page = client.get("/login")
    response = client.post(
        "/login",
        data={
            "email": brokerage.agent.email,
            "password": PASSWORD,
            "csrf_token": csrf_from(page.text),
        },
        follow_redirects=False,
    )
    cookie = response.headers["set-cookie"].lower()
    assert "doorstep_session=" in cookie
    assert "httponly" in cookie
    assert "samesite=lax" in cookie


def test_login_returns_to_next_but_never_off_site(client: TestClient, brokerage: Brokerage) -> None:
    for target, expected in (
        ("/admin/users", "/admin/users"),
        ("//evil.example/x", "/"),
        ("https://evil.example", "/"),
    ):
        client.cookies.clear()
        page = client.get("/login")
        response = client.post(
            "/login",
            data={
                "email": brokerage.admin.email,
                "password": PASSWORD,
                "csrf_token": csrf_from(page.text),
                "next": target,
            },
            follow_redirects=False,
        )
        assert response.headers["location"] == expected


def test_html_404_and_htmx_errors(client: TestClient, brokerage: Brokerage) -> None:
    web_login(client, brokerage.agent)
    page = client.get("/no/such/page", headers={"accept": "text/html"})
    assert page.status_code == 404
    assert 'data-testid="error-page"' in page.text
    htmx = client.get("/admin/users", headers={"HX-Request": "true"})
    assert htmx.status_code == 403
    assert htmx.json()["code"] == "forbidden"  # the page script turns it into a toast


def test_htmx_request_without_session_is_redirected_to_login(client: TestClient) -> None:
    response = client.get("/", headers={"HX-Request": "true"})
    assert response.headers["hx-redirect"] == "/login"


def test_branding_form_changes_every_page(client: TestClient, brokerage: Brokerage) -> None:
    token = web_login(client, brokerage.admin)
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
    response = client.post(
        "/admin/branding",
        data={
            "name": "Alpha Luxury",
            "primary_color": "#c2255c",
            "timezone": "Europe/Paris",
            "csrf_token": token,
        },
        files={"logo": ("logo.png", png, "image/png")},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    home = client.get("/").text
    assert "Alpha Luxury" in home
    assert "--tblr-primary: #c2255c" in home
    assert "194, 37, 92" in home
    assert 'src="/api/tenant/logo"' in home
    assert client.get("/api/tenant/logo").content == png


def test_branding_form_reports_bad_input(client: TestClient, brokerage: Brokerage) -> None:
    token = web_login(client, brokerage.admin)
    response = client.post(
        "/admin/branding",
        data={"name": "Alpha", "primary_color": "#zzzzzz", "timezone": "UTC", "csrf_token": token},
    )
    assert response.status_code == 422
    assert "must be a colour" in response.text
    assert "Alpha Homes" in client.get("/").text


def test_user_admin_page_creates_and_paginates(
    client: TestClient, brokerage: Brokerage, db: Session
) -> None:
    token = web_login(client, brokerage.admin)
    created = client.post(
        "/admin/users",
        data={
            "email": "fresh.agent@example.com",
            "full_name": "Fresh Agent",
            "role": "agent",
            "password": "long-enough-password",
            "broker_id": str(brokerage.broker.id),
            "csrf_token": token,
        },
    )
    assert created.status_code == 200
    assert "Fresh Agent can now sign in" in created.text
    user = db.scalar(select(User).where(User.email == "fresh.agent@example.com"))
    assert user is not None
    assert user.broker_id == brokerage.broker.id
    search = client.get("/admin/users", params={"q": "fresh"})
    assert "fresh.agent@example.com" in search.text
    assert brokerage.client.email not in search.text


def test_user_admin_form_shows_validation_errors(client: TestClient, brokerage: Brokerage) -> None:
    token = web_login(client, brokerage.admin)
    response = client.post(
        "/admin/users",
        data={
            "email": "bad",
            "full_name": "X",
            "role": "agent",
            "password": "short",
            "csrf_token": token,
        },
    )
    assert response.status_code == 422
    assert 'data-testid="form-error"' in response.text
    assert "email" in response.text
    assert "password" in response.text


def test_user_filter_accepts_all_roles(client: TestClient, brokerage: Brokerage) -> None:
    web_login(client, brokerage.admin)
    page = client.get("/admin/users", params={"role": "", "q": brokerage.agent.full_name})
    assert page.status_code == 200
    assert brokerage.agent.email in page.text
    assert client.get("/admin/users", params={"role": "king"}).status_code == 422


def test_error_pages_keep_the_tenant_branding(client: TestClient, brokerage: Brokerage) -> None:
    web_login(client, brokerage.agent)
    page = client.get("/admin/users", headers={"accept": "text/html"})
    assert page.status_code == 403
    assert "Alpha Homes" in page.text


def test_recent_changes_fragment_is_admin_only(client: TestClient, brokerage: Brokerage) -> None:
    web_login(client, brokerage.admin)
    fragment = client.get("/admin/recent-changes", headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert 'data-testid="recent-changes"' in fragment.text
    assert 'data-live-refresh="user.created user.updated tenant.updated"' in client.get("/").text
    client.cookies.clear()
    web_login(client, brokerage.broker)
    assert client.get("/admin/recent-changes", headers={"HX-Request": "true"}).status_code == 403
