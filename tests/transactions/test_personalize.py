"""Claude personalisation through the official client, against a local Messages API: used when
configured, and the template text stands whenever it is absent, failing or nonsensical."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from doorstep.config import Settings
from doorstep.transactions import personalize
from doorstep.transactions.rules import CELEBRATION_TEMPLATES
from tests.fakes.anthropic import FakeAnthropic, api_error

KEY = "sk-ant-test-key"
TEMPLATE = CELEBRATION_TEMPLATES["loan_approval"]["A"]
CONTEXT = {"buyer": "Sam", "property": "12 Oak Street", "occasion": "milestone_completed"}


@pytest.fixture
def claude() -> Iterator[FakeAnthropic]:
    fake = FakeAnthropic(KEY)
    with fake.running():
        yield fake


def configured(fake: FakeAnthropic, **more: object) -> Settings:
    return Settings(anthropic_api_key=KEY, anthropic_base_url=fake.url, **more)  # type: ignore[arg-type]


def test_without_a_key_the_template_stands_and_nothing_is_called(claude: FakeAnthropic) -> None:
    assert personalize.celebration(Settings(), TEMPLATE, CONTEXT) == TEMPLATE
    assert personalize.recommendations(Settings(), ["Call the lender"], CONTEXT) == [
        "Call the lender"
    ]
    assert claude.requests == []


def test_a_configured_client_rewrites_the_celebration(claude: FakeAnthropic) -> None:
    claude.replies = [
        json.dumps(
            {
                "title": "Sam, you're approved!",
                "message": "12 Oak Street is nearly yours.",
                "share_message": "Approved!",
            }
        )
    ]
    text = personalize.celebration(
        configured(claude, anthropic_model="claude-test"), TEMPLATE, CONTEXT
    )
    assert text.title == "Sam, you're approved!"
    assert text.animation == TEMPLATE.animation
    assert text.duration == TEMPLATE.duration
    sent = claude.prompts[0]
    assert sent["model"] == "claude-test"
    assert "12 Oak Street" in sent["messages"][0]["content"]


def test_recommendations_keep_their_number_or_stay_as_they_were(claude: FakeAnthropic) -> None:
    actions = [
        "Schedule final walkthrough for February 12",
        "Confirm all closing party availability",
    ]
    claude.replies = [
        json.dumps(["Book the Feb 12 walkthrough with Sam", "Call title, lender and seller"])
    ]
    assert (
        personalize.recommendations(configured(claude), actions, CONTEXT)[0]
        == "Book the Feb 12 walkthrough with Sam"
    )
    claude.replies = [json.dumps(["only one"])]
    assert personalize.recommendations(configured(claude), actions, CONTEXT) == actions


@pytest.mark.parametrize(
    "reply", ["not json at all", json.dumps({"title": ""}), json.dumps([1, 2])]
)
def test_nonsense_answers_fall_back_to_the_template(claude: FakeAnthropic, reply: str) -> None:
    claude.replies = [reply]
    assert personalize.celebration(configured(claude), TEMPLATE, CONTEXT) == TEMPLATE


def test_api_errors_and_a_wrong_key_fall_back_to_the_template(claude: FakeAnthropic) -> None:
    claude.fail_next(529, api_error("overloaded_error", "Overloaded"))
    assert personalize.celebration(configured(claude), TEMPLATE, CONTEXT) == TEMPLATE
    wrong = Settings(anthropic_api_key="sk-wrong", anthropic_base_url=claude.url)
    assert personalize.celebration(wrong, TEMPLATE, CONTEXT) == TEMPLATE
    assert len(claude.requests) == 2  # no retries: the template is the fallback


def test_an_unreachable_server_falls_back_quickly() -> None:
    settings = Settings(
        anthropic_api_key=KEY, anthropic_base_url="http://127.0.0.1:9", anthropic_timeout_seconds=1
    )
    assert personalize.celebration(settings, TEMPLATE, CONTEXT) == TEMPLATE
