"""The demo seed: the people the issues name, a second tenant, deterministic and idempotent."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from doorstep.cli import run_migrations
from doorstep.demo import seed_demo
from doorstep.platform.audit import AuditEntry
from doorstep.platform.auth import Role, Tenant, User, verify_password
from doorstep.platform.db import make_engine, make_sessionmaker, transaction
from tests.databases import copy_of, fresh_database


def _snapshot(session: Session) -> tuple[int, int, int, list[tuple[str, str]]]:
    users = session.scalar(select(func.count()).select_from(User)) or 0
    tenants = session.scalar(select(func.count()).select_from(Tenant)) or 0
    audit = session.scalar(select(func.count()).select_from(AuditEntry)) or 0
    people = [
        tuple(row)
        for row in session.execute(select(User.email, User.full_name).order_by(User.email))
    ]
    return users, tenants, audit, people


def test_seed_is_complete_deterministic_and_idempotent(tmp_path: Path, demo_database: str) -> None:
    # What `doorstep seed-demo` made of an empty database (conftest's demo_database), ...
    with copy_of(demo_database, tmp_path, "demo") as url:
        engine = make_engine(url)
        factory = make_sessionmaker(engine)
        with transaction(factory) as session:
            first = _snapshot(session)
            riley = session.scalar(select(Tenant).where(Tenant.slug == "riley-realty"))
            assert riley is not None
            assert riley.name == "Riley Realty"
            by_email = {u.email: u for u in session.scalars(select(User))}
            broker = by_email["broker@doorstep.demo"]
            assert broker.full_name == "Josh Riley"
            assert broker.role == Role.broker
            agents = [
                u for u in by_email.values() if u.tenant_id == riley.id and u.role == Role.agent
            ]
            assert len(agents) == 40
            assert all(a.broker_id == broker.id for a in agents)
            names = {a.full_name for a in agents}
            assert {"Jayden Metz", "Cole Rangel", "Lee Rangel"} <= names
            assert by_email["agent@doorstep.demo"].full_name == "Jayden Metz"
            assert by_email["agent2@doorstep.demo"].full_name == "Cole Rangel"
            buyer = by_email["buyer@doorstep.demo"]
            assert buyer.role == Role.client
            assert buyer.agent_id == by_email["agent@doorstep.demo"].id
            assert by_email["admin@doorstep.demo"].role == Role.admin
            assert by_email["analyst@doorstep.demo"].role == Role.analyst
            assert verify_password(buyer.password_hash, "doorstep-demo")
            tenants = {t.slug for t in session.scalars(select(Tenant))}
            assert tenants == {"riley-realty", "harbor-homes", "morning-ritual"}
        with transaction(factory) as session:
            seed_demo(session, password="doorstep-demo")
        with transaction(factory) as session:
            assert _snapshot(session) == first
        engine.dispose()

        # ... and deterministic: seeding a second, empty database gives the very same people.
        with fresh_database(tmp_path, "demo2") as other_url:
            run_migrations(other_url)
            other_engine = make_engine(other_url)
            other = make_sessionmaker(other_engine)
            with transaction(other) as session:
                seed_demo(session, password="doorstep-demo")
            with transaction(other) as session:
                assert _snapshot(session)[3] == first[3]
            other_engine.dispose()
