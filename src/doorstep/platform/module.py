"""The platform's own entry in the module list: its API, pages and admin navigation."""

from __future__ import annotations

from functools import cache

from fastapi import APIRouter

from doorstep.modules import Module, NavItem
from doorstep.platform.auth import Role


@cache
def _routers() -> tuple[APIRouter, APIRouter]:
    from doorstep.platform.api import router as accounts_api
    from doorstep.platform.notify_api import router as notify_api
    from doorstep.web.notify_pages import router as notify_pages
    from doorstep.web.pages import router as account_pages

    # A module mounts one API router and one pages router; the platform's parts join here
    # (routes keep their own DoorstepRoute class when included).
    api, pages = APIRouter(), APIRouter()
    api.include_router(accounts_api)
    api.include_router(notify_api)
    pages.include_router(account_pages)
    pages.include_router(notify_pages)
    return api, pages


def platform_module() -> Module:
    api, pages = _routers()
    admin = frozenset({Role.admin})
    return Module(
        name="platform",
        api=api,
        pages=pages,
        nav=(
            NavItem("Users", "/admin/users", "users", admin),
            NavItem("Branding", "/admin/branding", "palette", admin),
            NavItem("Audit log", "/admin/audit", "history", admin),
            NavItem("Outbox", "/admin/outbox", "mail-forward", admin),
            NavItem("Jobs", "/admin/jobs", "list-check", admin),
        ),
    )
