"""Request and response bodies of the CRM API (seed 003)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, EmailStr, Field, field_validator, model_validator

from doorstep.crm.models import (
    AppointmentStatus,
    ClientStatus,
    InteractionKind,
    LeadSource,
    MessageChannel,
    MessageType,
    PropertyStatus,
    PropertyType,
    TaskKind,
    TaskStatus,
)
from doorstep.platform.schemas import ReadModel, StrictModel

T = TypeVar("T")
PHONE = r"^\+?[0-9 ().\-]{7,20}$"
ZIP = r"^\d{5}(-\d{4})?$"
_DAY = timedelta(days=1)


class DrfPage(BaseModel, Generic[T]):
    """Django REST framework's page shape, which seed 003's PropertyService reads."""

    count: int
    next: str | None
    previous: str | None
    results: list[T]


# --- properties ------------------------------------------------------------------------------


class PropertyCreate(StrictModel):
    property_type: PropertyType
    title: str = Field(min_length=3, max_length=200)
    description: str = Field(default="", max_length=5000)
    address: str = Field(min_length=3, max_length=200)
    city: str = Field(min_length=2, max_length=100)
    state: str = Field(pattern=r"^[A-Z]{2}$")
    zip_code: str = Field(pattern=ZIP)
    price: Decimal = Field(gt=0, le=Decimal("1000000000"), decimal_places=2)
    attributes: dict[str, Any] = Field(default_factory=dict)
    features: list[str] = Field(default_factory=list, max_length=30)
    listing_agent_id: int | None = Field(default=None, ge=1)


class PropertyUpdate(StrictModel):
    title: str | None = Field(default=None, min_length=3, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    address: str | None = Field(default=None, min_length=3, max_length=200)
    city: str | None = Field(default=None, min_length=2, max_length=100)
    state: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    zip_code: str | None = Field(default=None, pattern=ZIP)
    price: Decimal | None = Field(default=None, gt=0, le=Decimal("1000000000"), decimal_places=2)
    attributes: dict[str, Any] | None = None
    features: list[str] | None = Field(default=None, max_length=30)
    listing_agent_id: int | None = Field(default=None, ge=1)


class PropertyStatusChange(StrictModel):
    status: PropertyStatus
    reason: str | None = Field(default=None, max_length=500)


class PropertyRead(ReadModel):
    id: int
    property_type: str
    status: str
    title: str
    description: str
    address: str
    city: str
    state: str
    zip_code: str
    price: Decimal
    attributes: dict[str, Any]
    bedrooms: int | None
    bathrooms: float | None
    area_sqft: int | None
    features: list[str]
    listing_agent_id: int
    listing_agent_name: str = ""
    status_reason: str
    status_changed_at: datetime
    cover_image_id: int | None
    cover_thumbnail_url: str | None = None
    created_at: datetime
    updated_at: datetime


# --- leads -----------------------------------------------------------------------------------


class LeadCreate(StrictModel):
    name: str = Field(min_length=2, max_length=200)
    email: EmailStr | None = None
    phone: str | None = Field(default=None, pattern=PHONE)
    source: LeadSource = LeadSource.website
    budget: Decimal | None = Field(default=None, ge=0, le=Decimal("1000000000"))
    zip_code: str | None = Field(default=None, pattern=ZIP)
    notes: str = Field(default="", max_length=5000)
    is_private: bool | None = None
    # Admins may name the owner; omitted, the lead is assigned automatically (admins) or is
    # the creator's own (agents and brokers).
    agent_id: int | None = Field(default=None, ge=1)
    property_id: int | None = Field(default=None, ge=1)


class LeadUpdate(StrictModel):
    name: str | None = Field(default=None, min_length=2, max_length=200)
    email: EmailStr | None = None
    phone: str | None = Field(default=None, pattern=PHONE)
    source: LeadSource | None = None
    budget: Decimal | None = Field(default=None, ge=0, le=Decimal("1000000000"))
    zip_code: str | None = Field(default=None, pattern=ZIP)
    notes: str | None = Field(default=None, max_length=5000)
    is_private: bool | None = None
    property_id: int | None = Field(default=None, ge=1)


class LeadTransition(StrictModel):
    to_stage: str = Field(min_length=1, max_length=40)
    # Where the card lands in its new column (the Kanban); omitted: at the top.
    position: int | None = Field(default=None, ge=0, le=100_000)


class LeadRead(ReadModel):
    id: int
    agent_id: int | None
    agent_name: str = ""
    name: str
    email: str | None
    phone: str | None
    source: str
    is_private: bool
    stage: str
    stage_entered_at: datetime
    position: int
    budget: Decimal | None
    zip_code: str | None
    property_id: int | None
    heat: str
    heat_score: float
    interaction_count: int
    last_interaction_at: datetime | None
    assigned_at: datetime | None
    first_response_at: datetime | None
    closed_at: datetime | None
    notes: str
    created_at: datetime
    updated_at: datetime


class InteractionCreate(StrictModel):
    kind: InteractionKind
    summary: str = Field(default="", max_length=500)

    @field_validator("kind")
    @classmethod
    def _by_hand(cls, kind: InteractionKind) -> InteractionKind:
        if kind in (InteractionKind.stage_change, InteractionKind.message):
            raise ValueError("stage changes and messages are recorded by their own actions")
        return kind


class InteractionRead(ReadModel):
    id: int
    kind: str
    summary: str
    user_id: int | None
    created_at: datetime


class MessageCreate(StrictModel):
    channel: MessageChannel
    message_type: MessageType = MessageType.general
    body: str = Field(min_length=1, max_length=1600)


class MessageRead(ReadModel):
    id: int
    lead_id: int
    channel: str
    message_type: str
    body: str
    to_address: str
    status: str
    error: str | None
    created_at: datetime
    sent_at: datetime | None


class ReassignRequest(StrictModel):
    agent_id: int | None = Field(default=None, ge=1)  # None: let the strategy chain decide


class AssignmentRead(ReadModel):
    id: int
    lead_id: int
    agent_id: int
    agent_name: str = ""
    strategy: str
    reason: str
    candidates: list[dict[str, Any]]
    decided_by: int | None
    created_at: datetime


# --- tasks -----------------------------------------------------------------------------------


class TaskCreate(StrictModel):
    title: str = Field(min_length=2, max_length=200)
    kind: TaskKind = TaskKind.follow_up
    due_at: datetime
    lead_id: int | None = Field(default=None, ge=1)

    @field_validator("due_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("give a timezone, e.g. 2026-12-01T09:00:00Z")
        return value


class TaskUpdate(StrictModel):
    status: TaskStatus | None = None
    title: str | None = Field(default=None, min_length=2, max_length=200)
    due_at: datetime | None = None

    @model_validator(mode="after")
    def _settable(self) -> TaskUpdate:
        if self.status == TaskStatus.overdue:
            raise ValueError("a task becomes overdue by itself; set done or cancelled")
        if self.due_at is not None and self.due_at.tzinfo is None:
            raise ValueError("due_at needs a timezone")
        return self


class TaskRead(ReadModel):
    id: int
    assignee_id: int
    lead_id: int | None
    lead_name: str | None = None
    kind: str
    title: str
    due_at: datetime
    status: str
    created_for_stage: str | None
    completed_at: datetime | None
    created_at: datetime


# --- clients and appointments -------------------------------------------------------------------


class ClientCreate(StrictModel):
    name: str = Field(min_length=2, max_length=200)
    email: EmailStr | None = None
    phone: str | None = Field(default=None, pattern=PHONE)
    source: LeadSource = LeadSource.referral
    status: ClientStatus = ClientStatus.active
    lead_id: int | None = Field(default=None, ge=1)
    notes: str = Field(default="", max_length=5000)
    agent_id: int | None = Field(default=None, ge=1)


class ClientUpdate(StrictModel):
    name: str | None = Field(default=None, min_length=2, max_length=200)
    email: EmailStr | None = None
    phone: str | None = Field(default=None, pattern=PHONE)
    source: LeadSource | None = None
    status: ClientStatus | None = None
    notes: str | None = Field(default=None, max_length=5000)


class ClientRead(ReadModel):
    id: int
    agent_id: int
    agent_name: str = ""
    name: str
    email: str | None
    phone: str | None
    source: str
    status: str
    lead_id: int | None
    notes: str
    created_at: datetime
    updated_at: datetime


class AppointmentCreate(StrictModel):
    title: str = Field(min_length=2, max_length=200)
    start_time: datetime
    end_time: datetime
    location: str = Field(default="", max_length=200)
    lead_id: int | None = Field(default=None, ge=1)
    client_id: int | None = Field(default=None, ge=1)
    is_private: bool = True

    @model_validator(mode="after")
    def _times(self) -> AppointmentCreate:
        if self.start_time.tzinfo is None or self.end_time.tzinfo is None:
            raise ValueError("start_time and end_time need a timezone")
        if self.end_time <= self.start_time:
            raise ValueError("end_time must be after start_time")
        if self.end_time - self.start_time > _DAY:
            raise ValueError("an appointment lasts at most 24 hours")
        return self


class AppointmentUpdate(StrictModel):
    title: str | None = Field(default=None, min_length=2, max_length=200)
    start_time: datetime | None = None
    end_time: datetime | None = None
    location: str | None = Field(default=None, max_length=200)
    status: AppointmentStatus | None = None
    outcome: str | None = Field(default=None, max_length=5000)

    @model_validator(mode="after")
    def _aware(self) -> AppointmentUpdate:
        for value in (self.start_time, self.end_time):
            if value is not None and value.tzinfo is None:
                raise ValueError("times need a timezone")
        return self


class AppointmentRead(ReadModel):
    id: int
    agent_id: int
    lead_id: int | None
    client_id: int | None
    title: str
    start_time: datetime
    end_time: datetime
    location: str
    status: str
    is_private: bool
    outcome: str
    created_at: datetime


class AgentPause(StrictModel):
    paused: bool
    reason: str = Field(default="", max_length=200)
