"""The live dashboard's Socket.IO edge against real server processes, with python-socketio's
own client: credentials, joining, payload checks, and changes reaching the dashboard through the
platform's hub (and, in production mode, across two servers through Redis).

Every wait is for a condition (an event arrived), with a generous deadline; never a fixed
sleep."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest
import socketio
from sqlalchemy.orm import Session

from doorstep.platform import events
from doorstep.reports.models import Company, Valuation
from tests.databases import PRODUCTION
from tests.platform.realtime_helpers import (
    ADMIN,
    AGENT,
    TIMEOUT,
    Server,
    Site,
    access_token,
    demo_site,
    running,
    session_cookie,
)

ANALYST = "analyst@doorstep.demo"
BROKER = "broker@doorstep.demo"
SEED_FIELDS = {
    "timestamp",
    "user_id",
    "summary",
    "companies",
    "recent_activity",
    "alerts",
    "recommendations",
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, demo_database: str) -> Iterator[Site]:
    with demo_site(tmp_path_factory.mktemp("sio"), "sio", demo_database) as made:
        yield made


@pytest.fixture(scope="module")
def server(site: Site) -> Iterator[Server]:
    with running(site, "sio") as made:
        yield made


@dataclass
class Dashboard:
    """A python-socketio client that keeps every event it receives, in order."""

    label: str = "client"
    client: socketio.AsyncClient = field(default_factory=socketio.AsyncClient)
    received: list[tuple[str, Any]] = field(default_factory=list)
    refused: Any = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        @self.client.on("*")
        async def anything(event: str, data: Any = None) -> None:
            self.received.append((event, data))
            self._arrived.set()

        @self.client.event
        async def connect_error(data: Any) -> None:
            self.refused = data
            self._arrived.set()

    async def connect(self, server: Server, **options: Any) -> None:
        await self.client.connect(server.url, wait_timeout=TIMEOUT, **options)

    def names(self) -> list[str]:
        return [name for name, _ in self.received]

    def of(self, name: str) -> list[Any]:
        return [data for n, data in self.received if n == name]

    async def wait_for(self, check: Callable[[Dashboard], bool], what: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not check(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{self.label}: no {what}; received {self.names()[-8:]}")
            self._arrived.clear()
            if check(self):
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    async def wait_count(self, name: str, count: int) -> list[Any]:
        await self.wait_for(lambda d: len(d.of(name)) >= count, f"{count} x {name}")
        return self.of(name)

    async def close(self) -> None:
        if self.client.connected:
            await self.client.disconnect()


@contextlib.asynccontextmanager
async def dashboard(
    server: Server, label: str = "client", **options: Any
) -> AsyncIterator[Dashboard]:
    made = Dashboard(label)
    await made.connect(server, **options)
    try:
        yield made
    finally:
        await made.close()


async def joined(server: Server, email: str, user_id: int, label: str) -> Dashboard:
    made = Dashboard(label)
    await made.connect(server, auth={"token": access_token(server, email)})
    await made.client.emit("join_dashboard", {"user_id": user_id})
    await made.wait_count("dashboard_data", 1)
    return made


async def refused(server: Server, **options: Any) -> Any:
    made = Dashboard("refused")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await made.connect(server, **options)
    await made.close()
    assert made.refused is not None, "the server gave no reason"
    return made.refused


# --- joining ---------------------------------------------------------------------------------


async def test_join_with_a_token_sends_joined_then_the_dashboard_data(
    site: Site, server: Server
) -> None:
    analyst = site.user_id(ANALYST)
    async with dashboard(server, auth={"token": access_token(server, ANALYST)}) as d:
        await d.client.emit("join_dashboard", {"user_id": analyst})
        (data,) = await d.wait_count("dashboard_data", 1)
        # The seed's test: the first event after joining is `joined_dashboard`.
        assert d.names()[:2] == ["joined_dashboard", "dashboard_data"]
        assert d.of("joined_dashboard")[0]["user_id"] == analyst
        assert set(data) >= SEED_FIELDS
        assert data["user_id"] == analyst
        assert set(data["summary"]) == {
            "total_companies",
            "total_valuations",
            "avg_confidence",
            "portfolio_value",
        }
        # request_update re-sends fresh figures of each kind.
        await d.client.emit("request_update", {"type": "dashboard", "user_id": analyst})
        await d.wait_count("dashboard_data", 2)
        await d.client.emit("request_update", {"type": "performance", "user_id": analyst})
        (figures,) = await d.wait_count("performance_update", 1)
        assert figures["connections"]["socketio"] >= 1
        assert figures["requests"]["requests_total"] > 0
        await d.client.emit("request_update", {"type": "market", "user_id": analyst})
        (market,) = await d.wait_count("market_update", 1)
        assert "industries" in market
        assert not d.of("error")


async def test_a_browser_session_cookie_works_from_our_pages_only(
    site: Site, server: Server
) -> None:
    cookie = session_cookie(server, BROKER)
    broker = site.user_id(BROKER)
    headers = {"Cookie": f"doorstep_session={cookie}", "Origin": server.url}
    async with dashboard(server, headers=headers) as d:
        await d.client.emit("join_dashboard", {"user_id": broker})
        await d.wait_count("dashboard_data", 1)
    # From another site the handshake is refused (python-engineio's same-origin rule, before
    # our own origin check would refuse the cookie too).
    handshake = httpx.get(
        f"{server.url}/socket.io/",
        params={"EIO": "4", "transport": "polling"},
        headers={"Cookie": f"doorstep_session={cookie}", "Origin": "http://evil.example"},
        timeout=TIMEOUT,
    )
    assert handshake.status_code == 400
    assert "origin" in handshake.text.lower()


async def test_joining_another_users_dashboard_is_refused(site: Site, server: Server) -> None:
    analyst, admin = site.user_id(ANALYST), site.user_id(ADMIN)
    async with dashboard(server, auth={"token": access_token(server, ANALYST)}) as d:
        await d.client.emit("join_dashboard", {"user_id": admin})
        (error,) = await d.wait_count("error", 1)
        assert error["code"] == "forbidden"
        assert error["event"] == "join_dashboard"
        # Nothing else happened: not joined, no data; joining as oneself still works.
        await d.client.emit("join_dashboard", {"user_id": analyst})
        await d.wait_count("dashboard_data", 1)
        assert d.names().count("joined_dashboard") == 1
        assert d.of("joined_dashboard")[0]["user_id"] == analyst


async def test_connections_without_valid_credentials_or_role_are_refused(
    site: Site, server: Server
) -> None:
    nothing = await refused(server)
    assert "Sign in first" in nothing["message"]
    assert nothing["data"]["code"] == "invalid_token"
    forged = await refused(server, auth={"token": "not-a-jwt"})
    assert forged["data"]["code"] == "invalid_token"
    shaped = await refused(server, auth={"jwt": "x"})
    assert "token" in shaped["message"]
    agent = await refused(server, auth={"token": access_token(server, AGENT)})
    assert agent["data"]["code"] == "forbidden"
    assert "admin, analyst, broker" in agent["message"]


async def test_bad_payloads_get_an_error_and_nothing_else(site: Site, server: Server) -> None:
    analyst = site.user_id(ANALYST)
    bad: list[tuple[str, Any, str]] = [
        ("join_dashboard", "hello", "object"),
        ("join_dashboard", None, "object"),
        ("join_dashboard", {}, "user_id is required"),
        ("join_dashboard", {"user_id": str(analyst)}, "integer"),
        ("join_dashboard", {"user_id": True}, "integer"),
        ("join_dashboard", {"user_id": [analyst]}, "integer"),
        ("request_update", {"user_id": analyst}, "type must be one of"),
        ("request_update", {"type": 7, "user_id": analyst}, "type must be one of"),
        ("request_update", {"type": "everything", "user_id": analyst}, "type must be one of"),
        ("request_update", {"type": "dashboard", "user_id": analyst}, "join_dashboard first"),
        ("request_update", {"type": "dashboard"}, "user_id is required"),
    ]
    async with dashboard(server, auth={"token": access_token(server, ANALYST)}) as d:
        for n, (event, payload, expected) in enumerate(bad, 1):
            await d.client.emit(event, payload)
            errors = await d.wait_count("error", n)
            assert errors[-1]["event"] == event
            assert expected in errors[-1]["detail"], (payload, errors[-1])
        assert set(d.names()) == {"error"}
        assert d.client.connected


# --- changes reach the dashboard -------------------------------------------------------------


def _valuation_created(site: Site, tenant_id: int, name: str) -> int:
    """A company and its valuation written straight to the database with its outbox event, as
    a worker or another process would: no bus announcement, the hub's polling finds it."""
    with Session(site.engine) as session, session.begin():
        company = Company(tenant_id=tenant_id, name=name, industry="Coffee shops")
        session.add(company)
        session.flush()
        session.add(
            Valuation(
                tenant_id=tenant_id,
                company_id=company.id,
                method="dcf",
                value=Decimal(2_000_000),
                low=Decimal(1_800_000),
                high=Decimal(2_200_000),
                confidence=Decimal("0.75"),
                valued_on=date(2025, 9, 30),
            )
        )
        row = events.record(
            session,
            tenant_id=tenant_id,
            channels=[f"tenant:{tenant_id}"],
            type="valuation.created",
            data={"company_id": company.id, "company": name},
        )
        return row.id


async def test_a_committed_change_arrives_as_activity_and_a_refreshed_dashboard(
    site: Site, server: Server
) -> None:
    admin = site.user_id(ADMIN)
    d = await joined(server, ADMIN, admin, "admin")
    try:
        before = len(d.of("dashboard_data"))
        # 1. Through the API (the request's commit announces on the bus).
        token = access_token(server, ADMIN)
        response = httpx.patch(
            f"{server.url}/api/users/{site.user_id(AGENT)}",
            json={"phone": "+15550001111"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=TIMEOUT,
        )
        assert response.status_code == 200, response.text
        await d.wait_for(
            lambda x: any(
                a["type"] == "user.updated" and a["data"].get("phone") == "+15550001111"
                for a in x.of("activity_update")
            ),
            "the user.updated activity",
        )
        await d.wait_count("dashboard_data", before + 1)
        # 2. Written by another process straight into the outbox.
        name = f"Fresh Roast {time.monotonic_ns()}"
        event_id = _valuation_created(site, site.tenant_of(ADMIN), name)
        await d.wait_for(
            lambda x: any(a["id"] == event_id for a in x.of("activity_update")),
            "the valuation.created activity",
        )
        await d.wait_for(
            lambda x: any(
                c["name"] == name for data in x.of("dashboard_data") for c in data["companies"]
            ),
            "a dashboard with the new company",
        )
        created = next(a for a in d.of("activity_update") if a["id"] == event_id)
        assert created["type"] == "valuation.created"
        assert not d.of("error")
    finally:
        await d.close()


async def test_another_tenants_changes_never_arrive(site: Site, server: Server) -> None:
    admin = site.user_id(ADMIN)
    harbor = site.tenant_of("admin@harborhomes.demo")
    d = await joined(server, ADMIN, admin, "admin")
    try:
        foreign = _valuation_created(site, harbor, f"Harbor Beans {time.monotonic_ns()}")
        mine = _valuation_created(site, site.tenant_of(ADMIN), f"Own Beans {time.monotonic_ns()}")
        # Events of one tenant are read in order; by the time the later own one arrives the
        # foreign one (written first) would have too.
        await d.wait_for(
            lambda x: any(a["id"] == mine for a in x.of("activity_update")), "own event"
        )
        assert all(a["id"] != foreign for a in d.of("activity_update"))
        assert "Harbor Beans" not in str(d.of("dashboard_data"))
    finally:
        await d.close()


# --- two server processes on one Redis -------------------------------------------------------


@pytest.mark.skipif(
    not PRODUCTION,
    reason="needs two server processes sharing one PostgreSQL database and Redis "
    "(production mode: scripts/test_production.py); the embedded mode is one process",
)
async def test_across_two_servers_through_redis(site: Site) -> None:
    admin = site.user_id(ADMIN)
    with running(site, "sio-a") as a, running(site, "sio-b") as b:
        on_b = await joined(b, ADMIN, admin, "client-of-b")
        on_a = await joined(a, ADMIN, admin, "client-of-a")
        try:
            # 1. The event bus: a change committed through A reaches B's hub and its socket.
            token = access_token(a, ADMIN)
            response = httpx.patch(
                f"{a.url}/api/users/{site.user_id(AGENT)}",
                json={"phone": "+15550002222"},
                headers={"Authorization": f"Bearer {token}"},
                timeout=TIMEOUT,
            )
            assert response.status_code == 200, response.text
            await on_b.wait_for(
                lambda x: any(
                    a["data"].get("phone") == "+15550002222" for a in x.of("activity_update")
                ),
                "the change made through A",
            )
            # 2. The Socket.IO Redis manager: a refresh asked for on A reaches the same user's
            # socket on B (an emit to the user's room, published through Redis).
            await on_a.wait_count("dashboard_data", 2)  # the join's and the change's
            await on_b.wait_count("dashboard_data", 2)
            before_b = len(on_b.of("dashboard_data"))
            before_a = len(on_a.of("dashboard_data"))
            await on_a.client.emit("request_update", {"type": "dashboard", "user_id": admin})
            fresh = (await on_a.wait_count("dashboard_data", before_a + 1))[-1]
            await on_b.wait_for(
                lambda x: any(
                    data["timestamp"] == fresh["timestamp"]
                    for data in x.of("dashboard_data")[before_b:]
                ),
                "A's refreshed dashboard on B",
            )
        finally:
            await on_a.close()
            await on_b.close()
