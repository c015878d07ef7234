"""The CRM's rules, tested directly: the stage machine and its prerequisites, task templates,
the heat formula, the workload score, each assignment strategy, property attributes and the
listing status workflow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest
from pydantic import ValidationError

from doorstep.crm import rules
from doorstep.crm.models import AssignmentStrategy, Heat, PropertyStatus, PropertyType, TaskKind
from doorstep.crm.rules import (
    AgentLoad,
    AssignmentConfig,
    LeadFacts,
    LeadTraits,
    RoutingRule,
    SalesProcessDefinition,
    SalesProcessRules,
)

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
PROCESS = SalesProcessRules()
FLOW = ["lead", "needs_analysis", "offer_sent", "negotiation", "contract_signed", "closed_won"]
COMPLETE = LeadFacts(stage="lead", phone="+15551234567", email="a@b.test", whatsapp_offer_sent=True)


def facts(stage: str, **changes: object) -> LeadFacts:
    return LeadFacts(**{**COMPLETE.__dict__, "stage": stage, **changes})  # type: ignore[arg-type]


# --- the stage machine --------------------------------------------------------------------------


def test_default_process_is_the_seeds_flow() -> None:
    assert [s.name for s in PROCESS.stages] == [*FLOW, "closed_lost"]
    assert PROCESS.initial.name == "lead"


@pytest.mark.parametrize(("source", "target"), list(pairwise(FLOW)))
def test_each_forward_step_is_allowed(source: str, target: str) -> None:
    check = PROCESS.validate_stage_transition(facts(source), target)
    assert check.is_valid, check.errors


@pytest.mark.parametrize("source", FLOW[:-1])
def test_closed_lost_is_reachable_from_every_open_stage(source: str) -> None:
    assert PROCESS.validate_stage_transition(facts(source), "closed_lost").is_valid


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("lead", "negotiation"),
        ("lead", "closed_won"),
        ("needs_analysis", "contract_signed"),
        ("closed_won", "lead"),
        ("closed_won", "closed_lost"),
        ("contract_signed", "negotiation"),
    ],
)
def test_skipping_or_leaving_a_closed_stage_is_refused(source: str, target: str) -> None:
    check = PROCESS.validate_stage_transition(facts(source), target)
    assert not check.is_valid
    assert any(e.startswith("Invalid transition") for e in check.errors)


def test_a_lost_lead_can_be_reopened() -> None:
    assert PROCESS.validate_stage_transition(facts("closed_lost"), "lead").is_valid


def test_offer_sent_needs_a_whatsapp_offer() -> None:
    check = PROCESS.validate_stage_transition(
        facts("needs_analysis", whatsapp_offer_sent=False), "offer_sent"
    )
    assert check.errors == ["Offer must be sent via WhatsApp before moving to this stage."]


def test_contract_signed_needs_phone_and_email() -> None:
    check = PROCESS.validate_stage_transition(
        facts("negotiation", phone=None, email=None), "contract_signed"
    )
    assert check.errors == [
        "Contact details are required for the Contract Signed stage: phone and email missing."
    ]
    only_email = PROCESS.validate_stage_transition(
        facts("negotiation", email=""), "contract_signed"
    )
    assert only_email.errors == [
        "Contact details are required for the Contract Signed stage: email missing."
    ]


def test_every_error_is_returned_at_once() -> None:
    check = PROCESS.validate_stage_transition(
        facts("lead", whatsapp_offer_sent=False), "offer_sent"
    )
    assert not check.is_valid
    assert len(check.errors) == 2
    assert check.errors[0].startswith("Invalid transition from Lead to Offer Sent.")
    assert "Needs Analysis" in check.errors[0]  # says where the lead can go
    assert check.errors[1].startswith("Offer must be sent via WhatsApp")


def test_unknown_and_same_stage() -> None:
    unknown = PROCESS.validate_stage_transition(facts("lead"), "won")
    assert not unknown.is_valid
    assert "Unknown stage 'won'" in unknown.errors[0]
    same = PROCESS.validate_stage_transition(facts("lead"), "lead")
    assert same.errors == ["The lead is already in Lead."]


def test_task_templates_are_due_relative_to_entry() -> None:
    planned = PROCESS.tasks_for("lead", lead_name="Ana Ruiz", entered_at=NOW)
    assert [(t.kind, t.title, t.due_at) for t in planned] == [
        (TaskKind.call, "First call to Ana Ruiz", NOW + timedelta(hours=1)),
        (TaskKind.email, "Send Ana Ruiz a welcome e-mail", NOW + timedelta(hours=24)),
    ]
    for stage in PROCESS.stages:
        assert PROCESS.tasks_for(stage.name, lead_name="X", entered_at=NOW), stage.name
    assert PROCESS.tasks_for("nope", lead_name="X", entered_at=NOW) == []


def test_a_tenant_process_is_data_and_is_validated() -> None:
    custom = SalesProcessDefinition.model_validate(
        {
            "stages": [
                {"name": "new", "label": "New", "next": ["won"]},
                {
                    "name": "won",
                    "label": "Won",
                    "kind": "won",
                    "prerequisites": ["budget_known"],
                    "tasks": [{"kind": "call", "title": "Thank {name}", "due_in_hours": 2}],
                },
                {"name": "lost", "label": "Lost", "kind": "lost"},
            ]
        }
    )
    process = SalesProcessRules(custom)
    assert process.validate_stage_transition(LeadFacts(stage="new"), "won").errors == [
        "The lead's budget is required for Won."
    ]
    assert process.validate_stage_transition(
        LeadFacts(stage="new", budget=Decimal(1)), "won"
    ).is_valid
    assert process.validate_stage_transition(LeadFacts(stage="new"), "lost").is_valid

    bad = [
        {"stages": [{"name": "a", "label": "A"}, {"name": "a", "label": "B", "kind": "won"}]},
        {"stages": [{"name": "a", "label": "A", "next": ["zz"]}, {"name": "w", "label": "W"}]},
        {"stages": [{"name": "a", "label": "A"}, {"name": "w", "label": "W", "kind": "won"}]},
        {
            "stages": [
                {"name": "w", "label": "W", "kind": "won"},
                {"name": "l", "label": "L", "kind": "lost"},
            ]
        },
        {"stages": [{"name": "Bad Name", "label": "A"}]},
    ]
    for definition in bad:
        with pytest.raises(ValidationError):
            SalesProcessDefinition.model_validate(definition)


# --- lead heat -------------------------------------------------------------------------------


def heat(
    touch_days_ago: list[float], days_in_stage: float, is_open: bool = True
) -> rules.HeatScore:
    return rules.lead_heat(
        [NOW - timedelta(days=d) for d in touch_days_ago],
        stage_entered_at=NOW - timedelta(days=days_in_stage),
        now=NOW,
        is_open=is_open,
    )


def test_heat_formula_by_hand() -> None:
    # 4 touches today: engagement 1; just entered the stage: freshness 1.
    assert heat([0, 0, 0, 0], 0) == rules.HeatScore(100.0, Heat.hot, 1.0, 1.0)
    # 2 touches, one today (1) and one a week ago (0.5): engagement 1.5/4 = 0.375;
    # 14 days in stage: freshness 0.5. Score = 100 x (0.7 x 0.375 + 0.3 x 0.5) = 41.25.
    assert heat([0, 7], 14).score == 41.2
    assert heat([0, 7], 14).heat == Heat.warm
    # Nothing for 30+ days and a month in stage: cold.
    cold = heat([31, 40], 30)
    assert cold.engagement == 0
    assert cold.heat == Heat.cold
    assert cold.score == round(100 * 0.3 * 0.5 ** (30 / 14), 1)


def test_heat_thresholds_and_monotonicity() -> None:
    assert rules.heat_level(60) == Heat.hot
    assert rules.heat_level(59.9) == Heat.warm
    assert rules.heat_level(30) == Heat.warm
    assert rules.heat_level(29.9) == Heat.cold
    more_touches = [heat([0] * n, 3).score for n in range(6)]
    assert more_touches == sorted(more_touches)
    older = [heat([d], 3).score for d in (0, 3, 10, 20, 29)]
    assert older == sorted(older, reverse=True)
    staler = [heat([1], d).score for d in (0, 5, 20, 60)]
    assert staler == sorted(staler, reverse=True)


def test_closed_leads_are_cold() -> None:
    assert heat([0, 0, 0, 0], 0, is_open=False) == rules.HeatScore(0.0, Heat.cold, 0.0, 0.0)


# --- workload and assignment ------------------------------------------------------------------


def test_workload_score_is_the_seeds_formula() -> None:
    assert rules.workload_score(10, 4, 2) == 10 * 2 + 4 * 1 + 2 * 3
    load = AgentLoad(1, "A", active_leads=10, pending_tasks=4, overdue_tasks=2, won=8, lost=2)
    assert load.workload == 30
    assert load.success_rate == pytest.approx(9 / 12)
    assert load.adjusted == pytest.approx(30 / (0.5 + 9 / 12))


def test_success_rate_lets_a_closer_carry_more() -> None:
    closer = AgentLoad(1, "Closer", active_leads=12, won=18, lost=2)  # 24 / (0.5 + 19/22)
    novice = AgentLoad(2, "Novice", active_leads=10)  # 20 / (0.5 + 0.5) = 20
    assert closer.workload > novice.workload
    assert rules.best_by_workload([novice, closer]).agent_id == 1


def test_ties_go_to_fewer_active_leads_then_lower_id() -> None:
    a = AgentLoad(5, "A", active_leads=2, pending_tasks=0)
    b = AgentLoad(3, "B", active_leads=1, pending_tasks=2)
    assert a.workload == b.workload == 4
    assert rules.best_by_workload([a, b]).agent_id == 3
    c = AgentLoad(4, "C", active_leads=1, pending_tasks=2)
    assert rules.best_by_workload([a, c, b]).agent_id == 3


LOADS = [
    AgentLoad(1, "Ana", active_leads=10),
    AgentLoad(2, "Ben", active_leads=3),
    AgentLoad(3, "Cy", active_leads=6, overdue_tasks=1),
]


def test_workload_strategy_picks_the_least_loaded_and_says_why() -> None:
    decision = rules.decide_assignment(LeadTraits("website"), LOADS, AssignmentConfig())
    assert decision.agent_id == 2
    assert decision.strategy == AssignmentStrategy.workload
    assert "lowest workload score 6.0" in decision.reason
    assert [c["agent_id"] for c in decision.candidates] == [2, 3, 1]


def test_round_robin_cycles_through_available_agents() -> None:
    config = AssignmentConfig(chain=[AssignmentStrategy.round_robin])
    picks, last = [], None
    for _ in range(4):
        decision = rules.decide_assignment(
            LeadTraits("website"), LOADS, config, last_round_robin_agent_id=last
        )
        picks.append(decision.agent_id)
        last = decision.agent_id
    assert picks == [1, 2, 3, 1]
    paused_two = [a for a in LOADS if a.agent_id != 2]
    after_one = rules.decide_assignment(
        LeadTraits("website"), paused_two, config, last_round_robin_agent_id=1
    )
    assert after_one.agent_id == 3


def rule(**fields: object) -> RoutingRule:
    return RoutingRule.model_validate({"name": "r", "agent_ids": [1, 3], **fields})


@pytest.mark.parametrize(
    ("lead", "matches"),
    [
        (LeadTraits("zillow_paid", Decimal(500_000), "93301"), True),
        (LeadTraits("referral", Decimal(500_000), "93301"), False),  # source
        (LeadTraits("zillow_paid", Decimal(200_000), "93301"), False),  # below the range
        (LeadTraits("zillow_paid", Decimal(900_000), "93301"), False),  # above the range
        (LeadTraits("zillow_paid", None, "93301"), False),  # no budget, price rule
        (LeadTraits("zillow_paid", Decimal(500_000), "90210"), False),  # ZIP
        (LeadTraits("zillow_paid", Decimal(500_000), None), False),
    ],
)
def test_routing_rule_conditions(lead: LeadTraits, matches: bool) -> None:
    r = rule(sources=["zillow_paid"], min_price=300_000, max_price=800_000, zip_prefixes=["933"])
    assert r.matches(lead) is matches


def test_rules_strategy_routes_to_the_rules_least_loaded_agent() -> None:
    config = AssignmentConfig(
        chain=[AssignmentStrategy.rules, AssignmentStrategy.workload],
        rules=[rule(name="Bakersfield", zip_prefixes=["933"])],
    )
    routed = rules.decide_assignment(LeadTraits("website", zip_code="93301"), LOADS, config)
    assert routed.agent_id == 3  # agents 1 and 3; 3 is less loaded
    assert routed.strategy == AssignmentStrategy.rules
    assert "rule 'Bakersfield' matched" in routed.reason


def test_the_fallback_chain_explains_each_step() -> None:
    config = AssignmentConfig(
        chain=[AssignmentStrategy.rules, AssignmentStrategy.workload],
        rules=[rule(name="Luxury", min_price=1_000_000, agent_ids=[1])],
    )
    fallback = rules.decide_assignment(LeadTraits("website", Decimal(300_000)), LOADS, config)
    assert fallback.agent_id == 2
    assert fallback.strategy == AssignmentStrategy.workload
    assert fallback.reason.startswith("rules: no routing rule matched; lowest workload score")

    # The rule matches but its only agent is paused: on to the next strategy.
    without_ana = [a for a in LOADS if a.agent_id != 1]
    paused = rules.decide_assignment(LeadTraits("website", Decimal(2_000_000)), without_ana, config)
    assert paused.agent_id == 2
    assert "none of its agents is available" in paused.reason


def test_nobody_available_leaves_the_lead_unassigned() -> None:
    decision = rules.decide_assignment(LeadTraits("website"), [], AssignmentConfig())
    assert decision.agent_id is None
    assert "no agent is available" in decision.reason
    only_rules = AssignmentConfig(chain=[AssignmentStrategy.rules])
    unmatched = rules.decide_assignment(LeadTraits("website"), LOADS, only_rules)
    assert unmatched.agent_id is None
    assert unmatched.reason == "rules: no routing rule matched"


def test_assignment_config_validation() -> None:
    with pytest.raises(ValidationError, match="once"):
        AssignmentConfig(chain=[AssignmentStrategy.workload, AssignmentStrategy.workload])
    with pytest.raises(ValidationError):
        AssignmentConfig(chain=[])
    with pytest.raises(ValidationError, match="min_price"):
        rule(min_price=10, max_price=5)
    with pytest.raises(ValidationError):
        rule(agent_ids=[])
    with pytest.raises(ValidationError):
        rule(zip_prefixes=["ABC"])


# --- properties ------------------------------------------------------------------------------


def test_each_type_validates_its_own_attributes() -> None:
    home = rules.attributes_for(
        PropertyType.residential,
        {"bedrooms": 3, "bathrooms": 2.5, "living_area_sqft": 1850, "year_built": 1998},
        this_year=2026,
    )
    assert home == {"bedrooms": 3, "bathrooms": 2.5, "living_area_sqft": 1850, "year_built": 1998}
    shop = rules.attributes_for(
        PropertyType.commercial,
        {"zoning": "C-2", "units": 4, "building_area_sqft": 6000, "cap_rate": 6.5},
        this_year=2026,
    )
    assert shop["cap_rate"] == 6.5
    lot = rules.attributes_for(
        PropertyType.land, {"acreage": 2.5, "utilities": ["water", "electric"]}, this_year=2026
    )
    assert lot == {"acreage": 2.5, "utilities": ["water", "electric"], "road_access": True}


@pytest.mark.parametrize(
    ("kind", "attributes", "message"),
    [
        (PropertyType.residential, {"bathrooms": 2, "living_area_sqft": 900}, "bedrooms"),
        (
            PropertyType.residential,
            {"bedrooms": 2, "bathrooms": 1.3, "living_area_sqft": 900},
            "bathrooms",
        ),
        (
            PropertyType.residential,
            {"bedrooms": 2, "bathrooms": 1, "living_area_sqft": 900, "zoning": "R1"},
            "zoning",
        ),
        (
            PropertyType.commercial,
            {"zoning": "C-2", "units": 0, "building_area_sqft": 900},
            "units",
        ),
        (PropertyType.land, {"acreage": 0}, "acreage"),
        (PropertyType.land, {"acreage": 1, "utilities": ["fiber"]}, "utilities"),
    ],
)
def test_wrong_attributes_are_refused_with_the_field(
    kind: PropertyType, attributes: dict[str, object], message: str
) -> None:
    with pytest.raises(rules.RuleError) as refused:
        rules.attributes_for(kind, attributes, this_year=2026)
    assert refused.value.status == 422
    assert any(message in e for e in refused.value.errors), refused.value.errors


def test_year_built_cannot_be_far_in_the_future() -> None:
    attrs = {"bedrooms": 2, "bathrooms": 1, "living_area_sqft": 900, "year_built": 2040}
    with pytest.raises(rules.RuleError, match="future"):
        rules.attributes_for(PropertyType.residential, attrs, this_year=2026)


def test_features_are_normalized_and_checked() -> None:
    assert rules.normalize_features([" Pool ", "pool", "Two  Car Garage"]) == [
        "pool",
        "two car garage",
    ]
    with pytest.raises(rules.RuleError):
        rules.normalize_features(["<script>"])


ALLOWED = {
    (PropertyStatus.active, PropertyStatus.deposit_taken),
    (PropertyStatus.active, PropertyStatus.withdrawn),
    (PropertyStatus.deposit_taken, PropertyStatus.sold),
    (PropertyStatus.deposit_taken, PropertyStatus.active),
    (PropertyStatus.deposit_taken, PropertyStatus.withdrawn),
    (PropertyStatus.withdrawn, PropertyStatus.active),
}


@pytest.mark.parametrize("source", list(PropertyStatus))
@pytest.mark.parametrize("target", list(PropertyStatus))
def test_listing_status_workflow(source: PropertyStatus, target: PropertyStatus) -> None:
    reason = "seller changed plans"
    if (source, target) in ALLOWED:
        rules.check_property_transition(source, target, reason)
    else:
        with pytest.raises(rules.RuleError) as refused:
            rules.check_property_transition(source, target, reason)
        assert refused.value.status == 409


def test_withdrawing_or_a_failed_deposit_needs_a_reason() -> None:
    with pytest.raises(rules.RuleError, match="reason is required"):
        rules.check_property_transition(PropertyStatus.active, PropertyStatus.withdrawn, "  ")
    with pytest.raises(rules.RuleError, match="reason is required"):
        rules.check_property_transition(PropertyStatus.deposit_taken, PropertyStatus.active, None)
    rules.check_property_transition(PropertyStatus.active, PropertyStatus.deposit_taken, None)
    with pytest.raises(rules.RuleError, match="sold listing is final"):
        rules.check_property_transition(PropertyStatus.sold, PropertyStatus.active, "relist")


def test_a_listing_search_is_checked_in_one_place() -> None:
    assert rules.property_search(Decimal(1), Decimal(2), ["Pool, garage", "pool"]) == [
        "pool",
        "garage",
    ]
    with pytest.raises(rules.RuleError) as refused:
        rules.property_search(Decimal(5), Decimal(1), ["<bad>"])
    assert refused.value.status == 422
    assert refused.value.errors[0] == "The minimum price is above the maximum price."
    assert len(refused.value.errors) == 2
