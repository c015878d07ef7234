"""The broker module's entry (seed 004): the KPI API, the dashboard pages, notices and monthly
snapshots."""

from __future__ import annotations

from pathlib import Path

from doorstep.modules import Module, NavItem
from doorstep.platform.auth import Role


def broker_module() -> Module:
    from doorstep.broker import models, notices, tasks  # noqa: F401 - tables, hooks, jobs
    from doorstep.broker.api import router as api
    from doorstep.broker.demo import seed_demo
    from doorstep.broker.pages import router as pages

    return Module(
        name="broker",
        api=api,
        pages=pages,
        templates=Path(__file__).parent / "templates",
        seed_demo=seed_demo,
        nav=(
            NavItem(
                "Broker dashboard",
                "/broker-dashboard",
                "chart-bar",
                frozenset({Role.broker, Role.admin}),
            ),
        ),
    )
