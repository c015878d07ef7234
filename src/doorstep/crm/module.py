"""The CRM module's entry (seed 003): API, pages, navigation, jobs and demo data."""

from __future__ import annotations

from pathlib import Path

from doorstep.modules import Module, NavItem
from doorstep.platform.auth import Role


def crm_module() -> Module:
    from doorstep.crm import models, tasks  # noqa: F401 - registers tables, policies, jobs
    from doorstep.crm.api import router as api
    from doorstep.crm.demo import seed_demo
    from doorstep.crm.pages import router as pages

    staff = frozenset({Role.admin, Role.broker, Role.agent})
    return Module(
        name="crm",
        api=api,
        pages=pages,
        templates=Path(__file__).parent / "templates",
        nav=(
            NavItem("Leads", "/crm/leads/board", "layout-kanban", staff),
            NavItem("Properties", "/crm/properties", "building-estate", staff),
            NavItem("Clients", "/crm/clients", "users", staff),
            NavItem("Appointments", "/crm/appointments", "calendar", staff),
            NavItem("Tasks", "/crm/tasks", "checklist", staff),
            NavItem("Assignment", "/crm/admin/assignment", "route", frozenset({Role.admin})),
        ),
        seed_demo=seed_demo,
    )
