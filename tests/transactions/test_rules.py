"""The rules of seed 000, tested directly: plans, transitions, progress, health, the delay
baseline, celebration triggers and variants."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from doorstep.transactions import rules
from doorstep.transactions.rules import MilestoneState, RuleError, TransactionFacts

CONTRACT = date(2026, 1, 2)
CLOSING = date(2026, 2, 15)


def plan_states(
    statuses: dict[str, str], loan_type: str = "conventional"
) -> tuple[MilestoneState, ...]:
    steps = rules.default_plan(loan_type)
    targets = rules.target_dates(steps, CONTRACT, CLOSING)
    return tuple(
        MilestoneState(
            milestone_type=s.milestone_type,
            name=s.name,
            status=statuses.get(s.milestone_type, "pending"),
            order_sequence=s.order_sequence,
            weight=s.weight,
            target_date=targets[s.milestone_type],
            actual_date=targets[s.milestone_type]
            if statuses.get(s.milestone_type) == "completed"
            else None,
            requires=s.requires,
            optional=s.optional,
        )
        for s in steps
    )


SEED_EXAMPLE = {
    "contract_signed": "completed",
    "loan_application": "completed",
    "home_inspection": "completed",
    "appraisal_ordered": "completed",
    "loan_approval": "in_progress",
}


def facts(milestones: tuple[MilestoneState, ...], today: date, **kw: object) -> TransactionFacts:
    values: dict[str, object] = {
        "milestones": milestones,
        "today": today,
        "contract_date": CONTRACT,
        "target_closing_date": CLOSING,
        "loan_type": "conventional",
        "last_communication": today,
    }
    values.update(kw)
    return TransactionFacts(**values)  # type: ignore[arg-type]


def test_the_seed_example_reads_73_percent() -> None:
    value = rules.progress(plan_states(SEED_EXAMPLE))
    assert value == Decimal("72.50")
    assert rules.shown_percent(value) == 73


def test_the_default_plan_follows_the_seed_timeline_and_sums_to_100() -> None:
    steps = rules.default_plan("fha")
    assert [s.milestone_type for s in steps] == list(rules.MILESTONE_TYPES)
    assert sum(s.weight for s in steps) == 100
    assert rules.validate_plan(steps) == []
    targets = rules.target_dates(steps, CONTRACT, CLOSING)
    assert targets["final_walkthrough"] == date(2026, 2, 12)
    assert targets["closing_day"] == CLOSING


def test_a_cash_purchase_has_no_loan_milestones() -> None:
    steps = rules.default_plan("cash")
    types = {s.milestone_type for s in steps}
    assert not types & rules.LOAN_MILESTONES
    assert sum(s.weight for s in steps) == 100
    assert rules.validate_plan(steps) == []
    assert steps[-1].offset_days == 21  # about three weeks, as cash deals go


def test_validate_plan_reports_every_problem_at_once() -> None:
    bad = [
        rules.PlanStep("home_inspection", "Inspection", 1, Decimal(50), 5, ("title_search",)),
        rules.PlanStep("title_search", "Title", 2, Decimal(30), 3),
        rules.PlanStep("moving_day", "Moving", 3, Decimal(10), 9),
    ]
    errors = rules.validate_plan(bad)
    text = " | ".join(errors)
    assert "Unknown milestone type 'moving_day'" in text
    assert "must end with closing_day" in text
    assert "sum to 100 (got 90)" in text
    assert "home_inspection requires title_search" in text
    assert "offset_days must not decrease" in text


def check(status: str, milestone: str, states: tuple[MilestoneState, ...], **kw: object) -> None:
    rules.check_transition(
        states,
        milestone_type=milestone,
        status=status,
        actual_date=kw.get("actual_date"),  # type: ignore[arg-type]
        contract_date=CONTRACT,
        today=date(2026, 1, 20),
    )


def test_transitions_follow_the_plan_order() -> None:
    states = plan_states({"contract_signed": "completed"})
    check("completed", "loan_application", states)
    with pytest.raises(RuleError) as refused:
        check("completed", "loan_approval", states)
    assert refused.value.status == 409
    assert refused.value.reason == "Loan Approval cannot be completed before Loan Application"
    with pytest.raises(RuleError, match="cannot be started before Home Inspection, Title Search"):
        check("in_progress", "final_walkthrough", states)


def test_statuses_and_inputs_are_checked() -> None:
    states = plan_states(SEED_EXAMPLE)
    with pytest.raises(RuleError, match="already completed") as same:
        check("completed", "home_inspection", states)
    assert same.value.status == 409
    with pytest.raises(RuleError, match="cannot go from completed to pending"):
        check("pending", "home_inspection", states)
    with pytest.raises(RuleError, match="cannot be skipped"):
        check("skipped", "title_search", states)
    check("skipped", "final_walkthrough", states)  # optional
    with pytest.raises(RuleError, match="in the future") as future:
        check("completed", "loan_approval", states, actual_date=date(2026, 1, 21))
    assert future.value.status == 422
    with pytest.raises(RuleError, match="before the contract date"):
        check("completed", "loan_approval", states, actual_date=date(2025, 12, 31))
    with pytest.raises(RuleError, match="only given when completing"):
        check("delayed", "loan_approval", states, actual_date=date(2026, 1, 10))
    with pytest.raises(RuleError, match="Unknown milestone type") as unknown:
        check("completed", "moving_day", states)
    assert unknown.value.status == 422
    cash = plan_states({"contract_signed": "completed"}, "cash")
    with pytest.raises(RuleError, match="not part of this transaction's plan") as absent:
        check("completed", "loan_approval", cash)
    assert absent.value.status == 409


def test_health_is_full_when_everything_is_on_time() -> None:
    today = date(2026, 1, 12)
    on_time = plan_states(dict.fromkeys(rules.MILESTONE_TYPES[:4], "completed"))
    score = rules.health_score(facts(on_time, today))
    assert score.score == 100
    assert set(score.factors) == set(rules.HEALTH_WEIGHTS)
    assert sum(f["points"] for f in score.factors.values()) == pytest.approx(100)  # type: ignore[misc]
    assert score.recommendations == []


def test_health_falls_with_lateness_silence_delays_and_unready_parties() -> None:
    today = date(2026, 1, 20)
    late = plan_states({"contract_signed": "completed", "loan_application": "delayed"})
    score = rules.health_score(
        facts(
            late,
            today,
            last_communication=today - timedelta(days=10),
            delay_count=1,
            stakeholders={"lender": False, "title company": True},
        )
    )
    f = score.factors
    assert f["on_schedule"]["score"] < 1
    assert f["milestone_progress"]["score"] < 1
    assert f["communication"]["score"] == pytest.approx(1 - 8 / 12, abs=1e-3)
    assert f["no_delays"]["score"] == 0.5
    assert f["stakeholder_ready"]["score"] == 0.5
    assert score.score < 60
    tips = " | ".join(score.recommendations)
    assert "Catch up on Loan Application" in tips
    assert "last contact 10 days ago" in tips
    assert "Resolve the delay on Loan Application" in tips
    assert "Confirm readiness with lender" in tips


def test_weights_change_the_score_and_are_validated() -> None:
    today = date(2026, 1, 20)
    silent = facts(plan_states(SEED_EXAMPLE), today, last_communication=today - timedelta(days=30))
    default = rules.health_score(silent).score
    only_talk = dict.fromkeys(rules.HEALTH_WEIGHTS, 0.0) | {"communication": 1.0}
    assert rules.health_score(silent, rules.validate_weights(only_talk)).score == 0
    assert default > 0
    with pytest.raises(RuleError, match="sum to 1") as bad:
        rules.validate_weights(dict(rules.HEALTH_WEIGHTS) | {"on_schedule": 0.5})
    assert bad.value.status == 422
    with pytest.raises(RuleError, match="non-negative"):
        rules.validate_weights(dict(rules.HEALTH_WEIGHTS) | {"on_schedule": -0.1, "no_delays": 0.6})
    with pytest.raises(RuleError, match="unknown components vibes"):
        rules.validate_weights(dict(rules.HEALTH_WEIGHTS) | {"vibes": 0.0})
    with pytest.raises(RuleError, match="missing components communication"):
        rules.validate_weights(
            {k: v for k, v in rules.HEALTH_WEIGHTS.items() if k != "communication"}
        )


def test_the_delay_baseline_is_the_seeds_weighted_sum() -> None:
    assert sum(rules.DELAY_WEIGHTS.values()) == pytest.approx(1)
    today = date(2026, 1, 20)
    calm = rules.baseline_delay(facts(plan_states(SEED_EXAMPLE), today))
    expected = sum(rules.DELAY_WEIGHTS[k] * v for k, v in calm.factors.items())
    assert calm.delay_probability == pytest.approx(expected, abs=1e-3)
    troubled = rules.baseline_delay(
        facts(
            plan_states({"contract_signed": "completed", "loan_application": "delayed"}),
            today,
            loan_type="fha",
            delay_count=2,
            last_communication=today - timedelta(days=12),
            stakeholders={"lender": False},
        )
    )
    assert troubled.delay_probability > calm.delay_probability
    assert troubled.predicted_closing_date >= calm.predicted_closing_date
    assert (
        troubled.closing_date_low <= troubled.predicted_closing_date <= troubled.closing_date_high
    )
    names = [r["factor"] for r in troubled.risk_factors]
    assert "milestone_delays" in names
    assert "financial_complexity" in names
    assert any("lender" in a for a in troubled.recommended_actions)


def test_recommendations_near_closing_match_the_seed() -> None:
    today = CLOSING - timedelta(days=5)
    near = facts(
        plan_states(SEED_EXAMPLE | {"loan_approval": "completed", "title_search": "completed"}),
        today,
    )
    actions = rules.baseline_delay(near).recommended_actions
    assert actions[:3] == [
        "Schedule final walkthrough for February 12",
        "Confirm all closing party availability",
        "Prepare homeowner's insurance documentation",
    ]


def completed(milestone: str, *, actual: date, target: date) -> MilestoneState:
    return MilestoneState(
        milestone, rules.label(milestone), "completed", 1, Decimal(10), target, actual
    )


def keys(triggers: list[rules.Trigger]) -> list[str]:
    return [t.key for t in triggers]


def test_each_trigger_fires_once_per_transaction() -> None:
    inspection = completed("home_inspection", actual=date(2026, 1, 6), target=date(2026, 1, 10))
    first = rules.due_triggers(
        fired=set(),
        before_progress=Decimal(30),
        after_progress=Decimal(55),
        before_health=65,
        after_health=82,
        completed_now=[inspection],
        days_to_closing=30,
    )
    assert keys(first) == [
        "milestone:home_inspection",
        "progress:50",
        "health:80",
        "ahead_of_schedule",
    ]
    again = rules.due_triggers(
        fired=set(keys(first)),
        before_progress=Decimal(30),
        after_progress=Decimal(55),
        before_health=65,
        after_health=82,
        completed_now=[inspection],
        days_to_closing=30,
    )
    assert again == []


def test_progress_celebrates_the_highest_step_reached_only() -> None:
    jump = rules.due_triggers(
        fired=set(),
        before_progress=Decimal(0),
        after_progress=Decimal(80),
        before_health=100,
        after_health=100,
    )
    assert keys(jump) == ["progress:75"]
    later = rules.due_triggers(
        fired={"progress:75"},
        before_progress=Decimal(80),
        after_progress=Decimal(85),
        before_health=100,
        after_health=100,
    )
    assert later == []
    ninety = rules.due_triggers(
        fired={"progress:75"},
        before_progress=Decimal(85),
        after_progress=Decimal("92.5"),
        before_health=100,
        after_health=100,
    )
    assert keys(ninety) == ["progress:90"]


@pytest.mark.parametrize(
    ("days", "key"),
    [
        (8, None),
        (7, "countdown:7"),
        (5, "countdown:7"),
        (3, "countdown:3"),
        (1, "countdown:1"),
        (0, None),
    ],
)
def test_closing_countdown(days: int, key: str | None) -> None:
    due = rules.due_triggers(
        fired=set(),
        before_progress=Decimal(80),
        after_progress=Decimal(80),
        before_health=90,
        after_health=90,
        days_to_closing=days,
    )
    assert keys(due) == ([key] if key else [])


def test_variants_are_deterministic_and_both_are_used() -> None:
    assert rules.assign_variant("TX-1", "progress:50") == rules.assign_variant(
        "TX-1", "progress:50"
    )
    seen = {rules.assign_variant(f"TX-{n}", "milestone:closing_day") for n in range(40)}
    assert seen == {"A", "B"}


def test_templates_cover_every_trigger_and_fill_placeholders() -> None:
    for template in [
        *rules.MILESTONE_TYPES,
        "progress",
        "health_improved",
        "ahead_of_schedule",
        "countdown",
    ]:
        for variant in rules.VARIANTS:
            text = rules.CELEBRATION_TEMPLATES[template][variant]
            assert text.animation in rules.ANIMATIONS
    text = rules.render_celebration(
        rules.CELEBRATION_TEMPLATES["progress"]["B"], {"percent": 50, "property": "12 Oak St"}
    )
    assert text.title == "50% of the way home"
    custom = rules.CelebrationText("{nonsense} {days}", "x", "confetti", 3, "")
    assert rules.render_celebration(custom, {"days": 3}).title == " 3"
