"""The brokerage's own closings feed the same warehouse, so a brokerage gets the same dashboard:
a closed deal is an order, the commission is its revenue, the buyer is the customer, the
property type is the product and the agent is the location.

`sync_brokerage` rebuilds the feed (idempotent: a deal that is no longer closed is removed); the
`escrow.closed` hook loads a deal the moment it closes, in the same unit of work."""

from __future__ import annotations

from datetime import datetime, time
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from doorstep.analytics.warehouse import (
    CANCELED,
    CustomerRecord,
    Loader,
    LoadResult,
    LocationRecord,
    SaleLine,
    SaleOrder,
    existing_order_keys,
)
from doorstep.platform import hooks
from doorstep.platform.auth import Tenant, User
from doorstep.platform.db import utcnow
from doorstep.transactions.models import EscrowStatus, Transaction

SOURCE = "brokerage"


def _order(tx: Transaction, tenant: Tenant) -> SaleOrder:
    closed = tx.actual_closing_date or tx.target_closing_date
    kind = tx.property_type or "residential"
    return SaleOrder(
        SOURCE,
        str(tx.id),
        f"agent-{tx.agent_id}",
        datetime.combine(closed, time(12), tenant.zone),
        (SaleLine(kind, kind.title(), Decimal(1), tx.my_commission),),
        customer_key=_buyer_key(tx),
    )


def _buyer_key(tx: Transaction) -> str:
    return " ".join(tx.buyer_name.lower().split())[:64] or f"deal-{tx.id}"


def _loader(session: Session, tenant: Tenant, agent_ids: set[int]) -> Loader:
    loader = Loader(session, tenant.id, default_timezone=tenant.timezone)
    agents = session.execute(select(User.id, User.full_name).where(User.id.in_(agent_ids))).all()
    loader.upsert_locations(
        LocationRecord(SOURCE, f"agent-{uid}", name, tenant.timezone) for uid, name in agents
    )
    return loader


def sync_brokerage(session: Session, tenant_id: int) -> LoadResult:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        return LoadResult()
    closed = list(
        session.scalars(
            select(Transaction).where(
                Transaction.tenant_id == tenant_id,
                Transaction.escrow_status == EscrowStatus.closed,
            )
        )
    )
    loader = _loader(session, tenant, {tx.agent_id for tx in closed})
    loader.upsert_customers(
        {
            _buyer_key(tx): CustomerRecord(SOURCE, _buyer_key(tx), tx.buyer_name) for tx in closed
        }.values()
    )
    orders = [_order(tx, tenant) for tx in closed]
    kept = {order.order_key for order in orders}
    gone = existing_order_keys(session, tenant_id, SOURCE) - kept
    orders += [SaleOrder(SOURCE, key, "", utcnow(), (), state=CANCELED) for key in sorted(gone)]
    return loader.load_orders(orders)


@hooks.on("escrow.closed")
def _on_closed(session: Session, *, escrow: Transaction, **_: object) -> None:
    tenant = session.get(Tenant, escrow.tenant_id)
    if tenant is None:
        return
    loader = _loader(session, tenant, {escrow.agent_id})
    loader.upsert_customers([CustomerRecord(SOURCE, _buyer_key(escrow), escrow.buyer_name)])
    loader.load_orders([_order(escrow, tenant)])
