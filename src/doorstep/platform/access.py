"""The visibility policy: which rows a principal may read, and at which level.

Every query of tenant data goes through `readable()`, so a module cannot forget the tenant
filter; modules register their own finer rules (an agent sees only their own leads) with
`register_policy()` next to their models.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, false, or_, select, true
from sqlalchemy.orm import Session

from doorstep.platform.auth import Principal, Role, User
from doorstep.platform.db import id_in
from doorstep.platform.errors import NotFound

T = TypeVar("T")
RowPolicy = Callable[[Principal], ColumnElement[bool]]
SelectT = TypeVar("SelectT", bound=Select[*tuple[Any, ...]])

_policies: dict[type, RowPolicy] = {}


class Level(StrEnum):
    """How much of a row a principal sees: everything, aggregate metrics only, or nothing."""

    full = "full"
    metrics = "metrics"
    none = "none"


def register_policy(model: type, policy: RowPolicy) -> None:
    _policies[model] = policy


def row_filter(model: Any, principal: Principal) -> ColumnElement[bool]:
    """The WHERE clause that limits `model` to what `principal` may read."""
    clause: ColumnElement[bool] = model.tenant_id == principal.tenant_id
    policy = _policies.get(model)
    if policy is not None:
        clause = clause & policy(principal)
    return clause


def readable(stmt: SelectT, principal: Principal, model: Any | None = None) -> SelectT:
    """Scope a SELECT of tenant rows to what the principal may read."""
    entity = model if model is not None else stmt.column_descriptions[0]["entity"]
    if entity is None or not hasattr(entity, "tenant_id"):
        raise TypeError("readable() needs a statement selecting a tenant-scoped model")
    return stmt.where(row_filter(entity, principal))


def get_readable(session: Session, model: type[T], ident: Any, principal: Principal) -> T:
    """One row the principal may read, or NotFound (never 403: it must not reveal existence)."""
    pk = model.id  # type: ignore[attr-defined]
    row = session.scalar(readable(select(model).where(pk == ident), principal))
    if row is None:
        raise NotFound(f"{model.__name__} {ident} not found")
    return row


def _users_policy(principal: Principal) -> ColumnElement[bool]:
    if principal.role in (Role.admin, Role.broker):
        return true()
    if principal.role == Role.agent:
        return or_(
            User.id == principal.user_id,
            User.id == principal.broker_id if principal.broker_id else false(),
            User.agent_id == principal.user_id,
        )
    if principal.role == Role.client:
        return or_(
            User.id == principal.user_id,
            User.id == principal.agent_id if principal.agent_id else false(),
        )
    return User.id == principal.user_id


register_policy(User, _users_policy)


def metrics_scope(session: Session, principal: Principal, agent_ids: list[int]) -> list[int]:
    """Of `agent_ids`, the agents whose private pipelines (leads, appointments) the principal
    may see as counts and rates (seed 004 level 2): a broker's own team, or any agent of the
    tenant for an admin. Anyone else sees none. Rows themselves stay behind `readable()`."""
    if not agent_ids or principal.role not in (Role.admin, Role.broker):
        return []
    stmt = select(User.id).where(
        User.tenant_id == principal.tenant_id, id_in(session, User.id, agent_ids)
    )
    if principal.role == Role.broker:
        stmt = stmt.where(User.broker_id == principal.user_id)
    return list(session.scalars(stmt))
