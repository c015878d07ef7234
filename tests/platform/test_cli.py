"""The `doorstep` command: migrate, create-user, seed-demo."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from doorstep.cli import app
from doorstep.config import get_settings
from doorstep.platform.audit import AuditEntry
from doorstep.platform.auth import Role, Tenant, User, verify_password
from doorstep.platform.db import make_engine, make_sessionmaker
from tests.databases import copy_of, fresh_database


@pytest.fixture
def cli_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with fresh_database(tmp_path, "cli") as url:
        monkeypatch.setenv("DOORSTEP_DATABASE_URL", url)
        get_settings.cache_clear()
        yield url
        get_settings.cache_clear()


def test_migrate_then_create_user(cli_database: str) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    args = [
        "create-user",
        "--email",
        "owner@bakery.example.com",
        "--full-name",
        "Bea Baker",
        "--role",
        "analyst",
        "--tenant",
        "bakery",
        "--password",
        "a-long-password",
    ]
    missing_tenant = runner.invoke(app, args)
    assert missing_tenant.exit_code == 2
    assert "pass --tenant-name" in missing_tenant.output
    created = runner.invoke(app, [*args, "--tenant-name", "Bea's Bakery"])
    assert created.exit_code == 0, created.output
    duplicate = runner.invoke(app, args)
    assert duplicate.exit_code == 2
    assert "already exists" in duplicate.output
    bad = runner.invoke(app, [*args[:-1], "short"])
    assert bad.exit_code == 2
    engine = make_engine(cli_database)
    with make_sessionmaker(engine)() as session:
        user = session.scalar(select(User).where(User.email == "owner@bakery.example.com"))
        assert user is not None
        assert user.role == Role.analyst
        assert verify_password(user.password_hash, "a-long-password")
    engine.dispose()


def test_seed_demo_command_again_changes_nothing(
    tmp_path: Path, demo_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # conftest's demo_database ran `doorstep migrate` and `doorstep seed-demo` on an empty
    # database (and fails the run if either exits non-zero); a second run keeps what is there.
    with copy_of(demo_database, tmp_path, "cli") as url:
        monkeypatch.setenv("DOORSTEP_DATABASE_URL", url)
        get_settings.cache_clear()
        engine = make_engine(url)
        before = _counts(engine)
        result = CliRunner().invoke(app, ["seed-demo"])
        assert result.exit_code == 0, result.output
        assert "demo data is in place" in result.output
        assert _counts(engine) == before
        assert before[0] > 40  # Riley Realty's broker, 40 agents, clients, the other tenants
        engine.dispose()
    get_settings.cache_clear()


def _counts(engine: Engine) -> tuple[int, ...]:
    with engine.connect() as conn:
        return tuple(
            conn.scalar(select(func.count()).select_from(table)) or 0
            for table in (User.__table__, Tenant.__table__, AuditEntry.__table__)
        )
