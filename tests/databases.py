"""Fresh databases for a test run: a SQLite file, or a new PostgreSQL database dropped after."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
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
        yield f"sqlite:///{tmp_dir / f'{label}-{uuid.uuid4().hex[:8]}.db'}"
        return
    with _postgres_database(label) as url:
        yield url


@contextmanager
def copy_of(source: str, tmp_dir: Path, label: str) -> Iterator[str]:
    """Yield the URL of a new database holding what `source` holds, removed when the block ends.

    Seeding the demo takes a minute or more on a busy machine, a copy about a second: tests that
    need their own demo database take a copy of the one the run seeds (conftest's
    `demo_database`). Nothing may be connected to `source` meanwhile (PostgreSQL copies only an
    idle template)."""
    if not PRODUCTION:
        path = tmp_dir / f"{label}-{uuid.uuid4().hex[:8]}.db"
        original = make_url(source).database
        assert original is not None, source
        with closing(sqlite3.connect(original)) as src, closing(sqlite3.connect(path)) as dst:
            src.backup(dst)  # consistent even with a write-ahead log beside the file
        yield f"sqlite:///{path}"
        return
    template = make_url(source).database
    with _postgres_database(label, template=template) as url:
        yield url


@contextmanager
def _postgres_database(label: str, template: str | None = None) -> Iterator[str]:
    name = f"doorstep_test_{label}_{uuid.uuid4().hex[:10]}"
    create = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
    with psycopg.connect(_admin_dsn(), autocommit=True) as conn:
        conn.execute(create)
    try:
        yield make_url(POSTGRES).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_admin_dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
