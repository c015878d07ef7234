"""Alembic environment: the URL comes from `doorstep migrate` or DOORSTEP_DATABASE_URL."""

from __future__ import annotations

from alembic import context

import doorstep.app  # noqa: F401 - importing the app registers every table on Base.metadata
from doorstep.config import get_settings
from doorstep.platform.db import WAREHOUSE_SCHEMAS, Base, make_engine

config = context.config
url = config.get_main_option("sqlalchemy.url") or get_settings().database_url


def run_migrations_offline() -> None:
    context.configure(
        url=url, target_metadata=Base.metadata, literal_binds=True, render_as_batch=True
    )
    with context.begin_transaction():
        context.run_migrations()


def _ours(name: str | None, type_: str, _parent: object) -> bool:
    """On PostgreSQL compare the default schema and the warehouse's, nothing else."""
    return type_ != "schema" or name is None or name in WAREHOUSE_SCHEMAS


# On SQLite the warehouse's tables live in the default schema under their own names; autogenerate
# cannot pair them with their schema-qualified models, so only PostgreSQL compares them.
_WAREHOUSE_TABLES = {t.name for t in Base.metadata.tables.values() if t.schema in WAREHOUSE_SCHEMAS}


def _compared_on_sqlite(obj: object, name: str | None, type_: str, *_: object) -> bool:
    table = obj if type_ == "table" else getattr(obj, "table", None)
    return getattr(table, "name", name) not in _WAREHOUSE_TABLES


def run_migrations_online() -> None:
    engine = make_engine(url)
    with engine.connect() as connection:
        postgres = connection.dialect.name == "postgresql"
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=True,
            # On SQLite the warehouse's schemas are translated away (platform/db.py).
            include_schemas=postgres,
            include_name=_ours,
            include_object=None if postgres else _compared_on_sqlite,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
