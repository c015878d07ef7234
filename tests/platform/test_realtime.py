"""The live stream end to end, against real server processes on demo data: delivery that
survives a SIGKILL, fan-out across processes over Redis, channel and audience authorisation,
resume, slow clients, heartbeats and idle connections.

Each test starts its own `doorstep serve` process(es) (settings such as the queue size or the
heartbeat are per process) on one demo database per module. Run with `-s` to see the figures."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
import statistics
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import redis.asyncio as aioredis
from sqlalchemy.orm import Session, sessionmaker
from starlette.websockets import WebSocketDisconnect

from doorstep.platform import events, realtime
from doorstep.platform.auth import Principal, Role
from doorstep.platform.events import Audience
from doorstep.platform.wsserver import text_frame
from tests.databases import PRODUCTION, REDIS
from tests.platform.realtime_helpers import (
    ADMIN,
    AGENT,
    BUYER,
    HARBOR_ADMIN,
    TIMEOUT,
    Api,
    Client,
    Server,
    Site,
    access_token,
    demo_site,
    hello,
    refused,
    running,
    session_cookie,
    wait_until,
    ws_url,
)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_OVERFLOW = 4008
CLOSE_IDLE = 4000
CLOSE_BAD_INPUT = 4400


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, demo_database: str) -> Iterator[Site]:
    with demo_site(tmp_path_factory.mktemp("realtime"), "realtime", demo_database) as made:
        yield made


def user_events(client: Client, user_id: int) -> list[dict[str, Any]]:
    return [
        m
        for m in client.events
        if m["type"] == "user.updated" and m["data"].get("user_id") == user_id
    ]


def changes(client: Client) -> list[dict[str, Any]]:
    return [m for m in client.events if m["type"] == "user.updated"]


def at_least(count: int, *types: str) -> Callable[[Client], bool]:
    return lambda client: len(client.of_type(*types)) >= count


def strictly_increasing(ids: list[int]) -> bool:
    return all(a < b for a, b in itertools.pairwise(ids))


# --- 1. reliability across a SIGKILL ------------------------------------------------------------

TOTAL_CHANGES = 1000
KILL_AFTER = 400
# PostgreSQL takes a few concurrent writers. SQLite (embedded mode) gets them one at a time: its
# request transactions start deferred, so two concurrent writers fail with "database is locked".
CONCURRENCY = 4 if PRODUCTION else 1


def phone(n: int) -> str:
    return f"+1555{n:07d}"


async def test_every_committed_change_arrives_exactly_once_in_order_across_a_sigkill(
    site: Site,
) -> None:
    """1,000 changes; the server is SIGKILLed after ~400 acknowledged ones and restarted on the
    same database; the subscriber resumes from the last id it saw. Delivered = committed."""
    tenant = site.tenant_of(ADMIN)
    agent = site.user_id("agent2@doorstep.demo")
    start = site.latest_event_id(tenant)
    server = Server(site, "reliability").start()
    try:
        token = access_token(server, ADMIN)
        api = Api(server, token)
        first = await hello(ws_url(server, token=token), "before-kill", ping_interval=None)

        up = asyncio.Event()
        up.set()
        kill_now = asyncio.Event()
        numbers = iter(range(TOTAL_CHANGES))
        acknowledged: list[int] = []
        per_worker: dict[int, list[int]] = {w: [] for w in range(CONCURRENCY)}
        in_flight_failures: list[tuple[int, str]] = []
        refused_requests: list[tuple[int, int, str]] = []
        state = {"api": api}

        async def produce(worker: int) -> None:
            for n in numbers:
                await up.wait()
                try:
                    response = await state["api"].set_phone(agent, phone(n))
                except httpx.TransportError as exc:  # the kill cut this request off
                    in_flight_failures.append((n, type(exc).__name__))
                    continue
                if response.status_code != 200:
                    refused_requests.append((n, response.status_code, response.text[:200]))
                    continue
                acknowledged.append(n)
                per_worker[worker].append(n)
                if len(acknowledged) == KILL_AFTER:
                    kill_now.set()

        async def kill_and_restart() -> None:
            await kill_now.wait()
            up.clear()  # the producers stop starting new requests; those in flight are cut off
            server.kill()
            await asyncio.to_thread(server.start)  # same port, same database
            old, state["api"] = state["api"], Api(server, token)
            await old.aclose()
            up.set()

        async def resume() -> Client:
            await first.wait_closed(timeout=120)  # the kill drops the connection
            await up.wait()
            seen = first.event_ids()
            return await hello(
                ws_url(server, token=token, last_event_id=seen[-1] if seen else start),
                "after-restart",
                ping_interval=None,
            )

        began = time.monotonic()
        resumed = asyncio.create_task(resume())
        killer = asyncio.create_task(kill_and_restart())
        try:
            await asyncio.gather(*(produce(w) for w in range(CONCURRENCY)))
            assert kill_now.is_set(), f"never reached {KILL_AFTER} acknowledged changes"
            await killer
            second = await resumed
        finally:
            for task in (killer, resumed):
                task.cancel()
        produced_in = time.monotonic() - began

        # Delivery is in id order, so once a final change arrives, everything before it has.
        await state["api"].changed(agent, "+15559999999")
        committed = [
            e
            for e in site.events(tenant_id=tenant, after=start, type_="user.updated")
            if e.data["user_id"] == agent
        ]
        sentinel = committed.pop()
        assert sentinel.data["phone"] == "+15559999999"
        await second.wait_for(lambda c: c.has_event(sentinel.id), "the final change")
        await state["api"].aclose()

        received = [
            m
            for m in user_events(first, agent) + user_events(second, agent)
            if m["id"] != sentinel.id
        ]
        received_ids = [m["id"] for m in received]
        committed_phones = {e.data["phone"] for e in committed}
        acknowledged_phones = {phone(n) for n in acknowledged}
        failed_phones = {phone(n) for n, _ in in_flight_failures}
        summary = {
            "attempted": TOTAL_CHANGES,
            "acknowledged": len(acknowledged),
            "failed_in_flight": len(in_flight_failures),
            "committed": len(committed),
            "committed_unacknowledged": len(committed_phones - acknowledged_phones),
            "lost_in_flight": len(failed_phones - committed_phones),
            "received_before_kill": len(user_events(first, agent)),
            "received_after_restart": len(user_events(second, agent)) - 1,
            "received": len(received),
            "seconds": round(produced_in, 1),
        }
        print(f"\nreliability across SIGKILL: {json.dumps(summary)}")
        print(f"  requests cut off by the kill: {in_flight_failures}")

        assert refused_requests == [], "the server refused changes besides the kill"
        assert first.closed is not None
        assert first.closed.rcvd is None, "the kill cut the connection off: no close frame"
        assert strictly_increasing(received_ids), "received ids must strictly increase"
        assert len(set(received_ids)) == len(received_ids), "duplicates"
        assert received_ids == [e.id for e in committed], "received != committed"
        assert [m["data"]["phone"] for m in received] == [e.data["phone"] for e in committed]
        assert acknowledged_phones <= committed_phones, "an acknowledged change was lost"
        assert committed_phones - acknowledged_phones <= failed_phones, "committed from nowhere"
        assert len(acknowledged) + len(in_flight_failures) == TOTAL_CHANGES
        # Each producer sent its changes one after another: they arrive in that order.
        order = {m["data"]["phone"]: i for i, m in enumerate(received)}
        for sent in per_worker.values():
            assert strictly_increasing([order[phone(n)] for n in sent])
    finally:
        server.stop()


# --- 2. two server processes on one Redis -------------------------------------------------------


@pytest.mark.skipif(
    not PRODUCTION,
    reason="needs two server processes sharing one PostgreSQL database and Redis "
    "(production mode: scripts/test_production.py); the embedded mode is one process",
)
async def test_a_change_made_through_one_server_reaches_a_client_of_another(site: Site) -> None:
    assert REDIS is not None
    agent = site.user_id(AGENT)
    tenant = site.tenant_of(ADMIN)
    with running(site, "server-a") as a, running(site, "server-b") as b:
        token = access_token(a, ADMIN)
        on_b = await hello(ws_url(b, token=token), "client-of-b")
        bus = aioredis.Redis.from_url(REDIS)
        pubsub = bus.pubsub()
        await pubsub.subscribe(f"{site.env['DOORSTEP_REDIS_PREFIX']}:events")
        announced: list[tuple[int, int]] = []

        async def listen() -> None:
            async for raw in pubsub.listen():
                if raw["type"] == "message":
                    tenant_id, last_id = json.loads(raw["data"])
                    announced.append((int(tenant_id), int(last_id)))

        listener = asyncio.create_task(listen())
        api = Api(a, token)
        latencies: list[float] = []
        try:
            for n in range(20):
                number = f"+1555700{n:04d}"
                sent = time.monotonic()
                await api.changed(agent, number)

                def arrived(c: Client, number: str = number) -> bool:
                    return any(m["data"]["phone"] == number for m in user_events(c, agent))

                await on_b.wait_for(arrived, f"change {number} on server B")
                index = next(
                    i for i, m in enumerate(on_b.messages) if m["data"].get("phone") == number
                )
                latencies.append(on_b.received_at[index] - sent)
            delivered = user_events(on_b, agent)
            last_id = delivered[-1]["id"]
            await wait_until(
                lambda: any(t == tenant and i >= last_id for t, i in announced),
                "server A's announcement on Redis",
            )
        finally:
            listener.cancel()
            await pubsub.aclose()
            await bus.aclose()
            await api.aclose()
            await on_b.close()
        ms = sorted(round(x * 1000, 1) for x in latencies)
        print(
            f"\nA -> Redis -> B delivery latency over {len(ms)} changes (ms, from sending the "
            f"PATCH): min {ms[0]}, median {statistics.median(ms)}, "
            f"p90 {ms[int(len(ms) * 0.9) - 1]}, max {ms[-1]}"
        )
        assert strictly_increasing([m["id"] for m in delivered])
        assert len(delivered) == 20
        # The hub also polls every second; a median far below that shows the bus delivered.
        assert statistics.median(latencies) < 0.5, ms


@pytest.mark.skipif(
    not PRODUCTION,
    reason="needs two server processes sharing one PostgreSQL database and Redis "
    "(production mode: scripts/test_production.py); the embedded mode is one process",
)
async def test_a_logout_through_one_server_ends_the_session_on_the_other(site: Site) -> None:
    """Server B has the session cached (for 30 s, platform/auth_cache.py); the logout through
    server A reaches it over the bus, well inside that time."""
    with running(site, "cache-a") as a, running(site, "cache-b") as b:
        headers = {"Authorization": f"Bearer {access_token(a, AGENT)}"}
        async with httpx.AsyncClient(timeout=TIMEOUT) as http:
            for _ in range(3):
                assert (await http.get(f"{b.url}/api/auth/me", headers=headers)).status_code == 200
            assert (await http.post(f"{a.url}/api/auth/logout", headers=headers)).status_code == 204

            async def refused_on_b() -> bool:
                return (await http.get(f"{b.url}/api/auth/me", headers=headers)).status_code == 401

            await wait_until(refused_on_b, "the logout to reach server B", timeout=10)


# --- 3. authorisation ---------------------------------------------------------------------------


async def test_channels_audiences_and_credentials_are_enforced(site: Site) -> None:
    agent = site.user_id(AGENT)
    buyer_id = site.user_id(BUYER)
    harbor = site.tenant_of(HARBOR_ADMIN)
    harbor_user = site.user_id("broker@harborhomes.demo")
    with running(site, "authorization") as server:
        admin = access_token(server, ADMIN)
        buyer = access_token(server, BUYER)
        harbor_admin = access_token(server, HARBOR_ADMIN)

        # Refused at the handshake: an error message, then close 4403.
        forbidden = [
            [f"user:{agent}"],  # another user's channel
            [f"tenant:{harbor}"],  # another tenant
            ["deal:1"],  # no such channel kind
            ["not a channel"],  # malformed
            ["tenant:"],
            [f"user:{buyer_id}", f"user:{agent}"],  # one bad channel refuses the lot
        ]
        clients = await asyncio.gather(
            *(refused(ws_url(server, token=buyer, channels=c)) for c in forbidden)
        )
        for wanted, client in zip(forbidden, clients, strict=True):
            assert client.close_code == CLOSE_FORBIDDEN, (wanted, client.closed)
            assert [m["type"] for m in client.messages] == ["error"], wanted
            assert client.messages[0]["data"]["code"] == "channel_forbidden"
        admin_refused = await refused(ws_url(server, token=admin, channels=[f"tenant:{harbor}"]))
        assert admin_refused.close_code == CLOSE_FORBIDDEN

        # Unauthenticated: no credentials, a garbage token, a token signed with another key.
        claims = jwt.decode(admin, options={"verify_signature": False})
        forged = jwt.encode(claims, "not-the-server-key-" + "x" * 32, algorithm="HS256")
        for url in (
            ws_url(server),
            ws_url(server, token="not-a-token"),
            ws_url(server, token=forged),
            ws_url(server, token=admin[:-4] + "AAAA"),
        ):
            client = await refused(url)
            assert client.close_code == CLOSE_UNAUTHENTICATED, (url, client.closed)
            assert [m["type"] for m in client.messages] == ["error"]

        # The session cookie works from our own pages, not from another site.
        cookie = {"Cookie": f"doorstep_session={session_cookie(server, ADMIN)}"}
        same_origin = await hello(
            ws_url(server), "cookie", additional_headers=cookie, origin=server.url
        )
        assert same_origin.of_type("hello")[0]["data"]["user_id"] == site.user_id(ADMIN)
        await same_origin.close()
        cross_site = await refused(
            ws_url(server), additional_headers=cookie, origin="http://evil.example"
        )
        assert cross_site.close_code == CLOSE_UNAUTHENTICATED
        assert "Cross-site" in cross_site.messages[0]["data"]["detail"]

        # Open connections: a forbidden subscribe gets an error and changes nothing.
        watcher = await hello(ws_url(server, token=admin), "admin")
        home_buyer = await hello(ws_url(server, token=buyer), "buyer")
        other_tenant = await hello(ws_url(server, token=harbor_admin), "harbor-admin")
        for channel in (f"user:{agent}", f"tenant:{harbor}", "nope:1", "bad name"):
            refusals = len(home_buyer.of_type("error")) + 1
            await home_buyer.send({"type": "subscribe", "channel": channel})
            await home_buyer.wait_for(at_least(refusals, "error"), f"refusal of {channel}")
            assert home_buyer.of_type("error")[-1]["data"]["code"] == "channel_forbidden"
        assert home_buyer.of_type("subscribed") == []

        api = Api(server, admin)
        harbor_api = Api(server, harbor_admin)
        try:
            # user.updated of an agent: on tenant:{t} (which the buyer follows) but its audience
            # is that agent and the admins; then a change of the buyer, which the buyer may see.
            await api.changed(agent, "+15550300001")
            await api.changed(buyer_id, "+15550300002")
            await harbor_api.changed(harbor_user, "+15550300003")
            await watcher.wait_for(lambda c: len(changes(c)) >= 2, "both changes for the admin")
            await home_buyer.wait_for(lambda c: bool(changes(c)), "the buyer's own change")
            await other_tenant.wait_for(lambda c: bool(changes(c)), "the harbor change")
            # Delivery is in id order: had the agent's change reached the buyer, it would have
            # arrived before the buyer's own change.
            assert [m["data"]["phone"] for m in changes(watcher)] == [
                "+15550300001",
                "+15550300002",
            ]
            assert [m["data"]["phone"] for m in changes(home_buyer)] == ["+15550300002"]
            assert [m["data"]["phone"] for m in changes(other_tenant)] == ["+15550300003"]
            assert all(m["data"]["user_id"] == harbor_user for m in changes(other_tenant))
        finally:
            await api.aclose()
            await harbor_api.aclose()
        for client in (watcher, home_buyer, other_tenant):
            assert client.closed is None
            await client.close()


# --- 4. resume ----------------------------------------------------------------------------------


async def test_resume_replays_missed_events_then_live_ones_or_asks_for_a_reload(
    site: Site,
) -> None:
    agent = site.user_id(AGENT)
    harbor_user = site.user_id("broker@harborhomes.demo")
    with running(site, "resume") as server:
        token = access_token(server, ADMIN)
        live = await hello(ws_url(server, token=token), "live")
        api = Api(server, token)
        try:
            for n in range(5):
                await api.changed(agent, f"+155504000{n:02d}")
            await live.wait_for(lambda c: len(c.events) >= 5, "five changes")
            ids = live.event_ids()

            # From the past: the three missed events, in order, then live ones, once each.
            resumed = await hello(ws_url(server, token=token, last_event_id=ids[1]), "resumed")
            await resumed.wait_for(lambda c: len(c.events) >= 3, "the missed events")
            assert resumed.event_ids() == ids[2:]
            assert resumed.of_type("reload") == []
            for n in range(5, 8):
                await api.changed(agent, f"+155504000{n:02d}")
            await live.wait_for(lambda c: len(c.events) >= 8, "three more")
            ids = live.event_ids()
            await resumed.wait_for(lambda c: c.has_event(ids[-1]), "the live events")
            assert resumed.event_ids() == ids[2:]
            assert [m["data"]["phone"] for m in resumed.events] == [
                f"+155504000{n:02d}" for n in range(2, 8)
            ]

            # Past retention: the id is gone from the outbox -> reload.
            assert site.delete_events(up_to=ids[0]) >= 1
            gone = await hello(ws_url(server, token=token, last_event_id=ids[0]), "gone")
            await gone.wait_for(lambda c: bool(c.of_type("reload")), "a reload message")
            assert [m["type"] for m in gone.messages[:2]] == ["hello", "reload"]

            # Another tenant's event id (older, then newer than this tenant's newest) -> reload.
            harbor_api = Api(server, access_token(server, HARBOR_ADMIN))
            try:
                await harbor_api.changed(harbor_user, "+15550400100")
                await api.changed(agent, "+15550400101")
                await harbor_api.changed(harbor_user, "+15550400102")
            finally:
                await harbor_api.aclose()
            harbor = site.tenant_of(HARBOR_ADMIN)
            harbor_ids = [e.id for e in site.events(tenant_id=harbor)][-2:]
            for foreign in harbor_ids:
                other = await hello(ws_url(server, token=token, last_event_id=foreign), "foreign")
                await other.wait_for(lambda c: bool(c.of_type("reload")), "a reload message")
                await other.close()

            # Not an id at all: an error, then close 4400.
            for bad in ("abc", "-1", "1.5", "9" * 30):
                client = await refused(ws_url(server, token=token, last_event_id=bad))
                assert client.close_code == CLOSE_BAD_INPUT, (bad, client.closed)
                assert [m["type"] for m in client.messages] == ["error"]
        finally:
            await api.aclose()
        for client in (live, resumed, gone):
            await client.close()


async def test_resuming_from_an_event_written_outside_the_server_does_not_repeat_it(
    site: Site,
) -> None:
    """Events written by a process without a bus (a worker, the CLI) reach this server by its
    poll. A client that already saw such an event (through another server) resumes from it here
    and must not get it a second time."""
    tenant = site.tenant_of(ADMIN)
    with running(site, "outside-writer") as server:
        token = access_token(server, ADMIN)
        first = await hello(ws_url(server, token=token), "first")
        await first.close()  # the server now follows this tenant, with no one listening
        with Session(site.engine) as session:
            row = events.record(
                session,
                tenant_id=tenant,
                channels=[f"tenant:{tenant}"],
                type="test.outside",
                data={"n": 1},
            )
            session.commit()
            outside = row.id
        again = await hello(ws_url(server, token=token, last_event_id=outside), "again")
        api = Api(server, token)
        try:
            await api.changed(site.user_id(AGENT), "+15550500001")
        finally:
            await api.aclose()
        await again.wait_for(lambda c: bool(user_events(c, site.user_id(AGENT))), "the change")
        assert [m["type"] for m in again.events] == ["user.updated"], again.events
        await again.close()


# --- 5. a slow client ---------------------------------------------------------------------------

QUEUE_SIZE = 10
BIG = 64 * 1024  # bytes of payload per event written in bulk


def _socket_buffer_bound(receive_buffer: int) -> int:
    """What the kernel and the transports can hold before the server's queue starts to fill:
    the server's send buffer at its autotuning ceiling, the client's (fixed, small) receive
    buffer, asyncio's write buffer on the server and read chunks on the client, with margin."""
    tcp_wmem = Path("/proc/sys/net/ipv4/tcp_wmem")
    wmem_max = int(tcp_wmem.read_text().split()[2]) if tcp_wmem.exists() else 16 * 1024 * 1024
    return wmem_max + 2 * receive_buffer + 4 * 256 * 1024


async def test_a_client_that_does_not_read_is_dropped_and_resumes_without_slowing_others(
    site: Site,
) -> None:
    """With DOORSTEP_WS_QUEUE_SIZE=10 a client that stops reading is dropped (4008, "resume
    from N") while a reading client gets everything; the dropped one resumes and gets the rest.

    The server's queue only fills once the socket buffers between it and the client are full:
    with the server's send buffer autotuned up to net.ipv4.tcp_wmem's maximum (4 MiB), that is
    some 20,000 PATCH-sized events. So most events here are big ones, written to the outbox as a
    worker would and announced by an API change, a few per round so that the reading client's
    queue never holds more than half its size."""
    tenant = site.tenant_of(ADMIN)
    agent = site.user_id(AGENT)
    with running(site, "slow", DOORSTEP_WS_QUEUE_SIZE=str(QUEUE_SIZE)) as server:
        token = access_token(server, ADMIN)
        reader = await hello(ws_url(server, token=token), "reader", max_size=4 * BIG)
        receive_buffer = 4096
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
        slow = await hello(
            ws_url(server, token=token),
            "slow",
            sock=sock,
            max_queue=1,
            max_size=4 * BIG,
            ping_interval=None,  # it reads nothing, so it could not see the pongs anyway
        )
        await slow.pause()  # from now on nothing is read: the frames pile up in the socket buffers
        bound = _socket_buffer_bound(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
        api = Api(server, token)
        produced: list[int] = []
        began = time.monotonic()
        try:
            # Rounds of a few events: never more than the queue holds at once for the reader.
            per_round = QUEUE_SIZE // 2
            n = 0
            while len(produced) * BIG < bound + 2 * QUEUE_SIZE * BIG or len(produced) < 50:
                with Session(site.engine) as session:
                    for _ in range(per_round - 1):
                        row = events.record(
                            session,
                            tenant_id=tenant,
                            channels=[f"tenant:{tenant}"],
                            type="test.bulk",
                            data={"n": n, "blob": "x" * BIG},
                            audience=Audience.everyone(),
                        )
                        produced.append(row.id)
                        n += 1
                    session.commit()
                await api.changed(agent, f"+1555060{n:04d}")  # announces the round
                n += 1
                produced.append(site.latest_event_id(tenant))
                await reader.wait_for(
                    lambda c: c.has_event(produced[-1]), f"round ending at {produced[-1]}"
                )
        finally:
            await api.aclose()
        production_seconds = time.monotonic() - began
        assert reader.closed is None, "the reading client was dropped"
        assert reader.event_ids() == produced, "the reading client missed events"

        slow.resume()
        closed = await slow.wait_closed(timeout=120)
        assert slow.close_code == CLOSE_OVERFLOW, closed
        assert "resume from" in slow.close_reason
        seen = slow.event_ids()
        assert seen == produced[: len(seen)], "the slow client got its events in order"
        assert len(seen) < len(produced)

        again = await hello(
            ws_url(server, token=token, last_event_id=seen[-1]), "slow-again", max_size=4 * BIG
        )
        await again.wait_for(lambda c: c.has_event(produced[-1]), "the rest")
        assert seen + again.event_ids() == produced
        print(
            f"\nslow client: {len(produced)} events of {BIG // 1024} KiB in "
            f"{production_seconds:.1f}s; dropped with {slow.close_code} "
            f"'{slow.close_reason}' after {len(seen)}; resumed with the other "
            f"{len(again.event_ids())}; the reader got all {len(reader.event_ids())}"
        )
        for client in (reader, again):
            await client.close()


# --- 6. heartbeats and idle connections ---------------------------------------------------------


async def test_heartbeats_pings_idle_close_and_bad_messages(site: Site) -> None:
    with running(
        site, "heartbeat", DOORSTEP_WS_HEARTBEAT_SECONDS="0.5", DOORSTEP_WS_IDLE_SECONDS="1"
    ) as server:
        token = access_token(server, ADMIN)
        silent = await hello(ws_url(server, token=token), "silent")
        pinging = await hello(ws_url(server, token=token), "pinging")
        chatty = await hello(ws_url(server, token=token), "chatty")

        # Non-JSON and unknown messages: an error, and the connection stays open.
        await chatty.send("this is not json")
        await chatty.wait_for(lambda c: bool(c.of_type("error")), "an error")
        assert chatty.of_type("error")[0]["data"]["code"] == "bad_message"
        await chatty.send({"type": "dance"})
        await chatty.wait_for(lambda c: len(c.of_type("error")) >= 2, "a second error")
        await chatty.send({"type": "ping"})
        await chatty.wait_for(lambda c: bool(c.of_type("pong")), "a pong")
        assert chatty.closed is None

        # A quiet connection gets heartbeats; answering each with a ping keeps it open well
        # past the idle limit.
        for beat in range(1, 6):
            await pinging.wait_for(at_least(beat, "heartbeat"), f"heartbeat {beat}")
            await pinging.send({"type": "ping"})
            await pinging.wait_for(at_least(beat, "pong"), f"pong {beat}")
        assert pinging.closed is None
        # Heartbeats come after 0.5 s without events, so five took at least 2.5 s: well past
        # the 1 s idle limit, which the pings kept resetting.
        assert pinging.received_at[-1] - pinging.received_at[0] > 2

        # One that never sends anything is closed as idle (after a heartbeat or so).
        closed = await silent.wait_closed()
        assert silent.close_code == CLOSE_IDLE, closed
        assert silent.of_type("heartbeat"), "heartbeats came before the idle close"
        for client in (pinging, chatty):
            await client.close()


# --- 7. delivery internals: direct writes, a paused socket, overflow, heartbeats ----------------
# In-process, against a socket in miniature: these pin down the delivery paths of
# realtime.Subscriber and realtime._send, which the end-to-end tests above only reach by chance.


class FakeSocket:
    """uvicorn's send in miniature: while `writable` is clear (the transport is paused because
    the client reads slowly) a send waits; `broken` makes sends fail as after a disconnect."""

    def __init__(self) -> None:
        self.writable = asyncio.Event()
        self.writable.set()
        self.broken = False
        self.sent: list[dict[str, Any]] = []

    async def send_text(self, text: str) -> None:
        await self.writable.wait()
        if self.broken:
            raise WebSocketDisconnect(1006)
        self.sent.append(json.loads(text))

    def write_frame(self, frame: bytes) -> bool:
        """The server's prebuilt-frame write (platform/wsserver.py): only when it could be
        written at once; otherwise the caller falls back to `send_text`."""
        if self.broken or not self.writable.is_set():
            return False
        assert frame[0] == 0x81, "a final, unmasked text frame"
        header = 2 if frame[1] < 126 else 4
        self.sent.append({**json.loads(frame[header:]), "prebuilt": True})
        return True

    def ids(self, type_: str = "t") -> list[int]:
        return [m["id"] for m in self.sent if m["type"] == type_]


class Connection:
    """A subscriber and its running sender, as `realtime.stream` wires them."""

    def __init__(
        self,
        *,
        queue_size: int = 10,
        heartbeat: float = 60.0,
        idle: float = 600.0,
        prebuilt: bool = False,
    ) -> None:
        self.socket = FakeSocket()
        self.hub = realtime.Hub(
            sessionmaker(), retention=timedelta(days=1), heartbeat=heartbeat, idle=idle
        )
        self.closed = asyncio.Event()
        self.overflows = 0
        self.idled = 0

        def went_idle(_s: realtime.Subscriber) -> None:
            self.idled += 1
            self.closed.set()

        def overflow(_s: realtime.Subscriber) -> None:
            self.overflows += 1
            self.closed.set()

        principal = Principal(
            user_id=1, tenant_id=1, role=Role.admin, email="a@example.com", full_name="A"
        )
        self.subscriber = realtime.Subscriber(
            principal=principal,
            channels={"tenant:1"},
            queue_size=queue_size,
            on_overflow=overflow,
            write_frame=self.socket.write_frame if prebuilt else None,
            keepalive=True,
            on_idle=went_idle,
        )
        # Attached as `Hub.attach` would (without its database reads), the hub's clock running.
        self.hub._streams[1] = realtime._TenantStream(last_id=0, subscribers={self.subscriber})
        self.hub.start_clock()
        self.sender = asyncio.create_task(
            realtime._send(self.socket, self.hub, self.subscriber, self.closed)
        )

    def offer(self, *ids: int) -> None:
        for event_id in ids:
            text = realtime.message(event_id, "t", {})
            self.subscriber.offer(event_id, text, text_frame(text))

    async def caught_up(self) -> None:
        await until(lambda: self.subscriber.direct is not None, "the sender to go idle")

    async def stop(self) -> None:
        """What `stream` does at the end: stop the sender, then detach."""
        self.sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
            await self.sender
        self.hub.detach(self.subscriber)
        await self.hub.stop()


async def until(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.001)


@pytest.mark.parametrize("prebuilt", [False, True], ids=["asgi-send", "prebuilt-frame"])
async def test_a_caught_up_connection_is_written_to_by_the_hub_itself_in_order(
    prebuilt: bool,
) -> None:
    conn = Connection(prebuilt=prebuilt)
    await conn.caught_up()
    conn.offer(1, 2, 3, 4, 5)
    # Written inside offer(): no task ran in between, nothing was queued.
    assert conn.socket.ids() == [1, 2, 3, 4, 5]
    # With the server's extension every one of them is the one prebuilt frame.
    assert [m.get("prebuilt", False) for m in conn.socket.sent] == [prebuilt] * 5
    assert conn.subscriber.last_sent == 5
    assert conn.subscriber.queue.empty()
    conn.offer(4, 5)  # already sent (e.g. a resumed client): never twice
    assert conn.socket.ids() == [1, 2, 3, 4, 5]
    await conn.stop()


@pytest.mark.parametrize("prebuilt", [False, True], ids=["asgi-send", "prebuilt-frame"])
async def test_a_paused_socket_queues_later_events_behind_the_write_in_flight(
    prebuilt: bool,
) -> None:
    conn = Connection(prebuilt=prebuilt)
    await conn.caught_up()
    conn.offer(1)
    conn.socket.writable.clear()  # the client stops reading; the transport pauses
    conn.offer(2, 3, 4)
    assert conn.socket.ids() == [1]
    assert conn.subscriber.last_sent == 1, "a write that has not happened is not counted"
    assert conn.subscriber.direct is None
    assert conn.subscriber.queue.qsize() == 3  # the paused write of 2, then 3 and 4
    conn.socket.writable.set()
    await until(lambda: len(conn.socket.sent) == 4, "the queued events")
    assert conn.socket.ids() == [1, 2, 3, 4]
    assert conn.subscriber.last_sent == 4
    await conn.caught_up()  # drained: the hub writes directly again
    conn.offer(5)
    assert conn.socket.ids() == [1, 2, 3, 4, 5]
    await conn.stop()


@pytest.mark.parametrize("prebuilt", [False, True], ids=["asgi-send", "prebuilt-frame"])
async def test_overflow_behind_a_paused_write_drops_the_client_and_abandons_the_write(
    prebuilt: bool,
) -> None:
    conn = Connection(queue_size=3, prebuilt=prebuilt)
    await conn.caught_up()
    conn.socket.writable.clear()
    conn.offer(1, 2, 3)  # the paused write of 1, then 2 and 3: the queue is full
    assert conn.overflows == 0
    conn.offer(4)
    assert conn.overflows == 1
    assert conn.subscriber.overflowed
    conn.offer(5)  # after the overflow nothing more is taken
    assert conn.subscriber.queue.qsize() == 3
    await conn.stop()
    conn.socket.writable.set()
    for _ in range(10):
        await asyncio.sleep(0)
    # The client is told to resume from last_sent (0): so nothing may have been written.
    assert conn.socket.sent == []
    assert conn.subscriber.last_sent == 0
    assert conn.subscriber.queue.empty()
    assert conn.subscriber.direct is None


async def test_a_failed_direct_write_ends_the_sender_with_the_socket_error() -> None:
    conn = Connection()
    await conn.caught_up()
    conn.socket.broken = True
    conn.offer(1)
    with pytest.raises(WebSocketDisconnect):
        await asyncio.wait_for(conn.sender, 5)
    assert conn.subscriber.last_sent == 0
    await conn.stop()

    paused = Connection()  # the same, for a write that was paused when the client went away
    await paused.caught_up()
    paused.socket.writable.clear()
    paused.offer(1)
    paused.socket.broken = True
    paused.socket.writable.set()
    with pytest.raises(WebSocketDisconnect):
        await asyncio.wait_for(paused.sender, 5)
    assert paused.subscriber.last_sent == 0
    await paused.stop()


async def test_heartbeats_come_only_when_the_connection_has_been_quiet() -> None:
    conn = Connection(heartbeat=0.3)
    await conn.caught_up()
    began = time.monotonic()
    event_id = 0
    while time.monotonic() - began < 1.0:  # events flow faster than the heartbeat period
        event_id += 1
        conn.offer(event_id)
        await asyncio.sleep(0.02)
    assert conn.socket.ids("heartbeat") == [], "a heartbeat while events were flowing"
    assert conn.socket.ids() == list(range(1, event_id + 1))
    await until(lambda: bool(conn.socket.ids("heartbeat")), "a heartbeat once quiet")
    assert conn.socket.ids("heartbeat") == [event_id], "a heartbeat carries the last id sent"
    await conn.stop()


async def test_a_heartbeat_queues_in_order_and_carries_the_last_id_written_before_it() -> None:
    conn = Connection(heartbeat=600)
    await conn.caught_up()
    conn.offer(1, 2)
    conn.subscriber.tick(1, heartbeat=600, idle=10_000)  # the writes above: not quiet
    assert conn.subscriber.queue.empty()
    conn.subscriber.tick(601, heartbeat=600, idle=10_000)  # quiet for 601 s: a heartbeat
    conn.offer(3)  # behind the heartbeat, never before it
    await until(lambda: conn.socket.ids() == [1, 2, 3], "event 3")
    assert [(m["type"], m["id"]) for m in conn.socket.sent] == [
        ("t", 1),
        ("t", 2),
        ("heartbeat", 2),
        ("t", 3),
    ]
    assert conn.subscriber.last_sent == 3
    await conn.stop()


async def test_the_clock_closes_a_silent_client_and_spares_one_that_talks() -> None:
    talking, silent = Connection(heartbeat=0.1, idle=0.4), Connection(heartbeat=0.1, idle=0.4)
    began = time.monotonic()
    while time.monotonic() - began < 1.0:  # well past the idle limit
        talking.subscriber.heard = True  # what `_receive` notes for each client message
        await asyncio.sleep(0.02)
    assert talking.idled == 0
    assert not talking.closed.is_set()
    await until(lambda: silent.idled >= 1, "the silent client to be closed as idle")
    assert silent.closed.is_set()
    # Both were quiet (no events): both had heartbeats meanwhile, from the clock.
    assert talking.socket.ids("heartbeat")
    assert silent.socket.ids("heartbeat")
    for conn in (talking, silent):
        await conn.stop()


async def test_the_clock_allocates_nothing_for_a_busy_connection() -> None:
    """Per-connection timers were the garbage that grew the collector's oldest generation at
    5,000 connections; a connection written to directly now costs the clock no objects."""
    conn = Connection(heartbeat=0.05, idle=600)
    await conn.caught_up()
    getter = conn.subscriber.queue._getters[0]  # the sender's one waiting get()
    for event_id in range(1, 40):
        conn.offer(event_id)
        await asyncio.sleep(0.01)  # several ticks pass
    assert conn.socket.ids("heartbeat") == [], "never quiet, never a heartbeat"
    assert list(conn.subscriber.queue._getters) == [getter], "the same wait all along"
    await conn.stop()
