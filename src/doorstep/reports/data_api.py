"""JSON routes of seed 002's valuation data under /api: companies, valuations, metrics history,
market benchmarks. Parse, call reports/data.py, shape the answer."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, File, Query, UploadFile, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, field_validator

from doorstep.platform.http import DB, CurrentPrincipal, DoorstepRoute, read_csv_upload
from doorstep.platform.schemas import Page, ReadModel, StrictModel
from doorstep.reports import data, rules

router = APIRouter(prefix="/api", route_class=DoorstepRoute, tags=["valuation data"])
MAX_CSV_BYTES = 5 * 1024 * 1024
CompanyId = Annotated[int, Field(ge=1, le=2_147_483_647)]
Money = Annotated[Decimal, Field(ge=0, max_digits=16, decimal_places=2, allow_inf_nan=False)]


# --- bodies and answers -------------------------------------------------------------------------


class CompanyCreate(StrictModel):
    name: str = Field(min_length=1, max_length=120)
    industry: str = Field(min_length=1, max_length=64)
    description: str | None = Field(default=None, max_length=5000)
    warehouse_tenant_id: int | None = Field(
        default=None,
        ge=1,
        le=2_147_483_647,
        description="Your own tenant's id, to compute the monthly metrics from your sales",
    )


class CompanyUpdate(StrictModel):
    name: str | None = Field(default=None, min_length=1, max_length=120)
    industry: str | None = Field(default=None, min_length=1, max_length=64)
    description: str | None = Field(default=None, max_length=5000)
    warehouse_tenant_id: int | None = Field(default=None, ge=1, le=2_147_483_647)


class CompanyRead(ReadModel):
    id: int
    name: str
    industry: str
    description: str | None
    warehouse_tenant_id: int | None
    created_at: datetime
    updated_at: datetime


class ValuationCreate(StrictModel):
    method: str = Field(description=f"One of: {', '.join(rules.METHODS)}")
    value: Money
    low: Money
    high: Money
    confidence: Annotated[
        Decimal, Field(ge=0, le=1, max_digits=4, decimal_places=3, allow_inf_nan=False)
    ]
    valued_on: date
    notes: str | None = Field(default=None, max_length=5000)

    @field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        if value not in rules.METHODS:
            raise ValueError(f"must be one of: {', '.join(rules.METHODS)}")
        return value


class ValuationRead(ReadModel):
    id: int
    company_id: int
    method: str
    value: Decimal
    low: Decimal
    high: Decimal
    confidence: Decimal
    valued_on: date
    notes: str | None
    created_at: datetime


class MetricRead(ReadModel):
    period: date
    revenue: Decimal
    growth: Decimal | None
    margin: Decimal | None
    churn: Decimal | None
    customers: int | None
    orders: int | None
    source: str


class RefreshRead(BaseModel):
    company_id: int
    months: int


class BenchmarkRead(ReadModel):
    id: int
    industry: str
    metric: str
    p25: Decimal
    p50: Decimal
    p75: Decimal
    as_of: date
    source: str


class BenchmarkImportRead(BaseModel):
    rows: int
    created: int
    updated: int


# --- companies ----------------------------------------------------------------------------------


@router.get("/companies", response_model=Page[CompanyRead])
def list_companies(
    db: DB,
    principal: CurrentPrincipal,
    search: Annotated[str | None, Query(max_length=100)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=200)] = 25,
) -> Page[CompanyRead]:
    rows, total = data.list_companies(db, principal, search=search, page=page, per_page=per_page)
    return Page[CompanyRead](
        items=[CompanyRead.model_validate(r) for r in rows],
        total=total,
        page=page,
        per_page=per_page,
    )


@router.post("/companies", response_model=CompanyRead, status_code=status.HTTP_201_CREATED)
def create_company(db: DB, principal: CurrentPrincipal, body: CompanyCreate) -> CompanyRead:
    company = data.create_company(db, principal, **body.model_dump())
    return CompanyRead.model_validate(company)


@router.get("/companies/{company_id}", response_model=CompanyRead)
def get_company(db: DB, principal: CurrentPrincipal, company_id: CompanyId) -> CompanyRead:
    return CompanyRead.model_validate(data.get_company(db, principal, company_id))


@router.patch("/companies/{company_id}", response_model=CompanyRead)
def update_company(
    db: DB, principal: CurrentPrincipal, company_id: CompanyId, body: CompanyUpdate
) -> CompanyRead:
    company = data.update_company(
        db, principal, company_id, changes=body.model_dump(exclude_unset=True)
    )
    return CompanyRead.model_validate(company)


# --- valuations and metrics ---------------------------------------------------------------------


@router.get("/companies/{company_id}/valuations", response_model=list[ValuationRead])
def list_valuations(
    db: DB, principal: CurrentPrincipal, company_id: CompanyId
) -> list[ValuationRead]:
    return [
        ValuationRead.model_validate(v) for v in data.list_valuations(db, principal, company_id)
    ]


@router.post(
    "/companies/{company_id}/valuations",
    response_model=ValuationRead,
    status_code=status.HTTP_201_CREATED,
)
def add_valuation(
    db: DB, principal: CurrentPrincipal, company_id: CompanyId, body: ValuationCreate
) -> ValuationRead:
    valuation = data.add_valuation(db, principal, company_id, **body.model_dump())
    return ValuationRead.model_validate(valuation)


@router.get("/companies/{company_id}/metrics", response_model=list[MetricRead])
def list_metrics(db: DB, principal: CurrentPrincipal, company_id: CompanyId) -> list[MetricRead]:
    return [MetricRead.model_validate(m) for m in data.list_metrics(db, principal, company_id)]


@router.post("/companies/{company_id}/metrics/refresh", response_model=RefreshRead)
def refresh_metrics(db: DB, principal: CurrentPrincipal, company_id: CompanyId) -> RefreshRead:
    """Recompute the monthly metrics of a company linked to its sales warehouse."""
    months = data.refresh_company_metrics(db, principal, company_id)
    return RefreshRead(company_id=company_id, months=months)


# --- benchmarks ---------------------------------------------------------------------------------


@router.get("/benchmarks", response_model=list[BenchmarkRead])
def list_benchmarks(
    db: DB,
    principal: CurrentPrincipal,
    industry: Annotated[str | None, Query(max_length=64)] = None,
    metric: Annotated[str | None, Query(max_length=32)] = None,
) -> list[BenchmarkRead]:
    rows = data.list_benchmarks(db, principal, industry=industry, metric=metric)
    return [BenchmarkRead.model_validate(b) for b in rows]


@router.post("/benchmarks/import", response_model=BenchmarkImportRead)
async def import_benchmarks(
    db: DB,
    principal: CurrentPrincipal,
    file: Annotated[
        UploadFile,
        File(description="CSV: industry,metric,p25,p50,p75,as_of,source (reports/data.py)"),
    ],
) -> BenchmarkImportRead:
    """Import market benchmarks: every problem is listed with its line, and nothing is imported
    unless the whole file is good."""
    data.require_editor(principal)
    text = await read_csv_upload(file, max_bytes=MAX_CSV_BYTES)
    result = await run_in_threadpool(data.import_benchmarks_csv, db, principal, text)
    return BenchmarkImportRead(rows=result.rows, created=result.created, updated=result.updated)
