"""The session cache: an authenticated read needs no query, and a revocation or a change of the
user or tenant still takes effect at once (in this process directly, in the others by the bus)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event, text, update
from sqlalchemy.orm import Session

from doorstep.platform import auth
from doorstep.platform.auth import AuthSession, User
from doorstep.platform.auth_cache import Identity, SessionCache, invalidate_local
from doorstep.platform.errors import InvalidToken
from tests.conftest import Brokerage, bearer, web_login


@contextmanager
def statements(app: FastAPI) -> Iterator[list[str]]:
    """The SQL statements the app's sessions run meanwhile."""
    seen: list[str] = []
    bind = app.state.sessionmaker.kw["bind"]
    engine = bind.engine

    def record(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        seen.append(sql)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def me(client: TestClient, headers: dict[str, str]) -> Any:
    return client.get("/api/auth/me", headers=headers)


# --- through the API, one process -----------------------------------------------------------------


def test_a_second_read_runs_no_query(
    app: FastAPI, client: TestClient, brokerage: Brokerage
) -> None:
    headers = bearer(client, brokerage.agent)
    with statements(app) as first:
        assert me(client, headers).status_code == 200
    with statements(app) as second:
        body = me(client, headers).json()
    assert any("auth_sessions" in sql for sql in first), "the first read checks the session"
    assert second == [], "the second read is answered from the cache"
    assert body["email"] == brokerage.agent.email
    assert body["tenant"]["name"] == "Alpha Homes"


def test_logout_ends_a_cached_session_at_once(client: TestClient, brokerage: Brokerage) -> None:
    headers = bearer(client, brokerage.agent)
    assert me(client, headers).status_code == 200
    assert client.post("/api/auth/logout", headers=headers).status_code == 204
    assert me(client, headers).status_code == 401


def test_deactivating_a_user_ends_their_cached_sessions(
    client: TestClient, brokerage: Brokerage
) -> None:
    agent = bearer(client, brokerage.agent)
    admin = bearer(client, brokerage.admin)
    assert me(client, agent).status_code == 200
    changed = client.patch(
        f"/api/users/{brokerage.agent.id}", json={"is_active": False}, headers=admin
    )
    assert changed.status_code == 200, changed.text
    refused = me(client, agent)
    assert refused.status_code == 401
    assert refused.json()["code"] == "invalid_token"


def test_a_changed_name_and_tenant_show_at_once(client: TestClient, brokerage: Brokerage) -> None:
    agent = bearer(client, brokerage.agent)
    admin = bearer(client, brokerage.admin)
    assert me(client, agent).json()["full_name"] == brokerage.agent.full_name
    client.patch(f"/api/users/{brokerage.agent.id}", json={"full_name": "Renamed"}, headers=admin)
    client.patch("/api/tenant", json={"name": "Alpha Homes & Co"}, headers=admin)
    body = me(client, agent).json()
    assert body["full_name"] == "Renamed"
    assert body["tenant"]["name"] == "Alpha Homes & Co"


def test_a_change_outside_any_request_reaches_the_cache(
    client: TestClient, brokerage: Brokerage, db: Session
) -> None:
    """A job or a service call in this process (here: the test's own session) counts too."""
    headers = bearer(client, brokerage.agent)
    assert me(client, headers).status_code == 200
    user = db.get(User, brokerage.agent.id)
    assert user is not None
    user.role = "analyst"  # type: ignore[assignment]
    db.commit()
    assert me(client, headers).json()["role"] == "analyst"


def test_a_change_behind_doorsteps_back_is_seen_after_the_ttl(
    app: FastAPI, client: TestClient, brokerage: Brokerage, db: Session
) -> None:
    """SQL by hand tells no cache: the entry is trusted for `ttl` seconds, then re-read."""
    now = [1000.0]
    cache: SessionCache = app.state.session_cache
    cache._clock = lambda: now[0]
    headers = bearer(client, brokerage.agent)
    assert me(client, headers).status_code == 200
    db.execute(update(AuthSession).values(revoked_at=text("CURRENT_TIMESTAMP")))
    db.commit()
    assert me(client, headers).status_code == 200, "still inside the ttl"
    now[0] += cache.ttl
    assert me(client, headers).status_code == 401


def test_a_cookie_session_is_cached_and_checked_too(
    app: FastAPI, client: TestClient, brokerage: Brokerage
) -> None:
    web_login(client, brokerage.agent)
    assert client.get("/api/auth/me").status_code == 200
    with statements(app) as seen:
        assert client.get("/api/auth/me").status_code == 200
    assert seen == []
    sid, _secret = auth.split_token(client.cookies["doorstep_session"])
    client.cookies.clear()
    client.cookies.set("doorstep_session", f"{sid}.not-the-secret")
    assert client.get("/api/auth/me").status_code == 401


# --- the cache itself ---------------------------------------------------------------------------


def identity(session_id: str = "s1", user_id: int = 7, tenant_id: int = 3) -> Identity:
    from datetime import UTC, datetime

    from doorstep.platform.auth import Principal, Role
    from doorstep.platform.schemas import Me, TenantRead

    principal = Principal(
        user_id=user_id,
        tenant_id=tenant_id,
        role=Role.agent,
        email="a@x.test",
        full_name="A",
        session_id=session_id,
    )
    tenant = TenantRead(id=tenant_id, slug="x", name="X", primary_color="#206bc4", timezone="UTC")
    me = Me(
        id=user_id,
        tenant_id=tenant_id,
        email="a@x.test",
        full_name="A",
        role=Role.agent,
        phone=None,
        broker_id=None,
        agent_id=None,
        is_active=True,
        created_at=datetime.now(UTC),
        last_login_at=None,
        tenant=tenant,
    )
    return Identity(
        principal, me.model_dump_json().encode(), "api", None, None, expires_at=4102444800.0
    )


def test_entries_expire_after_the_ttl() -> None:
    now = [0.0]
    cache = SessionCache(ttl=30, clock=lambda: now[0])
    cache.store(identity(), generation=cache.generation)
    now[0] = 29.9
    assert cache.get("s1") is not None
    now[0] = 30.0
    assert cache.get("s1") is None


def test_a_read_that_raced_an_invalidation_is_not_kept() -> None:
    cache = SessionCache(ttl=30)
    started = cache.generation
    invalidate_local(["s:other"])  # committed while the read was in flight
    cache.store(identity(), generation=started)
    assert cache.get("s1") is None
    cache.store(identity(), generation=cache.generation)
    assert cache.get("s1") is not None


@pytest.mark.parametrize(
    ("key", "dropped"),
    [("s:s1", {"s1"}), ("u:7", {"s1", "s2"}), ("t:3", {"s1", "s2", "s3"}), ("u:99", set())],
)
def test_invalidation_by_session_user_and_tenant(key: str, dropped: set[str]) -> None:
    cache = SessionCache(ttl=30)
    for sid, uid in (("s1", 7), ("s2", 7), ("s3", 8)):
        cache.store(identity(sid, user_id=uid), generation=cache.generation)
    cache.invalidate([key])
    assert {sid for sid in ("s1", "s2", "s3") if cache.get(sid) is None} == dropped


def test_ttl_zero_turns_the_cache_off() -> None:
    cache = SessionCache(ttl=0)
    cache.store(identity(), generation=cache.generation)
    assert cache.get("s1") is None


def test_an_expired_session_or_token_is_refused_even_when_cached() -> None:
    expired = replace(identity(), expires_at=1.0)
    with pytest.raises(InvalidToken):
        expired.for_token({"sub": "7"})
    with pytest.raises(InvalidToken, match="does not match"):
        identity().for_token({"sub": "8"})
    with pytest.raises(InvalidToken):
        identity().for_cookie("secret")  # an API session is no cookie


def test_settings_reach_the_cache(app: FastAPI) -> None:
    assert app.state.session_cache.ttl == app.state.settings.auth_cache_seconds
