"""The analytics module's entry (seed 001): the sales warehouse, the `/analytics` dashboard, its
API and CSV export, the Square sync and the models' training."""

from __future__ import annotations

from pathlib import Path

from doorstep.modules import Module, NavItem
from doorstep.platform.auth import Role


def analytics_module() -> Module:
    from doorstep.analytics import feeds, models, tasks  # noqa: F401 - tables, the escrow hook, jobs
    from doorstep.analytics.api import router as api
    from doorstep.analytics.demo import seed_demo
    from doorstep.analytics.pages import router as pages

    return Module(
        name="analytics",
        api=api,
        pages=pages,
        templates=Path(__file__).parent / "templates",
        nav=(
            NavItem(
                "Analytics",
                "/analytics",
                "chart-line",
                frozenset({Role.admin, Role.broker, Role.analyst}),
            ),
        ),
        seed_demo=seed_demo,
    )
