"""Test machinery: one migrated database per run, each test in a rolled-back transaction, an app
bound to that transaction, factories, and a live server (demo data) for browser tests."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection
from sqlalchemy.orm import Session, sessionmaker

from doorstep.app import create_app
from doorstep.cli import run_migrations
from doorstep.config import Settings
from doorstep.platform.audit import set_actor
from doorstep.platform.auth import Principal, Role, Tenant, User, hash_password
from doorstep.platform.db import make_engine
from tests.databases import PRODUCTION, REDIS, copy_of, fresh_database

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
PASSWORD = "correct-horse-battery"
_PASSWORD_HASH = hash_password(PASSWORD)
RUN_ID = uuid.uuid4().hex[:8]
# Every test that seeds the demo (in-process, the CLI, the live server) loads a twentieth of the
# CRM's leads and listings, and stores its photos outside the working tree; `make demo` and the
# benchmarks load the full set. (Read when the settings are first built: set them here, first.)
os.environ.setdefault("DOORSTEP_DEMO_SCALE", "0.05")
DEMO_MEDIA = Path(tempfile.gettempdir()) / f"doorstep-test-media-{RUN_ID}"
os.environ.setdefault("DOORSTEP_MEDIA_DIR", str(DEMO_MEDIA))
# The suite builds hundreds of apps in one process: frozen, their garbage would never go.
os.environ.setdefault("DOORSTEP_FREEZE_GC", "false")


# Figures some tests measure on the way (live latency in the browser): reported at the end of
# the run, never asserted, so that a busy machine cannot fail the suite.
FIGURES: list[tuple[str, float]] = []


def record_figure(name: str, value: float) -> None:
    FIGURES.append((name, value))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("measured figures")
        for name, value in FIGURES:
            terminalreporter.write_line(f"{name}: {value:g}")


def pytest_report_header() -> str:
    return (
        f"doorstep mode: {'production (PostgreSQL + Redis)' if PRODUCTION else 'embedded (SQLite)'}"
    )


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with fresh_database(tmp_path_factory.mktemp("db"), "unit") as url:
        run_migrations(url)
        yield url


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # Requests share the test's one connection, so no job threads may use it behind their back:
    # job tests build their own runner on a database of their own.
    return Settings(
        run_jobs_in_server=False,
        jobs_path=str(tmp_path_factory.mktemp("jobs") / "jobs.db"),
        database_url=database_url,
        redis_url=REDIS,
        redis_prefix=f"doorstep-test-{RUN_ID}",
        secret_key="test-secret-" + "x" * 40,
        secure_cookies=False,
        login_attempts=5,
        login_window_seconds=60,
    )


@pytest.fixture(scope="session", autouse=True)
def _clean_redis(settings: Settings) -> Iterator[None]:
    yield
    if settings.redis_url:
        client = redis.Redis.from_url(settings.redis_url)
        for key in client.scan_iter(f"{settings.redis_prefix}:*"):
            client.delete(key)


@pytest.fixture(scope="session", autouse=True)
def _clean_demo_media() -> Iterator[None]:
    yield
    shutil.rmtree(DEMO_MEDIA, ignore_errors=True)


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[object]:
    engine = make_engine(settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def connection(engine: object) -> Iterator[Connection]:
    """Each test runs inside one outer transaction that is rolled back at its end."""
    with engine.connect() as conn:  # type: ignore[attr-defined]
        outer = conn.begin()
        yield conn
        outer.rollback()


@pytest.fixture
def session_factory(connection: Connection) -> sessionmaker[Session]:
    # Sessions commit to savepoints of the outer transaction, so a request's commit is real to
    # the rest of the test and still vanishes afterwards.
    return sessionmaker(
        bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )


@pytest.fixture
def db(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    session = session_factory()
    set_actor(session, "test")
    yield session
    session.close()


@pytest.fixture
def app(settings: Settings, session_factory: sessionmaker[Session]) -> FastAPI:
    return create_app(settings, sessionmaker=session_factory)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@dataclass
class Factory:
    db: Session
    counter: int = 0

    def _n(self) -> int:
        self.counter += 1
        return self.counter

    def tenant(self, name: str | None = None) -> Tenant:
        n = self._n()
        tenant = Tenant(slug=f"t{RUN_ID}-{n}-{uuid.uuid4().hex[:6]}", name=name or f"Tenant {n}")
        self.db.add(tenant)
        self.db.flush()
        return tenant

    def user(
        self,
        tenant: Tenant,
        role: Role,
        *,
        name: str | None = None,
        broker: User | None = None,
        agent: User | None = None,
        active: bool = True,
    ) -> User:
        n = self._n()
        user = User(
            tenant_id=tenant.id,
            email=f"{role}{n}-{uuid.uuid4().hex[:6]}@example.test",
            full_name=name or f"{role.capitalize()} {n}",
            role=role,
            password_hash=_PASSWORD_HASH,
            broker_id=broker.id if broker else None,
            agent_id=agent.id if agent else None,
            is_active=active,
        )
        self.db.add(user)
        self.db.flush()
        return user


@pytest.fixture
def factory(db: Session) -> Factory:
    return Factory(db)


@dataclass
class Brokerage:
    """One tenant with a person in every role, wired as in real life."""

    tenant: Tenant
    admin: User
    broker: User
    agent: User
    other_agent: User
    client: User
    analyst: User

    def by_role(self, role: Role) -> User:
        return {
            Role.admin: self.admin,
            Role.broker: self.broker,
            Role.agent: self.agent,
            Role.client: self.client,
            Role.analyst: self.analyst,
        }[role]


def make_brokerage(factory: Factory, name: str) -> Brokerage:
    tenant = factory.tenant(name)
    broker = factory.user(tenant, Role.broker)
    agent = factory.user(tenant, Role.agent, broker=broker)
    return Brokerage(
        tenant=tenant,
        admin=factory.user(tenant, Role.admin),
        broker=broker,
        agent=agent,
        other_agent=factory.user(tenant, Role.agent, broker=broker),
        client=factory.user(tenant, Role.client, agent=agent),
        analyst=factory.user(tenant, Role.analyst),
    )


@pytest.fixture
def brokerage(factory: Factory, db: Session) -> Brokerage:
    made = make_brokerage(factory, "Alpha Homes")
    db.commit()
    return made


@pytest.fixture
def rival(factory: Factory, db: Session) -> Brokerage:
    made = make_brokerage(factory, "Rival Realty")
    db.commit()
    return made


def principal_of(user: User) -> Principal:
    return Principal.of(user)


def bearer(client: TestClient, user: User, password: str = PASSWORD) -> dict[str, str]:
    response = client.post("/api/auth/token", data={"username": user.email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    match = CSRF_INPUT.search(html)
    assert match, "page has no CSRF field"
    return match.group(1)


def web_login(client: TestClient, user: User, password: str = PASSWORD) -> str:
    """Sign in through the login form; returns the CSRF token of the signed-in session."""
    page = client.get("/login")
    response = client.post(
        "/login",
        data={"email": user.email, "password": password, "csrf_token": csrf_from(page.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return csrf_from(client.get("/").text)


# --- a live server for browser tests and multi-process checks --------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    database_url: str
    env: dict[str, str]


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


def start_server(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "doorstep.cli", "serve", "--port", str(port)],
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        cwd=log.parent,
    )

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        try:
            return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, 60, "the server to become ready")
    return process


@pytest.fixture(scope="session")
def demo_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database migrated and seeded once per run by the CLI, as a user does it, for tests to
    copy (`tests.databases.copy_of`) and never to change or connect to: seeding takes one to
    three minutes on a busy machine, a copy about a second."""
    workdir = tmp_path_factory.mktemp("demo")
    with fresh_database(workdir, "demo") as url:
        env = {
            **os.environ,
            "DOORSTEP_DATABASE_URL": url,
            "DOORSTEP_SECRET_KEY": "demo-secret-" + "d" * 40,
            "DOORSTEP_JOBS_PATH": str(workdir / "jobs.db"),
        }
        env.pop("DOORSTEP_REDIS_URL", None)  # nothing listens while seeding
        for command in (["migrate"], ["seed-demo"]):
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "doorstep.cli", *command],
                env=env,
                check=True,
                cwd=workdir,
                capture_output=True,
            )
            record_figure(
                f"doorstep {command[0]} on the test database (s)", time.perf_counter() - started
            )
        yield url


@pytest.fixture(scope="session")
def live_server(
    tmp_path_factory: pytest.TempPathFactory, demo_database: str
) -> Iterator[LiveServer]:
    """The real server process on a copy of the demo data (the same `seed-demo` a user runs)."""
    workdir = tmp_path_factory.mktemp("live")
    with copy_of(demo_database, workdir, "live") as url:
        env = {
            **os.environ,
            "DOORSTEP_DATABASE_URL": url,
            "DOORSTEP_SECRET_KEY": "live-secret-" + "y" * 40,
            "DOORSTEP_SECURE_COOKIES": "false",
            "DOORSTEP_REDIS_PREFIX": f"doorstep-live-{RUN_ID}",
        }
        if REDIS:
            env["DOORSTEP_REDIS_URL"] = REDIS
        else:
            env.pop("DOORSTEP_REDIS_URL", None)
        port = free_port()
        process = start_server(env, port, workdir / "server.log")
        # In production mode the server runs no jobs; a worker does, as in a real deployment.
        worker = (
            subprocess.Popen(
                [sys.executable, "-m", "doorstep.cli", "worker", "--workers", "2"],
                env=env,
                cwd=workdir,
                stdout=(workdir / "worker.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
            if REDIS
            else None
        )
        try:
            yield LiveServer(url=f"http://127.0.0.1:{port}", database_url=url, env=env)
        finally:
            for child in (process, worker):
                if child is not None:
                    child.terminate()
                    child.wait(timeout=10)
