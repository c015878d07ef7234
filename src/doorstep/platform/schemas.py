"""Request and response models of the platform API (auth, users, tenant, audit)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from doorstep.platform.auth import Role, Tenant

T = TypeVar("T")
HEX_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
MIN_PASSWORD = 10


class StrictModel(BaseModel):
    """Request bodies: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ReadModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    page: int
    per_page: int


class ErrorBody(BaseModel):
    detail: str
    code: str
    errors: list[Any] | None = None


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"  # noqa: S105
    expires_in: int


class RefreshRequest(StrictModel):
    refresh_token: str = Field(min_length=10, max_length=200)


class LogoutRequest(StrictModel):
    refresh_token: str | None = Field(default=None, min_length=10, max_length=200)


def _password(value: str | None) -> str | None:
    if value is not None and len(value) < MIN_PASSWORD:
        raise ValueError(f"must be at least {MIN_PASSWORD} characters")
    return value


class UserCreate(StrictModel):
    email: EmailStr
    full_name: str = Field(min_length=1, max_length=120)
    role: Role
    password: str = Field(max_length=256)
    phone: str | None = Field(default=None, max_length=32)
    broker_id: int | None = None
    agent_id: int | None = None

    _check_password = field_validator("password")(_password)


class UserUpdate(StrictModel):
    full_name: str | None = Field(default=None, min_length=1, max_length=120)
    role: Role | None = None
    phone: str | None = Field(default=None, max_length=32)
    broker_id: int | None = None
    agent_id: int | None = None
    is_active: bool | None = None
    password: str | None = Field(default=None, max_length=256)

    _check_password = field_validator("password")(_password)


class UserRead(ReadModel):
    id: int
    tenant_id: int
    email: str
    full_name: str
    role: Role
    phone: str | None
    broker_id: int | None
    agent_id: int | None
    is_active: bool
    created_at: datetime
    last_login_at: datetime | None


class TenantRead(ReadModel):
    id: int
    slug: str
    name: str
    primary_color: str
    timezone: str
    has_logo: bool = False

    @classmethod
    def of(cls, tenant: Tenant) -> TenantRead:
        read = cls.model_validate(tenant)
        read.has_logo = tenant.logo_content_type is not None
        return read


class TenantUpdate(StrictModel):
    name: str | None = Field(default=None, min_length=1, max_length=120)
    primary_color: str | None = None
    timezone: str | None = None

    @field_validator("primary_color")
    @classmethod
    def _hex(cls, value: str | None) -> str | None:
        if value is not None and not HEX_COLOR.match(value):
            raise ValueError("must be a colour like #206bc4")
        return value.lower() if value else value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("must be an IANA time zone such as America/New_York") from exc
        return value


class AuditRead(ReadModel):
    id: int
    at: datetime
    actor_id: int | None
    actor: str
    action: str
    entity: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class Me(UserRead):
    tenant: TenantRead
