"""The modules the app mounts. A seed system arrives by adding one `Module` entry here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import APIRouter

from doorstep.platform.auth import Role

if TYPE_CHECKING:
    from doorstep.demo import DemoContext


@dataclass(frozen=True)
class NavItem:
    label: str
    href: str
    icon: str  # a Tabler icon name, e.g. "users"
    roles: frozenset[Role]


@dataclass(frozen=True)
class Module:
    name: str
    api: APIRouter | None = None
    pages: APIRouter | None = None
    templates: Path | None = None
    nav: tuple[NavItem, ...] = ()
    # Adds the module's demo data; runs after the platform's tenants and users exist.
    seed_demo: Callable[[DemoContext], None] | None = None


@cache
def installed_modules() -> list[Module]:
    from doorstep.analytics.module import analytics_module
    from doorstep.broker.module import broker_module
    from doorstep.crm.module import crm_module
    from doorstep.platform.module import platform_module
    from doorstep.reports.module import reports_module
    from doorstep.transactions.module import transactions_module

    return [
        platform_module(),
        crm_module(),
        transactions_module(),
        broker_module(),
        analytics_module(),
        reports_module(),
    ]


def nav_for(role: Role) -> list[NavItem]:
    return [item for module in installed_modules() for item in module.nav if role in item.roles]
