"""The broker's notices (seed 004): a new escrow, client or listing of an agent of theirs, and an
escrow closed — in real time, on the channels of their settings, above their escrow threshold.

Leads, appointments and lead status changes never notify the broker: nothing here listens to
them."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from doorstep.broker.models import BrokerNotificationSettings
from doorstep.broker.service import client_link, settings_of
from doorstep.platform import hooks, notify
from doorstep.platform.auth import Role, User
from doorstep.platform.notify import Channel

BROKERS = [Role.broker]
ESCROW_CREATED = notify.register_type(
    "escrow.created", label="New escrows of your agents", roles=BROKERS
)
ESCROW_CLOSED = notify.register_type(
    "escrow.closed", label="Escrows of your agents closed", roles=BROKERS
)
CLIENT_CREATED = notify.register_type(
    "client.created", label="New clients of your agents", roles=BROKERS
)
LISTING_CREATED = notify.register_type(
    "listing.created", label="New listings of your agents", roles=BROKERS
)


def _channels(settings: BrokerNotificationSettings) -> set[Channel]:
    wanted = {
        Channel.in_app: settings.in_app_notifications,
        Channel.email: settings.email_notifications,
        Channel.sms: settings.sms_notifications,
    }
    return {channel for channel, on in wanted.items() if on}


def _broker_of(session: Session, agent_id: int) -> tuple[User, User] | None:
    """The agent and their broker, when the agent has one (a broker's own deals notify nobody)."""
    agent = session.get(User, agent_id)
    if agent is None or agent.role != Role.agent or agent.broker_id is None:
        return None
    broker = session.get(User, agent.broker_id)
    if broker is None or broker.role != Role.broker or not broker.is_active:
        return None
    return agent, broker


def _money(value: Decimal) -> str:
    return f"${value:,.0f}"


def _send(
    session: Session,
    *,
    agent_id: int,
    flag: str,
    kind: notify.NotificationType,
    title: str,
    body: str,
    link: str,
    value: Decimal | None = None,
) -> None:
    found = _broker_of(session, agent_id)
    if found is None:
        return
    agent, broker = found
    settings = settings_of(session, broker=broker)
    if not getattr(settings, flag):
        return
    threshold = settings.min_escrow_value
    if value is not None and threshold is not None and value < threshold:
        return
    notify.notify(
        session,
        user_id=broker.id,
        type=kind.key,
        title=title.format(agent=agent.full_name),
        body=body,
        link=link,
        channels=_channels(settings),
    )


@hooks.on("escrow.created")
def escrow_created(session: Session, *, escrow: Any) -> None:
    address = ", ".join(p for p in (escrow.property_address, escrow.property_city) if p)
    _send(
        session,
        agent_id=escrow.agent_id,
        flag="notify_escrow_created",
        kind=ESCROW_CREATED,
        title="New escrow: {agent}",
        body=f"Property: {address}. Price: {_money(escrow.purchase_price)}. "
        f"Status: {escrow.escrow_status}.",
        link=f"/transactions/{escrow.id}",
        value=escrow.purchase_price,
    )


@hooks.on("escrow.closed")
def escrow_closed(session: Session, *, escrow: Any) -> None:
    _send(
        session,
        agent_id=escrow.agent_id,
        flag="notify_escrow_closed",
        kind=ESCROW_CLOSED,
        title="Escrow closed: {agent}",
        body=f"Property: {escrow.property_address}. Price: {_money(escrow.purchase_price)}.",
        link=f"/transactions/{escrow.id}",
        value=escrow.purchase_price,
    )


@hooks.on("client.created")
def client_created(session: Session, *, client: Any) -> None:
    _send(
        session,
        agent_id=client.agent_id,
        flag="notify_client_created",
        kind=CLIENT_CREATED,
        title="New client: {agent}",
        body=f"Client: {client.name}. Source: {client.source.replace('_', ' ').title()}.",
        link=client_link(client.name),
    )


@hooks.on("listing.created")
def listing_created(session: Session, *, listing: Any) -> None:
    _send(
        session,
        agent_id=listing.listing_agent_id,
        flag="notify_listing_created",
        kind=LISTING_CREATED,
        title="New listing: {agent}",
        body=f"Property: {listing.address}, {listing.city} {listing.state}. "
        f"List price: {_money(listing.price)}.",
        link=f"/crm/properties/{listing.id}",
    )
