"""Request and response bodies of the transactions API (seed 000's paths)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, model_validator

from doorstep.platform.schemas import ReadModel, StrictModel
from doorstep.transactions.models import EscrowStatus, LoanType, MilestoneStatus, MilestoneType

Money = Annotated[Decimal, Field(ge=0, le=Decimal("1000000000"), max_digits=14, decimal_places=2)]


class TransactionCreate(StrictModel):
    property_address: str = Field(min_length=3, max_length=200)
    property_city: str = Field(default="", max_length=100)
    property_state: str = Field(default="", max_length=2)
    property_zip: str = Field(default="", pattern=r"^(\d{5}(-\d{4})?)?$")
    property_type: Literal["residential", "commercial", "land"] = "residential"
    property_id: int | None = Field(default=None, ge=1)
    buyer_name: str = Field(min_length=1, max_length=200)
    buyer_ids: list[int] = Field(default_factory=list, max_length=4)
    agent_id: int | None = Field(
        default=None, ge=1, description="Brokers and admins name the agent"
    )
    purchase_price: Money = Field(gt=0)
    down_payment: Money = Decimal(0)
    loan_type: LoanType
    my_commission: Money = Decimal(0)
    contract_date: date
    target_closing_date: date
    stakeholders: dict[str, bool] = Field(default_factory=dict, max_length=12)
    notes: str = Field(default="", max_length=5000)

    @model_validator(mode="after")
    def _dates_and_money(self) -> TransactionCreate:
        if self.target_closing_date <= self.contract_date:
            raise ValueError("target_closing_date must be after contract_date")
        if (self.target_closing_date - self.contract_date).days > 365:
            raise ValueError("target_closing_date must be within a year of contract_date")
        if self.down_payment > self.purchase_price:
            raise ValueError("down_payment cannot exceed purchase_price")
        if self.my_commission > self.purchase_price:
            raise ValueError("my_commission cannot exceed purchase_price")
        return self


class TransactionUpdate(StrictModel):
    escrow_status: Literal["Active", "Pending", "Cancelled"] | None = None
    cancellation_reason: str | None = Field(default=None, max_length=500)
    target_closing_date: date | None = None
    stakeholders: dict[str, bool] | None = Field(default=None, max_length=12)
    notes: str | None = Field(default=None, max_length=5000)


class MilestoneUpdate(StrictModel):
    milestone_type: MilestoneType
    status: MilestoneStatus
    actual_date: date | None = None
    notes: str | None = Field(default=None, max_length=2000)


class MilestoneRead(ReadModel):
    milestone_type: str
    name: str
    status: str
    order_sequence: int
    target_date: date
    actual_date: date | None
    progress_weight: Decimal
    celebration_message: str
    requires: list[str]
    optional: bool
    notes: str


class TransactionSummary(ReadModel):
    id: int
    transaction_id: str
    agent_id: int
    property_address: str
    property_city: str
    buyer_name: str
    purchase_price: Decimal
    loan_type: str
    my_commission: Decimal
    escrow_status: str
    contract_date: date
    target_closing_date: date
    actual_closing_date: date | None
    progress_percentage: Decimal
    health_score: int
    updated_at: datetime


class TransactionRead(TransactionSummary):
    property_state: str
    property_zip: str
    property_type: str
    property_id: int | None
    down_payment: Decimal
    stakeholders: dict[str, bool]
    health_factors: dict[str, Any]
    delay_count: int
    last_communication_at: datetime
    cancellation_reason: str | None
    notes: str
    agent_name: str = ""
    buyer_ids: list[int] = []
    days_to_closing: int = 0
    milestones: list[MilestoneRead] = []


class EventRead(ReadModel):
    id: int
    event_type: str
    title: str
    description: str
    priority: str
    visibility: str
    data: dict[str, Any]
    outbox_id: int | None
    acknowledged_at: datetime | None
    created_at: datetime


class HealthRead(BaseModel):
    transaction_id: int
    score: int
    factors: dict[str, dict[str, Any]]
    weights: dict[str, float]
    recommendations: list[str]
    trend: list[dict[str, Any]]


class HealthWeights(StrictModel):
    on_schedule: float = Field(ge=0, le=1)
    milestone_progress: float = Field(ge=0, le=1)
    communication: float = Field(ge=0, le=1)
    no_delays: float = Field(ge=0, le=1)
    stakeholder_ready: float = Field(ge=0, le=1)


class PredictionRead(ReadModel):
    id: int
    model_version: str
    delay_probability: float
    predicted_closing_date: date
    closing_date_low: date
    closing_date_high: date
    confidence: float
    factors: dict[str, Any]
    risk_factors: list[dict[str, Any]]
    recommended_actions: list[str]
    created_at: datetime
    risk_level: str = ""


class CelebrationRead(ReadModel):
    id: int
    trigger_type: str
    trigger_key: str
    variant: str
    title: str
    message: str
    animation: str
    duration: int
    share_message: str
    channels: list[str]
    delivery_status: dict[str, Any]
    created_at: datetime
    shown_at: datetime | None
    seconds_viewed: float
    shared: bool
    share_channel: str | None


class CelebrateRequest(StrictModel):
    title: str = Field(min_length=1, max_length=120)
    message: str = Field(min_length=1, max_length=500)
    animation: Literal["confetti", "fireworks", "sparkles"] = "confetti"
    duration: int = Field(default=4, ge=1, le=15)
    share_message: str = Field(default="", max_length=300)


class EngagementUpdate(StrictModel):
    shown: bool = True
    seconds_viewed: float = Field(default=0, ge=0, le=3600)
    shared: bool = False
    share_channel: Literal["web_share", "copy_link", "email", "sms", "facebook", "x"] | None = None


class PlanStepIn(StrictModel):
    milestone_type: MilestoneType
    name: str = Field(min_length=1, max_length=80)
    progress_weight: Decimal = Field(gt=0, le=100, decimal_places=2)
    offset_days: int = Field(ge=0, le=365)
    requires: list[MilestoneType] = Field(default_factory=list)
    optional: bool = False
    celebration_message: str = Field(default="", max_length=300)


class PlanIn(StrictModel):
    steps: list[PlanStepIn] = Field(min_length=1, max_length=len(MilestoneType))


class CelebrationTemplateIn(StrictModel):
    title: str = Field(min_length=1, max_length=120)
    message: str = Field(min_length=1, max_length=500)
    animation: Literal["confetti", "fireworks", "sparkles"]
    duration: int = Field(ge=1, le=15)
    share_message: str = Field(default="", max_length=300)


__all__ = [
    "EscrowStatus",
    "LoanType",
    "MilestoneStatus",
    "MilestoneType",
]
