"""Fresh databases for a test run: a SQLite file, or a new PostgreSQL database dropped after."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

PRODUCTION = os.environ.get("DOORSTEP_TEST_MODE") == "production"
POSTGRES = os.environ.get(
    "DOORSTEP_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS = os.environ.get("DOORSTEP_TEST_REDIS", "redis://127.0.0.1:6379/0") if PRODUCTION else None


def _admin_dsn() -> str:
    url = make_url(POSTGRES).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


@contextmanager
def fresh_database(tmp_dir: Path, label: str) -> Iterator[str]:
    """Yield the SQLAlchemy URL of an empty database that is removed when the block ends."""
    if not PRODUCTION:
        path = tmp_dir / f"{label}-{uuid.uuid4().hex[:8]}.db"
        yield f"sqlite:///{path}"
        return
    name = f"doorstep_test_{label}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_admin_dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(POSTGRES).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_admin_dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
