"""Deterministic, idempotent demo data: Riley Realty (seed 004's brokerage) and a second tenant.

Every row is looked up before it is created, so running the seed twice changes nothing; the
random generator is seeded, so every machine gets the same people."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from doorstep.platform.auth import Role, Tenant, User, hash_password

FIRST = [
    "Avery",
    "Blake",
    "Carmen",
    "Dana",
    "Elena",
    "Felix",
    "Grace",
    "Hector",
    "Iris",
    "Jonah",
    "Kara",
    "Liam",
    "Maya",
    "Nolan",
    "Olive",
    "Priya",
    "Quinn",
    "Rosa",
    "Sami",
    "Tess",
    "Uma",
    "Victor",
    "Wren",
    "Xavier",
    "Yara",
    "Zane",
    "Nina",
    "Omar",
    "Paige",
    "Reid",
]
LAST = [
    "Alvarez",
    "Brooks",
    "Chen",
    "Diaz",
    "Ellis",
    "Foster",
    "Garcia",
    "Hughes",
    "Ibarra",
    "Jensen",
    "Kim",
    "Lopez",
    "Morgan",
    "Nguyen",
    "Ortiz",
    "Patel",
    "Reyes",
    "Shah",
    "Turner",
    "Vance",
    "Walsh",
    "Young",
    "Zimmer",
    "Bishop",
    "Carter",
    "Dunn",
    "Flores",
    "Grant",
    "Hale",
    "Irwin",
]
# Seed 004 names these agents of Josh Riley's brokerage.
NAMED_AGENTS = [
    ("agent@doorstep.demo", "Jayden Metz"),
    ("agent2@doorstep.demo", "Cole Rangel"),
    ("lee.rangel@rileyrealty.demo", "Lee Rangel"),
]
AGENT_COUNT = 40
CLIENTS_PER_AGENT = 2


@dataclass
class DemoContext:
    """What module seeders receive: the session, a seeded generator and the people made so far."""

    session: Session
    rng: random.Random
    password_hash: str
    tenants: dict[str, Tenant] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    progress: Callable[[str], None] = lambda _step: None

    def tenant(self, slug: str, name: str, color: str, timezone: str) -> Tenant:
        tenant = self.session.scalar(select(Tenant).where(Tenant.slug == slug))
        if tenant is None:
            tenant = Tenant(slug=slug, name=name, primary_color=color, timezone=timezone)
            self.session.add(tenant)
            self.session.flush()
        self.tenants[slug] = tenant
        return tenant

    def user(self, tenant: Tenant, email: str, name: str, role: Role, **links: int | None) -> User:
        user = self.session.scalar(select(User).where(User.email == email))
        if user is None:
            user = User(
                tenant_id=tenant.id,
                email=email,
                full_name=name,
                role=role,
                password_hash=self.password_hash,
                phone=f"+1555{self.rng.randrange(1_000_000, 9_999_999)}",
                **links,
            )
            self.session.add(user)
            self.session.flush()
        else:
            self.rng.randrange(1_000_000, 9_999_999)  # keep the stream aligned on re-runs
        self.users[email] = user
        return user


def _names(rng: random.Random, count: int, taken: set[str]) -> list[str]:
    names: list[str] = []
    while len(names) < count:
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        if name not in taken:
            taken.add(name)
            names.append(name)
    return names


def _email(name: str, domain: str) -> str:
    return name.lower().replace(" ", ".") + "@" + domain


def seed_platform(ctx: DemoContext) -> None:
    riley = ctx.tenant("riley-realty", "Riley Realty", "#1d6fa5", "America/Los_Angeles")
    ctx.user(riley, "admin@doorstep.demo", "Morgan Admin", Role.admin)
    broker = ctx.user(riley, "broker@doorstep.demo", "Josh Riley", Role.broker)
    ctx.user(riley, "analyst@doorstep.demo", "Alex Analyst", Role.analyst)
    taken = {name for _, name in NAMED_AGENTS} | {"Josh Riley"}
    agents = [ctx.user(riley, e, n, Role.agent, broker_id=broker.id) for e, n in NAMED_AGENTS]
    for name in _names(ctx.rng, AGENT_COUNT - len(NAMED_AGENTS), taken):
        agents.append(
            ctx.user(riley, _email(name, "rileyrealty.demo"), name, Role.agent, broker_id=broker.id)
        )
    ctx.progress("Riley Realty agents")
    jayden = agents[0]
    ctx.user(riley, "buyer@doorstep.demo", "Sam Buyer", Role.client, agent_id=jayden.id)
    for agent in agents:
        for name in _names(ctx.rng, CLIENTS_PER_AGENT, taken):
            ctx.user(riley, _email(name, "clients.demo"), name, Role.client, agent_id=agent.id)
    ctx.progress("Riley Realty clients")

    harbor = ctx.tenant("harbor-homes", "Harbor Homes", "#2fb344", "America/New_York")
    ctx.user(harbor, "admin@harborhomes.demo", "Hana Harbor", Role.admin)
    h_broker = ctx.user(harbor, "broker@harborhomes.demo", "Dean Harbor", Role.broker)
    for name in _names(ctx.rng, 6, taken):
        agent = ctx.user(
            harbor, _email(name, "harborhomes.demo"), name, Role.agent, broker_id=h_broker.id
        )
        for client in _names(ctx.rng, 1, taken):
            ctx.user(
                harbor,
                _email(client, "harbor-clients.demo"),
                client,
                Role.client,
                agent_id=agent.id,
            )
    ctx.progress("Harbor Homes")


def seed_demo(
    session: Session, *, password: str, progress: Callable[[str], None] = lambda _s: None
) -> DemoContext:
    """Create whatever demo data is missing. The caller owns the transaction."""
    from doorstep.modules import installed_modules

    existing = session.scalar(select(User.password_hash).where(User.email == "admin@doorstep.demo"))
    # One hash for every demo login: they share a published password, and hashing hundreds of
    # users one by one with Argon2 would dominate the seed time.
    ctx = DemoContext(
        session=session,
        rng=random.Random(20261121),
        password_hash=existing or hash_password(password),
        progress=progress,
    )
    seed_platform(ctx)
    for module in installed_modules():
        if module.seed_demo is not None:
            module.seed_demo(ctx)
            progress(module.name)
    return ctx


def demo_steps() -> int:
    from doorstep.modules import installed_modules

    return 3 + sum(1 for m in installed_modules() if m.seed_demo is not None)
