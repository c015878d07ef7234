"""Demo CRM data (issue 5): Riley Realty's 40 agents with about 1,000 leads each, the broker's
own private pipeline (seed 004: 87 leads, 12 from Zillow ads, 12 appointments this week), 300
Bakersfield listings with drawn photos, clients, appointments with a ~73% show rate, the stage
tasks, WhatsApp offers and the assignment log; Harbor Homes gets a small set.

The data obeys the CRM's own rules: every lead at or past Offer Sent has a delivered WhatsApp
offer, every lead at or past Contract Signed has a phone and an e-mail, every property's
attributes pass `rules.attributes_for`, and each lead's heat is `rules.lead_heat` of its
interactions at seed time.

Rows go in with bulk `insert(...)` (no ORM objects, no audit rows), from a generator seeded
apart from the others. A tenant that already has leads is left as it is, so a second run
changes nothing. `DOORSTEP_DEMO_SCALE` (0 < scale <= 1, default 1) shrinks the lead and
property counts for test runs; `make demo` loads the full set."""

from __future__ import annotations

import os
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from doorstep.config import get_settings
from doorstep.crm import demo_photos, gallery, rules, tallies
from doorstep.crm.models import (
    AgentProfile,
    Appointment,
    AppointmentStatus,
    Client,
    ClientStatus,
    Lead,
    LeadAssignment,
    LeadInteraction,
    LeadMessage,
    LeadSource,
    MessageChannel,
    MessageStatus,
    MessageType,
    Property,
    PropertyFeature,
    PropertyStatus,
    PropertyType,
    Task,
    TaskStatus,
)
from doorstep.crm.storage import storage_for
from doorstep.platform.auth import Role, Tenant, User
from doorstep.platform.db import utcnow

if TYPE_CHECKING:
    from doorstep.demo import DemoContext

SEED = 20261123  # this seeder's own stream
SCALE_ENV = "DOORSTEP_DEMO_SCALE"
BATCH = 2000
HISTORY_DAYS = 540  # leads arrived over the last ~18 months
PROCESS = rules.SalesProcessRules()
OPEN = PROCESS.open_stages()
AT_OR_PAST_OFFER = ("offer_sent", "negotiation", "contract_signed", "closed_won")
AT_OR_PAST_CONTRACT = ("contract_signed", "closed_won")
SHOWCASE = "agent@doorstep.demo"  # Jayden Metz, the demo's agent login
# Distinct drawn listings per type whose photos the properties share (drawing and encoding
# 900 unique photos would take a minute; 72 take a few seconds).
PHOTO_SCHEMES = {"residential": 18, "commercial": 3, "land": 3}


@dataclass(frozen=True)
class Area:
    city: str
    state: str
    zips: tuple[str, ...]
    area_code: str
    tz: str


BAKERSFIELD = Area(
    "Bakersfield",
    "CA",
    ("93301", "93304", "93305", "93306", "93307", "93308", "93309", "93311", "93312", "93313"),
    "661",
    "America/Los_Angeles",
)
ANNAPOLIS = Area("Annapolis", "MD", ("21401", "21403", "21409"), "410", "America/New_York")


@dataclass(frozen=True)
class TenantPlan:
    slug: str
    area: Area
    leads_per_agent: int
    properties: int
    photos: bool
    clients_per_agent: tuple[int, int]
    appointments_per_day: tuple[float, float]
    broker_leads: int
    special: dict[str, int] = field(default_factory=dict)  # agent e-mail -> lead count


def scale() -> float:
    raw = os.environ.get(SCALE_ENV, "").strip()
    try:
        value = float(raw) if raw else 1.0
    except ValueError:
        value = 1.0
    return min(max(value, 0.005), 1.0)


def plans(factor: float) -> list[TenantPlan]:
    def n(full: int, floor: int) -> int:
        return max(floor, round(full * factor))

    return [
        TenantPlan(
            "riley-realty",
            BAKERSFIELD,
            leads_per_agent=n(1000, 25),
            properties=n(300, 12),
            photos=True,
            clients_per_agent=(16, 26),
            appointments_per_day=(1.2, 2.4),
            broker_leads=87,
            # Jayden's board is the one the demo opens; Cole carries 1,500 for the benchmark.
            special={"agent@doorstep.demo": n(1000, 40), "agent2@doorstep.demo": n(1500, 40)},
        ),
        TenantPlan(
            "harbor-homes",
            ANNAPOLIS,
            leads_per_agent=n(50, 10),
            properties=20,
            photos=False,
            clients_per_agent=(4, 8),
            appointments_per_day=(0.3, 0.6),
            broker_leads=12,
        ),
    ]


FIRST = (
    "Aaron", "Abby", "Adrian", "Aisha", "Alan", "Alicia", "Amir", "Ana", "Andre", "Angela",
    "Ben", "Bianca", "Brandon", "Brianna", "Caleb", "Camila", "Carlos", "Chloe", "Chris",
    "Daisy", "Daniel", "Derek", "Diana", "Eli", "Emily", "Eric", "Erin", "Gabriel", "Gina",
    "Hannah", "Isaac", "Isabel", "Jack", "Jasmine", "Jason", "Jenna", "Jorge", "Julia",
    "Kevin", "Kim", "Laura", "Leo", "Lucia", "Luis", "Marcus", "Maria", "Mike", "Monica",
    "Nathan", "Nicole", "Noah", "Paula", "Rachel", "Ryan", "Sarah", "Sofia", "Steve", "Tina",
    "Tyler", "Vanessa",
)  # fmt: skip
LAST = (
    "Adams", "Aguilar", "Baker", "Bell", "Castillo", "Cruz", "Davis", "Delgado", "Edwards",
    "Evans", "Fischer", "Gomez", "Gonzalez", "Green", "Hall", "Harris", "Hernandez", "Hill",
    "Jackson", "Johnson", "Khan", "King", "Lee", "Lewis", "Martin", "Martinez", "Medina",
    "Miller", "Mitchell", "Moore", "Murphy", "Nelson", "Owens", "Parker", "Perez", "Phillips",
    "Ramirez", "Rivera", "Roberts", "Robinson", "Rodriguez", "Ruiz", "Sanchez", "Scott",
    "Silva", "Smith", "Stewart", "Taylor", "Thomas", "Thompson", "Torres", "Vargas", "Ward",
    "White", "Williams", "Wilson", "Wright", "Yang", "Zamora", "Zhang",
)  # fmt: skip
STREETS = (
    "Oak", "Ming", "Stockdale", "Truxtun", "Brundage", "Panorama", "Calloway", "Rosedale",
    "Olive", "Hageman", "Coffee", "Gosford", "Buena Vista", "Chester", "Niles", "Auburn",
    "White", "Harris", "Taft", "Planz", "Akers", "Fairview", "Columbus", "University",
)  # fmt: skip
SUFFIXES = ("St", "Ave", "Dr", "Rd", "Ln", "Ct", "Way", "Blvd")
SOURCE_WEIGHTS = {
    LeadSource.zillow_paid: 22,
    LeadSource.website: 20,
    LeadSource.referral: 16,
    LeadSource.networking: 9,
    LeadSource.open_house: 11,
    LeadSource.social_media: 12,
    LeadSource.sign_call: 6,
    LeadSource.other: 4,
}
# Stage odds by the lead's age: young leads are still in the funnel, old ones mostly ended.
YOUNG_STAGES = {  # under 30 days
    "lead": 46, "needs_analysis": 27, "offer_sent": 9, "negotiation": 5,
    "contract_signed": 2, "closed_won": 0.5, "closed_lost": 10,
}  # fmt: skip
OLD_STAGES = {
    "lead": 12, "needs_analysis": 10, "offer_sent": 3.5, "negotiation": 2.2,
    "contract_signed": 1.0, "closed_won": 2.6, "closed_lost": 66,
}  # fmt: skip
INTERACTION_KINDS = ("call", "call", "email", "message", "meeting", "note")
SUMMARIES = {
    "call": ("Left a voicemail", "Talked about their must-haves", "Quick check-in call",
             "Discussed financing and pre-approval", "Answered questions on the area"),
    "email": ("Sent matching listings", "Sent the area guide", "Replied to their questions"),
    "message": ("WhatsApp check-in", "Texted showing times", "Shared a new listing"),
    "meeting": ("Coffee meeting", "Showing at two listings", "Needs-analysis meeting"),
    "note": ("Prefers weekend showings", "Relocating for work", "Wants a big back yard"),
}  # fmt: skip
LOST_REASONS = (
    "Went with another agent",
    "Stopped responding",
    "Decided to keep renting",
    "Financing fell through",
    "Moved out of the area",
)
PAUSE_REASONS = ("On vacation until next month", "Parental leave", "Part-time this quarter")
RESIDENTIAL_FEATURES = (
    "pool", "garage", "solar panels", "fireplace", "updated kitchen", "hardwood floors",
    "central air", "covered patio", "rv parking", "fenced yard", "walk-in closet", "view",
)  # fmt: skip
COMMERCIAL_FEATURES = ("parking lot", "loading dock", "corner lot", "signage", "sprinklers")
LAND_FEATURES = ("road frontage", "well", "fenced", "level", "mountain view")
ZONINGS = ("C-1", "C-2", "M-1", "R-1", "R-2", "A", "PUD")


@dataclass
class _LeadPlan:
    row: dict[str, Any]
    touches: list[datetime]
    id: int = 0


def _insert(session: Session, model: Any, rows: Sequence[dict[str, Any]]) -> None:
    # A Core executemany: every row has the same keys, NULLs included. (The ORM's bulk insert
    # leaves None out and groups consecutive rows by their keys: thousands of small batches.)
    stmt = insert(model.__table__)
    for start in range(0, len(rows), BATCH):
        session.execute(stmt, rows[start : start + BATCH])


def _insert_ids(session: Session, model: Any, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert with ids chosen up front. (`insert().returning(sort_by_parameter_order=True)`
    runs row by row on SQLite, and splicing its results is quadratic: a minute for 40,000.)"""
    count = len(rows)
    if session.get_bind().dialect.name == "postgresql":
        table = model.__table__.name
        ids = list(
            session.scalars(
                text(
                    f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) "  # noqa: S608
                    "FROM generate_series(1, :n)"
                ),
                {"n": count},
            )
        )
    else:  # SQLite: the open write transaction holds the database, so max(id) stays ours
        start = (session.scalar(select(func.max(model.id))) or 0) + 1
        ids = list(range(start, start + count))
    _insert(session, model, [{**row, "id": i} for row, i in zip(rows, ids, strict=True)])
    return ids


def _between(rng: random.Random, start: datetime, end: datetime) -> datetime:
    if end <= start:
        return start
    return start + timedelta(seconds=rng.uniform(0, (end - start).total_seconds()))


def _phone(rng: random.Random, area: Area) -> str:
    return f"+1{area.area_code}555{rng.randrange(1000, 9999)}"  # 555: never a real number


def _street(rng: random.Random) -> str:
    return f"{rng.randint(100, 9899)} {rng.choice(STREETS)} {rng.choice(SUFFIXES)}"


def _price(rng: random.Random, mu: float = 12.9, sigma: float = 0.35) -> Decimal:
    return Decimal(round(min(2_500_000, max(120_000, rng.lognormvariate(mu, sigma))), -3))


# --- properties -------------------------------------------------------------------------------


def _attributes(rng: random.Random, kind: PropertyType, this_year: int) -> dict[str, Any]:
    if kind == PropertyType.residential:
        beds = rng.choice((2, 3, 3, 3, 4, 4, 5))
        raw: dict[str, Any] = {
            "bedrooms": beds,
            "bathrooms": rng.choice((1.0, 1.5, 2.0, 2.0, 2.5, 3.0, 3.5))
            if beds > 2
            else rng.choice((1.0, 1.5, 2.0)),
            "living_area_sqft": beds * rng.randint(380, 620),
            "year_built": rng.randint(1948, this_year),
            "lot_size_sqft": rng.randint(4500, 12000),
            "garage_spaces": rng.choice((0, 1, 2, 2, 2, 3)),
        }
    elif kind == PropertyType.commercial:
        raw = {
            "zoning": rng.choice(ZONINGS[:3]),
            "units": rng.choice((1, 1, 2, 4, 6, 12)),
            "building_area_sqft": rng.randint(1800, 42000),
            "cap_rate": round(rng.uniform(4.5, 8.5), 2),
            "year_built": rng.randint(1962, this_year),
        }
    else:
        raw = {
            "acreage": round(rng.uniform(0.25, 40), 2),
            "zoning": rng.choice(("A", "R-1", "PUD")),
            "utilities": rng.sample(["water", "sewer", "electric", "gas", "internet"], 2),
            "road_access": rng.random() < 0.9,
        }
    return rules.attributes_for(kind, raw, this_year=this_year)


def _title(kind: PropertyType, attrs: dict[str, Any], street: str) -> str:
    if kind == PropertyType.residential:
        return f"{attrs['bedrooms']}-bed home on {street.split(' ', 1)[1]}"
    if kind == PropertyType.commercial:
        return f"{attrs['building_area_sqft']:,} sq ft {attrs['zoning']} commercial building"
    return f"{attrs['acreage']:g} acres of {attrs.get('zoning') or 'open'} land"


def _seed_properties(
    session: Session,
    rng: random.Random,
    tenant: Tenant,
    plan: TenantPlan,
    listers: Sequence[User],
    now: datetime,
) -> tuple[list[int], list[str], float]:
    """The tenant's listings (and their photos); returns ids, addresses and photo seconds."""
    rows: list[dict[str, Any]] = []
    features: list[list[str]] = []
    schemes: list[PropertyType] = []
    for _ in range(plan.properties):
        kind = rng.choices(
            (PropertyType.residential, PropertyType.commercial, PropertyType.land), (80, 12, 8)
        )[0]
        attrs = _attributes(rng, kind, now.year)
        status = rng.choices(
            (
                PropertyStatus.active,
                PropertyStatus.deposit_taken,
                PropertyStatus.sold,
                PropertyStatus.withdrawn,
            ),
            (70, 12, 12, 6),
        )[0]
        street = _street(rng)
        pool = {
            PropertyType.residential: RESIDENTIAL_FEATURES,
            PropertyType.commercial: COMMERCIAL_FEATURES,
            PropertyType.land: LAND_FEATURES,
        }[kind]
        tags = rules.normalize_features(rng.sample(pool, rng.randint(1, min(5, len(pool)))))
        price = (
            _price(rng)
            if kind == PropertyType.residential
            else _price(rng, 13.6, 0.6)
            if kind == PropertyType.commercial
            else _price(rng, 11.9, 0.7)
        )
        listed = now - timedelta(days=rng.randint(3, 300), hours=rng.randint(0, 23))
        changed = _between(rng, listed, now) if status != PropertyStatus.active else listed
        rows.append(
            {
                "tenant_id": tenant.id,
                "listing_agent_id": rng.choice(listers).id,
                "property_type": str(kind),
                "status": str(status),
                "title": _title(kind, attrs, street),
                "description": f"{_title(kind, attrs, street)} in {plan.area.city}. "
                + ", ".join(tags).capitalize()
                + ".",
                "address": street,
                "city": plan.area.city,
                "state": plan.area.state,
                "zip_code": rng.choice(plan.area.zips),
                "price": price,
                "attributes": attrs,
                "bedrooms": attrs.get("bedrooms"),
                "bathrooms": attrs.get("bathrooms"),
                "area_sqft": attrs.get("living_area_sqft")
                or attrs.get("building_area_sqft")
                or (round(attrs["acreage"] * 43560) if "acreage" in attrs else None),
                "features": tags,
                "status_reason": "Sellers decided to stay" if status == "withdrawn" else "",
                "status_changed_at": changed,
                "created_at": listed,
                "updated_at": changed,
            }
        )
        features.append(tags)
        schemes.append(kind)
    ids = _insert_ids(session, Property, rows)
    _insert(
        session,
        PropertyFeature,
        [
            {"tenant_id": tenant.id, "property_id": pid, "feature": tag}
            for pid, tags in zip(ids, features, strict=True)
            for tag in tags
        ],
    )
    seconds = 0.0
    if plan.photos:
        seconds = _seed_photos(session, rng, ids, schemes)
    return ids, [r["address"] for r in rows], seconds


def _seed_photos(
    session: Session, rng: random.Random, ids: Sequence[int], kinds: Sequence[PropertyType]
) -> float:
    """Three photos per listing (the front as cover, a closer view, a side view), drawn from a
    pool of `PHOTO_SCHEMES` processed once through the gallery's upload pipeline."""
    started = time.perf_counter()
    by_kind: dict[str, list[demo_photos.Scheme]] = {}
    present = Counter(str(k) for k in kinds)
    for kind, count in PHOTO_SCHEMES.items():
        if present[kind]:
            by_kind[kind] = [
                demo_photos.scheme_for(rng, kind)
                for _ in range(min(count, (present[kind] + 1) // 2))
            ]
    jobs = [
        (kind, i, view)
        for kind, pool in by_kind.items()
        for i in range(len(pool))
        for view in range(3)
    ]

    def render(job: tuple[str, int, int]) -> gallery.ProcessedImage:
        kind, i, view = job
        image = demo_photos.draw_photo(by_kind[kind][i], view)
        return gallery.process_image(demo_photos.as_upload(image))

    # Pillow drops the GIL while it resizes and encodes, so threads use every core.
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        processed = dict(zip(jobs, pool.map(render, jobs), strict=True))
    storage = storage_for(get_settings().media_dir)
    props = {p.id: p for p in session.scalars(select(Property).where(Property.id.in_(ids)))}
    counters = dict.fromkeys(by_kind, 0)
    names = ("front.jpg", "street-view.jpg", "side.jpg")
    for pid, kind in zip(ids, kinds, strict=True):
        index = counters[str(kind)] % len(by_kind[str(kind)])
        counters[str(kind)] += 1
        images = [(names[v], processed[(str(kind), index, v)]) for v in range(3)]
        gallery.add_processed(session, storage, prop=props[pid], images=images)
    return time.perf_counter() - started


# --- leads and what hangs off them ----------------------------------------------------------


def _name(rng: random.Random) -> tuple[str, str]:
    return rng.choice(FIRST), rng.choice(LAST)


def _plan_lead(
    rng: random.Random,
    *,
    tenant: Tenant,
    plan: TenantPlan,
    owner: User | None,
    is_private: bool,
    source: str,
    now: datetime,
    properties: Sequence[int],
    serial: int,
    stage: str | None = None,
) -> _LeadPlan:
    # More leads lately than a year ago: the business grew.
    age_days = HISTORY_DAYS * (1 - rng.random() ** 0.8)
    created = now - timedelta(days=age_days, minutes=rng.randint(0, 1439))
    weights = YOUNG_STAGES if age_days < 30 else OLD_STAGES
    drawn = rng.choices(list(weights), list(weights.values()))[0]
    stage = stage or drawn
    first, last = _name(rng)
    name = f"{first} {last}"
    email: str | None = f"{first}.{last}{serial % 997}@mail.example".lower()
    phone: str | None = _phone(rng, plan.area)
    if stage not in AT_OR_PAST_CONTRACT:
        if rng.random() < 0.15:
            email = None
        if stage not in AT_OR_PAST_OFFER and rng.random() < 0.18:
            phone = None  # no WhatsApp offer possible, so never past Needs Analysis
        if email is None and phone is None:
            email = f"{first}.{last}{serial % 997}@mail.example".lower()
    touches: list[datetime] = []
    if stage in OPEN:
        # How engaged the lead is now: hot ones were touched this week and moved recently.
        mood = rng.choices(
            ("hot", "warm", "cold"), (22, 33, 45) if age_days > 20 else (45, 35, 20)
        )[0]
        window = {"hot": 9.0, "warm": 35.0, "cold": age_days}[mood]
        window = min(window, age_days)
        entered = _between(rng, max(created, now - timedelta(days=window)), now)
        count = {"hot": rng.randint(3, 6), "warm": rng.randint(1, 4), "cold": rng.randint(0, 3)}[
            mood
        ]
        since = created if mood == "cold" else max(created, now - timedelta(days=window))
        touches = sorted(_between(rng, since, now) for _ in range(count))
        closed_at = None
    else:
        entered = min(created + timedelta(days=rng.uniform(3, 120)), now)
        closed_at = entered
        touches = sorted(_between(rng, created, entered) for _ in range(rng.randint(0, 2)))
    heat = rules.lead_heat(touches, stage_entered_at=entered, now=now, is_open=stage in OPEN)
    assigned = created + timedelta(minutes=rng.randint(1, 20)) if owner else None
    responded = None
    if assigned is not None and (stage != "lead" or age_days > 3 or rng.random() < 0.6):
        responded = min(assigned + timedelta(hours=rng.lognormvariate(0.6, 1.1)), now)
    budget = _price(rng) if rng.random() < 0.8 or stage in AT_OR_PAST_CONTRACT else None
    lost_note = rng.choice(LOST_REASONS) if stage == "closed_lost" else ""
    row = {
        "tenant_id": tenant.id,
        "agent_id": owner.id if owner else None,
        "name": name,
        "email": email,
        "phone": phone,
        "source": source,
        "is_private": is_private,
        "stage": stage,
        "stage_entered_at": entered,
        "position": 0,
        "budget": budget,
        "zip_code": rng.choice(plan.area.zips) if rng.random() < 0.85 else None,
        "property_id": rng.choice(properties) if properties and rng.random() < 0.15 else None,
        "heat_score": heat.score,
        "heat": str(heat.heat),
        "interaction_count": len(touches),
        "last_interaction_at": touches[-1] if touches else None,
        "assigned_at": assigned,
        "first_response_at": responded,
        "closed_at": closed_at,
        "notes": lost_note,
        "created_at": created,
        "updated_at": max([entered, *touches]),
    }
    return _LeadPlan(row, touches)


def _tasks(rng: random.Random, lead: _LeadPlan, now: datetime) -> list[dict[str, Any]]:
    row = lead.row
    if row["agent_id"] is None or row["stage"] == "closed_lost":
        return []
    out = []
    for planned in PROCESS.tasks_for(
        row["stage"], lead_name=row["name"], entered_at=row["stage_entered_at"]
    ):
        status, completed, notified = TaskStatus.pending, None, None
        # Draw the same numbers whatever the branch: the stream must not depend on the clock.
        roll, done_at = rng.random(), _between(rng, row["stage_entered_at"], planned.due_at)
        if planned.due_at < now:
            if roll < 0.9:
                status, completed = TaskStatus.done, min(done_at, now)
            else:
                status, notified = TaskStatus.overdue, min(planned.due_at + timedelta(hours=1), now)
        out.append(
            {
                "tenant_id": row["tenant_id"],
                "assignee_id": row["agent_id"],
                "lead_id": lead.id,
                "kind": str(planned.kind),
                "title": planned.title,
                "due_at": planned.due_at,
                "status": str(status),
                "created_for_stage": row["stage"],
                "completed_at": completed,
                "overdue_notified_at": notified,
                "created_at": row["stage_entered_at"],
            }
        )
    return out


def _messages(rng: random.Random, lead: _LeadPlan) -> list[dict[str, Any]]:
    row = lead.row
    out = []
    first = row["name"].split(" ")[0]
    offered = row["stage"] in AT_OR_PAST_OFFER or (
        row["stage"] == "closed_lost" and row["phone"] and rng.random() < 0.15
    )
    if row["phone"] and rng.random() < 0.25:
        at = row["created_at"] + timedelta(minutes=rng.randint(5, 90))
        out.append((at, MessageType.introduction, f"Hi {first}, thanks for reaching out! ..."))
    if offered:
        # Sent before the lead entered Offer Sent (or any later stage).
        at = _between(rng, row["created_at"], row["stage_entered_at"] - timedelta(minutes=5))
        body = f"Hi {first}, here is the offer we discussed. Let me know your thoughts!"
        out.append((at, MessageType.offer_sent, body))
    return [
        {
            "tenant_id": row["tenant_id"],
            "lead_id": lead.id,
            "channel": str(MessageChannel.whatsapp),
            "message_type": str(kind),
            "body": body,
            "to_address": row["phone"],
            "status": str(MessageStatus.sent),
            "provider_id": f"wamid.demo{lead.id}{n}",
            "sent_by": row["agent_id"],
            "created_at": at,
            "sent_at": at,
        }
        for n, (at, kind, body) in enumerate(out)
    ]


def _interactions(rng: random.Random, lead: _LeadPlan) -> list[dict[str, Any]]:
    out = []
    for at in lead.touches:
        kind = rng.choice(INTERACTION_KINDS)
        out.append(
            {
                "tenant_id": lead.row["tenant_id"],
                "lead_id": lead.id,
                "user_id": lead.row["agent_id"],
                "kind": kind,
                "summary": rng.choice(SUMMARIES[kind]),
                "created_at": at,
            }
        )
    return out


def _assignment(
    rng: random.Random, lead: _LeadPlan, agents: Sequence[User], names: dict[int, str]
) -> dict[str, Any]:
    """The log row of a website lead routed by workload: the chosen agent scored lowest."""
    row = lead.row
    others = rng.sample([a for a in agents if a.id != row["agent_id"]], min(3, len(agents) - 1))
    chosen_active = rng.randint(150, 400)
    candidates = []
    for i, agent_id in enumerate([row["agent_id"], *(a.id for a in others)]):
        active = chosen_active + i * rng.randint(3, 25)
        pending, overdue, success = rng.randint(20, 80), rng.randint(0, 12), rng.uniform(0.3, 0.6)
        workload = rules.workload_score(active, pending, overdue)
        candidates.append(
            {
                "agent_id": agent_id,
                "name": names[agent_id],
                "active_leads": active,
                "pending_tasks": pending,
                "overdue_tasks": overdue,
                "workload": workload,
                "success_rate": round(success, 3),
                "score": round(workload / (0.5 + success), 2),
            }
        )
    candidates.sort(key=lambda c: c["score"])
    if candidates[0]["agent_id"] != row["agent_id"]:  # keep the chosen one the best
        mine = next(c for c in candidates if c["agent_id"] == row["agent_id"])
        mine["score"] = round(candidates[0]["score"] - 0.5, 2)
        candidates.sort(key=lambda c: c["score"])
    best = candidates[0]
    reason = (
        f"lowest workload score {best['score']:.1f} (workload {best['workload']}: "
        f"{best['active_leads']} active leads, {best['pending_tasks']} pending and "
        f"{best['overdue_tasks']} overdue tasks; success rate {best['success_rate']:.0%}) "
        f"among {len(agents)} available agents"
    )
    return {
        "tenant_id": row["tenant_id"],
        "lead_id": lead.id,
        "agent_id": row["agent_id"],
        "strategy": "workload",
        "reason": reason[:500],
        "candidates": candidates,
        "decided_by": None,
        "created_at": row["assigned_at"],
    }


def _positions(leads: Sequence[_LeadPlan]) -> None:
    """Kanban order: newest arrival in the stage first, per owner and stage."""
    columns: dict[tuple[Any, str], list[_LeadPlan]] = {}
    for lead in leads:
        columns.setdefault((lead.row["agent_id"], lead.row["stage"]), []).append(lead)
    for column in columns.values():
        column.sort(key=lambda lead: lead.row["stage_entered_at"], reverse=True)
        for position, lead in enumerate(column):
            lead.row["position"] = position


# --- clients and appointments -----------------------------------------------------------------


def _local(area: Area, day: datetime, hour: float) -> datetime:
    tz = ZoneInfo(area.tz)
    local = day.astimezone(tz).replace(hour=int(hour), minute=int(hour % 1 * 60), second=0)
    return local.replace(microsecond=0).astimezone(ZoneInfo("UTC"))


def _appointments(
    rng: random.Random,
    *,
    tenant: Tenant,
    area: Area,
    owner: User,
    per_day: float,
    show_rate: float,
    leads: Sequence[_LeadPlan],
    clients: Sequence[tuple[int, str]],
    addresses: Sequence[str],
    now: datetime,
    this_week: int | None = None,
) -> list[dict[str, Any]]:
    """The last 90 days and the next 14, or (`this_week`) that many in the current week."""
    slots: list[datetime] = []
    week: set[datetime] = set()  # never cancelled: the broker's dashboard counts all twelve
    if this_week is None:
        for offset in range(-90, 15):
            day = now + timedelta(days=offset)
            for _ in range(_poisson(rng, per_day)):
                slots.append(_local(area, day, rng.choice((9, 10, 11, 13, 14, 15, 16, 17.5))))
    else:
        monday = now.astimezone(ZoneInfo(area.tz)) - timedelta(
            days=now.astimezone(ZoneInfo(area.tz)).weekday()
        )
        for n in range(this_week):
            day = monday + timedelta(days=n % 6)
            slots.append(_local(area, day, (10, 14, 16, 11)[n % 4]))
            week.add(slots[-1])
        for offset in range(-90, -7):  # and a history before it
            if rng.random() < per_day:
                slots.append(_local(area, now + timedelta(days=offset), rng.choice((10, 14))))
    open_leads = [lead for lead in leads if lead.row["stage"] in OPEN]
    rows = []
    for start in sorted(slots):
        lead = rng.choice(open_leads) if open_leads and rng.random() < 0.7 else None
        client = rng.choice(clients) if lead is None and clients else None
        who = lead.row["name"] if lead else client[1] if client else "a walk-in buyer"
        kind = rng.choices(("showing", "consultation", "listing"), (60, 30, 10))[0]
        address = (
            f"{rng.choice(addresses) if addresses else _street(rng)}, {area.city} {area.state}"
        )
        title = {
            "showing": f"Showing at {address.split(',', maxsplit=1)[0]} with {who}",
            "consultation": f"Buyer consultation with {who}",
            "listing": f"Listing presentation for {who}",
        }[kind]
        cancelled = rng.random() < 0.05  # drawn whatever the branch (see _tasks)
        if start > now:
            status = AppointmentStatus.scheduled
        elif start not in week and cancelled:
            status = AppointmentStatus.cancelled
        else:
            status = AppointmentStatus.completed  # the show rate is applied below
        rows.append(
            {
                "tenant_id": tenant.id,
                "agent_id": owner.id,
                "lead_id": lead.id if lead else None,
                "client_id": client[0] if client else None,
                "title": title[:200],
                "start_time": start,
                "end_time": start + timedelta(minutes=rng.choice((30, 45, 60, 60, 90))),
                "location": address if kind != "consultation" else "the office",
                "status": str(status),
                "is_private": True,
                "outcome": {
                    AppointmentStatus.completed: rng.choice(
                        ("Went well", "Wants a second look", "")
                    ),
                    AppointmentStatus.no_show: "Did not show up",
                    AppointmentStatus.cancelled: "Cancelled by the client",
                }.get(status, ""),
                "created_at": start - timedelta(days=rng.randint(1, 10)),
                "updated_at": min(start + timedelta(hours=2), now)
                if start < now
                else start - timedelta(days=1),
            }
        )
    # The show rate exactly, over the appointments that took place or should have.
    held = [row for row in rows if row["status"] == AppointmentStatus.completed]
    picker = random.Random(rng.random())  # how many are held depends on the time of day
    for row in picker.sample(held, len(held) - round(show_rate * len(held))):
        row["status"], row["outcome"] = str(AppointmentStatus.no_show), "Did not show up"
    return rows


def _poisson(rng: random.Random, mean: float) -> int:
    count, total = 0, rng.expovariate(1.0)
    while total < mean:
        count += 1
        total += rng.expovariate(1.0)
    return count


# --- the seeder -------------------------------------------------------------------------------


@dataclass
class SeedReport:
    tenant: str
    leads: int = 0
    photos_seconds: float = 0.0
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)


def seed_demo(ctx: DemoContext) -> None:
    """Each tenant's CRM data, once: a tenant that has leads is left as it is."""
    started = time.perf_counter()
    reports = []
    for plan in plans(scale()):
        report = seed_tenant(ctx.session, plan)
        if report is not None:
            reports.append(report)
    if reports:
        summary = "; ".join(
            f"{r.tenant}: {r.leads:,} leads in {r.seconds:.1f} s (photos {r.photos_seconds:.1f} s)"
            for r in reports
        )
        elapsed = time.perf_counter() - started
        print(f"crm demo data in {elapsed:.1f} s ({summary})", file=sys.stderr)


def seed_tenant(
    session: Session, plan: TenantPlan, now: datetime | None = None
) -> SeedReport | None:
    started = time.perf_counter()
    tenant = session.scalar(select(Tenant).where(Tenant.slug == plan.slug))
    if tenant is None:
        return None
    if session.scalar(select(func.count()).select_from(Lead).where(Lead.tenant_id == tenant.id)):
        return None
    now = now or utcnow()
    rng = random.Random(f"{SEED}-{plan.slug}")
    users = list(session.scalars(select(User).where(User.tenant_id == tenant.id).order_by(User.id)))
    agents = [u for u in users if u.role == Role.agent]
    brokers = [u for u in users if u.role == Role.broker]
    if not agents:
        return None
    broker = brokers[0] if brokers else None
    names = {u.id: u.full_name for u in users}
    report = SeedReport(plan.slug)

    property_ids, addresses, report.photos_seconds = _seed_properties(
        session, rng, tenant, plan, [*agents, *brokers], now
    )
    sources, source_weights = list(SOURCE_WEIGHTS), list(SOURCE_WEIGHTS.values())
    leads: list[_LeadPlan] = []
    by_owner: dict[int, list[_LeadPlan]] = {}
    serial = 0
    owners: list[tuple[User, int, bool, list[str] | None]] = []
    for agent in agents:
        count = plan.special.get(agent.email) or round(
            plan.leads_per_agent * rng.uniform(0.85, 1.15)
        )
        owners.append((agent, count, False, None))
    if broker is not None:
        # Seed 004: Josh's own, private pipeline; 12 from Zillow ads, 5 referrals, 3 networking.
        fixed = ["zillow_paid"] * 12 + ["referral"] * 5 + ["networking"] * 3
        rest = ["website", "open_house", "sign_call", "social_media", "other"]
        broker_sources = fixed + [
            rest[i % len(rest)] for i in range(plan.broker_leads - len(fixed))
        ]
        broker_sources = broker_sources[: plan.broker_leads]
        owners.append((broker, len(broker_sources), True, broker_sources))
    for owner, count, private, fixed_sources in owners:
        for i in range(count):
            serial += 1
            source = fixed_sources[i] if fixed_sources else rng.choices(sources, source_weights)[0]
            # The demo agent's board shows a few cards in every column, whatever the scale.
            forced = None
            if owner.email == SHOWCASE and i < 3 * len(PROCESS.stages):
                forced = PROCESS.stages[i % len(PROCESS.stages)].name
            lead = _plan_lead(
                rng,
                tenant=tenant,
                plan=plan,
                owner=owner,
                is_private=private,
                source=source,
                now=now,
                properties=property_ids,
                serial=serial,
                stage=forced,
            )
            leads.append(lead)
            by_owner.setdefault(owner.id, []).append(lead)
    leads.sort(key=lambda lead: lead.row["created_at"])
    _positions(leads)
    for lead, lead_id in zip(
        leads, _insert_ids(session, Lead, [lead.row for lead in leads]), strict=True
    ):
        lead.id = lead_id
    report.leads = len(leads)

    interactions, messages, tasks, assignments = [], [], [], []
    for lead in leads:
        interactions.extend(_interactions(rng, lead))
        messages.extend(_messages(rng, lead))
        tasks.extend(_tasks(rng, lead, now))
        if lead.row["source"] == LeadSource.website and not lead.row["is_private"]:
            assignments.append(_assignment(rng, lead, agents, names))
    _insert(session, LeadInteraction, interactions)
    _insert(session, LeadMessage, messages)
    _insert(session, Task, tasks)
    _insert(session, LeadAssignment, assignments)

    # Clients: the agent's portal users, the leads they won, and people from before the CRM.
    client_users: dict[int, list[User]] = {}
    for user in users:
        if user.role == Role.client and user.agent_id is not None:
            client_users.setdefault(user.agent_id, []).append(user)
    client_rows: list[dict[str, Any]] = []
    client_owner: list[int] = []
    pipeline_owners = [*agents, *([broker] if broker else [])]
    for owner in pipeline_owners:
        # Seed 004: the broker has "Clients: 8 active".
        target = 10 if owner.role == Role.broker else rng.randint(*plan.clients_per_agent)
        made: list[dict[str, Any]] = []
        for user in client_users.get(owner.id, []):
            made.append({"name": user.full_name, "email": user.email, "phone": user.phone,
                         "source": "referral", "lead_id": None, "user_id": user.id})  # fmt: skip
        won = [lead for lead in by_owner.get(owner.id, []) if lead.row["stage"] == "closed_won"]
        for lead in won[: max(0, target - len(made)) // 2 + 1]:
            made.append({"name": lead.row["name"], "email": lead.row["email"],
                         "phone": lead.row["phone"], "source": lead.row["source"],
                         "lead_id": lead.id, "user_id": None})  # fmt: skip
        while len(made) < target:
            first, last = _name(rng)
            made.append({"name": f"{first} {last}",
                         "email": f"{first}.{last}@mail.example".lower(),
                         "phone": _phone(rng, plan.area), "source": "referral",
                         "lead_id": None, "user_id": None})  # fmt: skip
        for n, item in enumerate(made):
            active = n < 8 if owner.role == Role.broker else rng.random() < 0.88
            since = now - timedelta(days=rng.randint(10, 700))
            client_rows.append(
                {
                    "tenant_id": tenant.id,
                    "agent_id": owner.id,
                    **item,
                    "status": str(ClientStatus.active if active else ClientStatus.inactive),
                    "notes": "",
                    "created_at": since,
                    "updated_at": since,
                }
            )
            client_owner.append(owner.id)
    client_ids = _insert_ids(session, Client, client_rows)
    clients_of: dict[int, list[tuple[int, str]]] = {}
    for owner_id, client_id, row in zip(client_owner, client_ids, client_rows, strict=True):
        clients_of.setdefault(owner_id, []).append((client_id, row["name"]))

    appointments: list[dict[str, Any]] = []
    for owner in pipeline_owners:
        is_broker = owner.role == Role.broker
        show_rate = 0.73 if owner.email == "agent@doorstep.demo" else rng.uniform(0.7, 0.84)
        appointments.extend(
            _appointments(
                rng,
                tenant=tenant,
                area=plan.area,
                owner=owner,
                per_day=0.4 if is_broker else rng.uniform(*plan.appointments_per_day),
                show_rate=show_rate,
                leads=by_owner.get(owner.id, []),
                clients=clients_of.get(owner.id, []),
                addresses=addresses,
                now=now,
                this_week=12 if is_broker else None,
            )
        )
    _insert(session, Appointment, appointments)

    # A few agents are away; the assignment passes them over. Never the named demo agents.
    named = {"agent@doorstep.demo", "agent2@doorstep.demo"}
    away = [a for a in agents if a.email not in named]
    paused = rng.sample(away, min(len(away), 3 if len(agents) > 10 else 1))
    _insert(
        session,
        AgentProfile,
        [
            {
                "tenant_id": tenant.id,
                "user_id": a.id,
                "paused": a in paused,
                "paused_reason": rng.choice(PAUSE_REASONS) if a in paused else "",
            }
            for a in agents
        ],
    )
    session.flush()
    tallies.rebuild(session, tenant_id=tenant.id)  # the leads went in without the ORM
    if session.get_bind().dialect.name == "postgresql":
        # Fresh statistics, so the first queries plan for 40,000 leads rather than for none
        # (ANALYZE counts this transaction's own rows; autovacuum would take a while).
        for table in ("leads", "lead_stage_counts", "lead_interactions", "lead_messages",
                      "crm_tasks", "clients", "appointments", "properties"):  # fmt: skip
            session.execute(text(f"ANALYZE {table}"))
    report.counts = {
        "properties": len(property_ids),
        "leads": len(leads),
        "interactions": len(interactions),
        "messages": len(messages),
        "tasks": len(tasks),
        "assignments": len(assignments),
        "clients": len(client_rows),
        "appointments": len(appointments),
    }
    report.seconds = time.perf_counter() - started
    return report
