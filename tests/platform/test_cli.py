"""The `doorstep` command: migrate, create-user, seed-demo."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from doorstep.cli import app
from doorstep.config import get_settings
from doorstep.platform.auth import Role, User, verify_password
from doorstep.platform.db import make_engine, make_sessionmaker
from tests.databases import fresh_database


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


def test_seed_demo_command(cli_database: str) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    result = runner.invoke(app, ["seed-demo"])
    assert result.exit_code == 0, result.output
    assert "demo data is in place" in result.output
