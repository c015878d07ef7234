"""Who changed what, when, before and after: recorded for every audited row at flush time."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, Integer, String, event, insert, inspect
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.orm.attributes import get_history

from doorstep.platform.db import Base, utcnow

if TYPE_CHECKING:
    from doorstep.platform.auth import Principal

ACTOR_KEY = "doorstep.actor"
REDACTED = "[redacted]"


class Audited:
    """Marks a model whose creates, updates and deletes are written to the audit log."""

    __audit_redact__: frozenset[str] = frozenset()
    # Bookkeeping columns whose change alone is not worth an audit entry.
    __audit_ignore__: frozenset[str] = frozenset({"updated_at"})


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(Integer, index=True)
    actor: Mapped[str] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(8))  # create, update, delete
    entity: Mapped[str] = mapped_column(String(64), index=True)
    entity_id: Mapped[str] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]


def set_actor(session: Session, actor: Principal | str) -> None:
    """Say who the session's changes are made by: a Principal, or a label such as 'cli'."""
    session.info[ACTOR_KEY] = actor


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return value


def _snapshot(obj: Any, *, which: str) -> dict[str, Any]:
    """Column values as they were ('before') or are now ('after')."""
    redact = obj.__audit_redact__
    state = inspect(obj)
    values: dict[str, Any] = {}
    for attr in state.mapper.column_attrs:
        key = attr.key
        if key in state.unloaded:
            continue
        hist = get_history(obj, key)
        if which == "before":
            value = hist.deleted[0] if hist.deleted else (hist.unchanged or [None])[0]
        else:
            value = hist.added[0] if hist.added else (hist.unchanged or [None])[0]
        values[key] = REDACTED if key in redact and value is not None else _plain(value)
    return values


def _changes(obj: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    redact = obj.__audit_redact__
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for attr in inspect(obj).mapper.column_attrs:
        hist = get_history(obj, attr.key)
        if not hist.has_changes() or attr.key in obj.__audit_ignore__:
            continue
        old = hist.deleted[0] if hist.deleted else None
        new = hist.added[0] if hist.added else None
        hidden = attr.key in redact
        before[attr.key] = REDACTED if hidden else _plain(old)
        after[attr.key] = REDACTED if hidden else _plain(new)
    return before, after


def _tenant_of(obj: Any) -> int | None:
    return getattr(obj, "audit_tenant_id", None) or getattr(obj, "tenant_id", None)


def _entry(session: Session, obj: Any, action: str, before: Any, after: Any) -> dict[str, Any]:
    actor = session.info.get(ACTOR_KEY, "system")
    # New rows have their primary key by now, but not yet an identity key.
    identity = inspect(obj).mapper.primary_key_from_instance(obj)
    return {
        "tenant_id": _tenant_of(obj),
        "at": utcnow(),
        "actor_id": getattr(actor, "user_id", None),
        "actor": getattr(actor, "email", None) or str(actor),
        "action": action,
        "entity": obj.__tablename__,
        "entity_id": ",".join(str(part) for part in identity or ()),
        "before": before,
        "after": after,
    }


@event.listens_for(Session, "after_flush")
def _record(session: Session, _context: Any) -> None:
    # In after_flush, new rows have their ids and attribute history still shows the change.
    rows: list[dict[str, Any]] = []
    for obj in session.new:
        if isinstance(obj, Audited):
            rows.append(_entry(session, obj, "create", None, _snapshot(obj, which="after")))
    for obj in session.dirty:
        if isinstance(obj, Audited) and session.is_modified(obj, include_collections=False):
            before, after = _changes(obj)
            if after:
                rows.append(_entry(session, obj, "update", before, after))
    for obj in session.deleted:
        if isinstance(obj, Audited):
            rows.append(_entry(session, obj, "delete", _snapshot(obj, which="before"), None))
    if rows:
        session.connection().execute(insert(AuditEntry), rows)
