"""The transactions module's entry: API, pages, navigation, jobs and demo data (seed 000)."""

from __future__ import annotations

from pathlib import Path

from doorstep.modules import Module, NavItem
from doorstep.platform.auth import Role


def transactions_module() -> Module:
    from doorstep.transactions import tasks  # noqa: F401 - registers the module's jobs
    from doorstep.transactions.api import router as api
    from doorstep.transactions.demo import seed_demo
    from doorstep.transactions.pages import router as pages

    return Module(
        name="transactions",
        api=api,
        pages=pages,
        templates=Path(__file__).parent / "templates",
        seed_demo=seed_demo,
        nav=(
            NavItem(
                "Transactions",
                "/transactions",
                "home-dollar",
                frozenset({Role.admin, Role.broker, Role.agent}),
            ),
            NavItem("My home", "/portal", "home-heart", frozenset({Role.client})),
        ),
    )
