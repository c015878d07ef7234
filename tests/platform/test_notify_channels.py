"""Deliveries through real protocol peers: an aiosmtpd SMTP server receives the e-mail, and local
HTTP servers speaking Twilio's and WhatsApp Cloud's APIs answer the official clients. The job
runs as the job runner runs it, so retries and final failures are the real ones."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from doorstep.config import Settings
from doorstep.platform import channels, notify
from doorstep.platform.auth import User
from doorstep.platform.jobs import FAILED, PENDING, SUCCEEDED, Job, JobRunner
from doorstep.platform.notify import Channel, Delivery, DeliveryStatus, PreferenceChange
from tests.conftest import Brokerage, free_port, principal_of, web_login
from tests.fakes.smtp import SmtpServer, smtp_server
from tests.fakes.twilio import FakeTwilio
from tests.fakes.twilio import error as twilio_error
from tests.fakes.whatsapp import FakeWhatsApp, graph_error

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "twilio-test-token"
WA_TOKEN = "whatsapp-test-token"
WA_PHONE_ID = "106540352242922"
NOTHING_CONFIGURED: dict[str, Any] = {
    "smtp_host": None,
    "twilio_account_sid": None,
    "whatsapp_token": None,
}


@dataclass
class Outcome:
    delivery: Delivery
    job: Job


@dataclass
class Courier:
    """Creates notifications and runs their delivery jobs against chosen settings."""

    db: Session
    factory: sessionmaker[Session]
    settings: Settings

    def notify(
        self,
        user: User,
        *,
        channel: Channel,
        title: str = "Offer accepted",
        body: str = "The sellers accepted your offer on 12 Elm Street.",
        link: str | None = "/notifications",
    ) -> Delivery:
        others = [c for c in Channel if c not in (Channel.in_app, channel)]
        notify.update_settings(
            self.db,
            principal=principal_of(user),
            changes=[PreferenceChange("account.updated", channel, True)]
            + [PreferenceChange("account.updated", c, False) for c in others],
        )
        row = notify.notify(
            self.db, user_id=user.id, type="account.updated", title=title, body=body, link=link
        )
        assert row is not None
        delivery = self.db.scalar(
            select(Delivery).where(Delivery.notification_id == row.id, Delivery.channel == channel)
        )
        assert delivery is not None
        self.db.commit()
        return delivery

    def run(self, delivery: Delivery, **overrides: Any) -> Outcome:
        runner = JobRunner(self.settings.model_copy(update=overrides), self.factory)
        with self.factory() as session:
            job_id = session.scalar(select(Job.id).where(Job.key == f"deliver:{delivery.id}"))
        assert job_id is not None
        runner.run(job_id)
        return self.outcome(delivery)

    def outcome(self, delivery: Delivery) -> Outcome:
        with self.factory() as session:
            row = session.get(Delivery, delivery.id)
            job = session.scalar(select(Job).where(Job.key == f"deliver:{delivery.id}"))
            assert row is not None
            assert job is not None
            return Outcome(row, job)


@pytest.fixture
def courier(db: Session, session_factory: sessionmaker[Session], settings: Settings) -> Courier:
    return Courier(db, session_factory, settings)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server(free_port()) as server:
        yield server


def smtp_settings(server: SmtpServer, **more: Any) -> dict[str, Any]:
    return {
        "smtp_host": server.host,
        "smtp_port": server.port,
        "smtp_starttls": False,
        "smtp_from": "Alpha Homes <notify@alpha.example>",
        "public_url": "https://doorstep.example",
        **more,
    }


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN)
    with fake.running():
        yield fake


def twilio_settings(fake: FakeTwilio, **more: Any) -> dict[str, Any]:
    return {
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": AUTH_TOKEN,
        "twilio_from": "+15005550006",
        "twilio_base_url": fake.url,
        **more,
    }


@pytest.fixture
def whatsapp() -> Iterator[FakeWhatsApp]:
    fake = FakeWhatsApp(WA_TOKEN, WA_PHONE_ID)
    with fake.running():
        yield fake


def whatsapp_settings(fake: FakeWhatsApp, **more: Any) -> dict[str, Any]:
    return {
        "whatsapp_token": WA_TOKEN,
        "whatsapp_phone_number_id": WA_PHONE_ID,
        "whatsapp_base_url": f"{fake.url}/v21.0",
        **more,
    }


def with_phone(db: Session, user: User, phone: str = "+1 (555) 010-2030") -> User:
    user.phone = phone
    db.flush()
    return user


# --- e-mail over SMTP ----------------------------------------------------------------------------


def test_email_reaches_the_smtp_server_with_text_and_html(
    courier: Courier, smtp: SmtpServer, brokerage: Brokerage
) -> None:
    delivery = courier.notify(
        brokerage.agent, channel=Channel.email, title="Offer <accepted> & signed"
    )
    done = courier.run(delivery, **smtp_settings(smtp))
    assert done.delivery.status == DeliveryStatus.sent
    assert (done.delivery.attempts, done.delivery.reason) == (1, None)
    assert done.delivery.sent_at is not None
    assert done.job.status == SUCCEEDED

    [message] = smtp.inbox.messages
    assert smtp.inbox.recipients == [[brokerage.agent.email]]
    assert message["Subject"] == "Offer <accepted> & signed"
    assert message["From"] == "Alpha Homes <notify@alpha.example>"
    assert message["To"] == brokerage.agent.email
    assert message["Message-ID"] == f"<doorstep.delivery-{delivery.id}@alpha.example>"
    assert done.delivery.provider_id == message["Message-ID"]
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    plain, rich = text.get_content(), html.get_content()
    assert "The sellers accepted your offer on 12 Elm Street." in plain
    assert "Open it: https://doorstep.example/notifications" in plain
    assert "Alpha Homes" in plain
    assert "Offer &lt;accepted&gt; &amp; signed" in rich  # escaped, not injected
    assert 'href="https://doorstep.example/notifications"' in rich
    assert brokerage.tenant.primary_color in rich
    # What was sent is kept with the delivery, for the outbox page.
    assert done.delivery.text == plain.replace("\r\n", "\n")
    assert done.delivery.subject == "Offer <accepted> & signed"


def test_email_logs_in_when_credentials_are_set(courier: Courier, brokerage: Brokerage) -> None:
    with smtp_server(free_port(), login=("mailer", "s3cret")) as server:
        delivery = courier.notify(brokerage.broker, channel=Channel.email)
        wrong = courier.run(
            delivery, **smtp_settings(server, smtp_username="mailer", smtp_password="nope")
        )
        assert wrong.delivery.status == DeliveryStatus.failed
        assert wrong.delivery.reason is not None
        assert wrong.delivery.reason.startswith("SMTP 535")
        assert wrong.job.status == PENDING  # a credentials problem may be fixed: retried
        right = courier.run(
            delivery, **smtp_settings(server, smtp_username="mailer", smtp_password="s3cret")
        )
    assert right.delivery.status == DeliveryStatus.sent
    assert right.delivery.attempts == 2
    assert server.inbox.logins == ["mailer"]
    assert len(server.inbox.messages) == 1


def test_email_temporary_refusal_is_retried_until_accepted(
    courier: Courier, smtp: SmtpServer, brokerage: Brokerage
) -> None:
    smtp.inbox.data_replies.append("451 4.3.0 Mail server temporarily rejected message")
    delivery = courier.notify(brokerage.client, channel=Channel.email)
    first = courier.run(delivery, **smtp_settings(smtp))
    assert first.delivery.status == DeliveryStatus.failed
    assert first.delivery.reason == "SMTP 451: 4.3.0 Mail server temporarily rejected message"
    assert first.job.status == PENDING
    assert first.job.attempts == 1
    assert first.job.error is not None
    assert "SMTP 451" in first.job.error
    assert first.job.run_after > first.job.created_at  # backoff
    second = courier.run(delivery, **smtp_settings(smtp))
    assert second.delivery.status == DeliveryStatus.sent
    assert second.delivery.reason is None
    assert second.delivery.attempts == 2
    assert second.job.status == SUCCEEDED
    assert len(smtp.inbox.messages) == 1


def test_email_refused_recipient_fails_for_good_without_retry(
    courier: Courier, smtp: SmtpServer, brokerage: Brokerage
) -> None:
    smtp.inbox.refused.add(brokerage.analyst.email)
    delivery = courier.notify(brokerage.analyst, channel=Channel.email)
    done = courier.run(delivery, **smtp_settings(smtp))
    assert done.delivery.status == DeliveryStatus.failed
    assert done.delivery.reason == (
        f"SMTP refused {brokerage.analyst.email}: 550 5.1.1 No such user here"
    )
    assert done.job.status == SUCCEEDED  # nothing left to retry
    assert smtp.inbox.messages == []


def test_email_server_down_fails_after_the_last_attempt(
    courier: Courier, brokerage: Brokerage
) -> None:
    with socket.socket() as closed:  # a port with nobody listening
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    delivery = courier.notify(brokerage.agent, channel=Channel.email)
    cfg = {"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_starttls": False}
    for attempt in range(1, 6):
        done = courier.run(delivery, **cfg)
        assert done.job.attempts == attempt
        assert done.delivery.status == DeliveryStatus.failed
    assert done.job.status == FAILED
    assert done.delivery.attempts == 5
    assert done.delivery.reason is not None
    assert "ConnectionRefusedError" in done.delivery.reason
    assert done.job.error is not None
    assert "ConnectionRefusedError" in done.job.error


# --- SMS through Twilio --------------------------------------------------------------------------


def test_sms_goes_through_the_official_twilio_client(
    courier: Courier, db: Session, twilio: FakeTwilio, brokerage: Brokerage
) -> None:
    user = with_phone(db, brokerage.client)
    delivery = courier.notify(user, channel=Channel.sms, link="/")
    done = courier.run(delivery, **twilio_settings(twilio), public_url="https://doorstep.example")
    assert done.delivery.status == DeliveryStatus.sent
    [request] = twilio.requests
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert request.headers["user-agent"].startswith("twilio-python/")
    form = request.form()
    assert form["To"] == "+15550102030"  # normalised to E.164
    assert form["From"] == "+15005550006"
    assert form["Body"] == (
        f"{brokerage.tenant.name}: Offer accepted\n"
        "The sellers accepted your offer on 12 Elm Street.\n"
        "https://doorstep.example/"
    )
    assert done.delivery.provider_id is not None
    assert done.delivery.provider_id.startswith("SM")


def test_sms_from_a_messaging_service(
    courier: Courier, db: Session, twilio: FakeTwilio, brokerage: Brokerage
) -> None:
    user = with_phone(db, brokerage.agent)
    delivery = courier.notify(user, channel=Channel.sms)
    service = "MG" + "f" * 32
    done = courier.run(delivery, **twilio_settings(twilio, twilio_from=service))
    assert done.delivery.status == DeliveryStatus.sent
    form = twilio.requests[0].form()
    assert form["MessagingServiceSid"] == service
    assert "From" not in form


def test_sms_server_error_is_recorded_and_retried(
    courier: Courier, db: Session, twilio: FakeTwilio, brokerage: Brokerage
) -> None:
    user = with_phone(db, brokerage.broker)
    twilio.fail_next(500, twilio_error(500, 20500, "Internal Server Error"))
    delivery = courier.notify(user, channel=Channel.sms)
    first = courier.run(delivery, **twilio_settings(twilio))
    assert first.delivery.status == DeliveryStatus.failed
    assert (
        first.delivery.reason
        == "Twilio 500 (code 20500): Unable to create record: Internal Server Error"
    )
    assert first.job.status == PENDING
    second = courier.run(delivery, **twilio_settings(twilio))
    assert second.delivery.status == DeliveryStatus.sent
    assert second.delivery.attempts == 2
    assert len(twilio.requests) == 2


def test_sms_refused_by_twilio_fails_for_good(
    courier: Courier, db: Session, twilio: FakeTwilio, brokerage: Brokerage
) -> None:
    user = with_phone(db, brokerage.analyst)
    twilio.fail_next(400, twilio_error(400, 21610, "Attempt to send to unsubscribed recipient"))
    delivery = courier.notify(user, channel=Channel.sms)
    done = courier.run(delivery, **twilio_settings(twilio))
    assert done.delivery.status == DeliveryStatus.failed
    assert done.delivery.reason == (
        "Twilio 400 (code 21610): Unable to create record: "
        "Attempt to send to unsubscribed recipient"
    )
    assert done.job.status == SUCCEEDED


def test_sms_with_wrong_credentials_is_retried(
    courier: Courier, db: Session, twilio: FakeTwilio, brokerage: Brokerage
) -> None:
    user = with_phone(db, brokerage.agent)
    delivery = courier.notify(user, channel=Channel.sms)
    done = courier.run(delivery, **twilio_settings(twilio, twilio_auth_token="wrong"))
    assert done.delivery.status == DeliveryStatus.failed
    assert done.delivery.reason == "Twilio 401 (code 20003): Unable to create record: Authenticate"
    assert done.job.status == PENDING


def test_sms_to_a_local_number_fails_without_calling_twilio(
    courier: Courier, db: Session, twilio: FakeTwilio, brokerage: Brokerage
) -> None:
    user = with_phone(db, brokerage.client, "555-0102")
    delivery = courier.notify(user, channel=Channel.sms)
    done = courier.run(delivery, **twilio_settings(twilio))
    assert done.delivery.status == DeliveryStatus.failed
    assert done.delivery.reason is not None
    assert "international format" in done.delivery.reason
    assert done.job.status == SUCCEEDED
    assert twilio.requests == []


# --- WhatsApp Cloud API ------------------------------------------------------------------------


def test_whatsapp_text_message(
    courier: Courier, db: Session, whatsapp: FakeWhatsApp, brokerage: Brokerage
) -> None:
    user = with_phone(db, brokerage.client, "+44 20 7946 0018")
    delivery = courier.notify(user, channel=Channel.whatsapp)
    done = courier.run(delivery, **whatsapp_settings(whatsapp))
    assert done.delivery.status == DeliveryStatus.sent
    [request] = whatsapp.requests
    assert request.path == f"/v21.0/{WA_PHONE_ID}/messages"
    assert request.headers["authorization"] == f"Bearer {WA_TOKEN}"
    assert request.headers["content-type"] == "application/json"
    body = request.json()
    assert body["messaging_product"] == "whatsapp"
    assert body["to"] == "442079460018"
    assert body["type"] == "text"
    assert "The sellers accepted your offer" in body["text"]["body"]
    assert done.delivery.provider_id is not None
    assert done.delivery.provider_id.startswith("wamid.")


def test_whatsapp_template_message(
    courier: Courier, db: Session, whatsapp: FakeWhatsApp, brokerage: Brokerage
) -> None:
    user = with_phone(db, brokerage.agent)
    delivery = courier.notify(user, channel=Channel.whatsapp, title="New lead")
    done = courier.run(
        delivery,
        **whatsapp_settings(whatsapp, whatsapp_template="doorstep_update"),
    )
    assert done.delivery.status == DeliveryStatus.sent
    template = whatsapp.messages[0]["template"]
    assert template["name"] == "doorstep_update"
    assert template["language"] == {"code": "en_US"}
    params = template["components"][0]["parameters"]
    assert params[0] == {"type": "text", "text": "New lead"}


def test_whatsapp_server_error_is_recorded_and_retried(
    courier: Courier, db: Session, whatsapp: FakeWhatsApp, brokerage: Brokerage
) -> None:
    user = with_phone(db, brokerage.broker)
    whatsapp.fail_next(500, graph_error("An unknown error occurred", 1, "OAuthException"))
    delivery = courier.notify(user, channel=Channel.whatsapp)
    first = courier.run(delivery, **whatsapp_settings(whatsapp))
    assert first.delivery.status == DeliveryStatus.failed
    assert first.delivery.reason == "WhatsApp 500 (code 1): An unknown error occurred"
    assert first.job.status == PENDING
    second = courier.run(delivery, **whatsapp_settings(whatsapp))
    assert second.delivery.status == DeliveryStatus.sent
    assert len(whatsapp.requests) == 2


def test_whatsapp_bad_token_is_retried(
    courier: Courier, db: Session, whatsapp: FakeWhatsApp, brokerage: Brokerage
) -> None:
    user = with_phone(db, brokerage.admin)
    delivery = courier.notify(user, channel=Channel.whatsapp)
    done = courier.run(delivery, **whatsapp_settings(whatsapp, whatsapp_token="expired"))
    assert done.delivery.status == DeliveryStatus.failed
    assert done.delivery.reason == "WhatsApp 401 (code 190): Invalid OAuth access token."
    assert done.job.status == PENDING


# --- no channel configured ------------------------------------------------------------------------


def test_unconfigured_channels_are_captured_for_the_outbox(
    courier: Courier, db: Session, client: TestClient, brokerage: Brokerage, rival: Brokerage
) -> None:
    user = with_phone(db, brokerage.agent)
    email = courier.notify(user, channel=Channel.email, title="Inspection booked")
    sms = courier.notify(user, channel=Channel.sms, title="Inspection booked")
    foreign = courier.notify(rival.agent, channel=Channel.email, title="Rival news")
    for delivery in (email, sms, foreign):
        done = courier.run(delivery, **NOTHING_CONFIGURED, capture_messages=True)
        assert done.delivery.status == DeliveryStatus.captured
        assert done.delivery.attempts == 0
        assert done.job.status == SUCCEEDED
    kept = courier.outcome(email).delivery
    assert kept.subject == "Inspection booked"
    assert kept.text is not None
    assert "Inspection booked" in kept.text
    assert kept.html is not None
    assert "<h1" in kept.html

    web_login(client, brokerage.admin)
    page = client.get("/admin/outbox")
    assert page.status_code == 200
    # The explainer follows the server's own mode: embedded captures, production fails.
    explainer = (
        "messages that would have been sent"
        if courier.settings.captures_messages
        else "Their deliveries fail with a reason until they are"
    )
    assert explainer in page.text
    assert page.text.count('data-testid="delivery" data-status="captured"') == 2
    assert "Rival news" not in page.text
    assert "Offer accepted" not in page.text
    filtered = client.get("/admin/outbox?status=failed")
    assert 'data-testid="delivery"' not in filtered.text


def test_unconfigured_channel_fails_in_production_without_retry(
    courier: Courier, brokerage: Brokerage
) -> None:
    delivery = courier.notify(brokerage.agent, channel=Channel.email)
    done = courier.run(delivery, **NOTHING_CONFIGURED, capture_messages=False)
    assert done.delivery.status == DeliveryStatus.failed
    assert done.delivery.reason == channels.not_configured_reason("email")
    assert done.job.status == SUCCEEDED


def test_delivering_twice_sends_once(
    courier: Courier,
    session_factory: Callable[[], Session],
    smtp: SmtpServer,
    brokerage: Brokerage,
    settings: Settings,
) -> None:
    delivery = courier.notify(brokerage.agent, channel=Channel.email)
    runner = JobRunner(settings.model_copy(update=smtp_settings(smtp)), courier.factory)
    for _ in range(2):  # an at-least-once queue may hand the same job over twice
        with courier.factory() as session:
            runner.bind(session)
            notify.deliver(session, delivery_id=delivery.id)
            session.commit()
    assert len(smtp.inbox.messages) == 1


def test_jobs_page_shows_failures_with_their_error(
    courier: Courier, client: TestClient, brokerage: Brokerage
) -> None:
    delivery = courier.notify(brokerage.agent, channel=Channel.email)
    cfg = {"smtp_host": "127.0.0.1", "smtp_port": 9, "smtp_starttls": False}
    for _ in range(5):
        done = courier.run(delivery, **cfg)
    assert done.job.status == FAILED
    web_login(client, brokerage.admin)
    page = client.get("/admin/jobs")
    assert page.status_code == 200
    assert page.text.count('data-testid="failed-job"') == 1
    assert "notify.deliver" in page.text
    assert "DeliveryFailed: SMTP" in page.text
    assert 'data-testid="recent-job" data-status="failed"' in page.text
    outbox = client.get("/admin/outbox?status=failed").text
    assert 'data-testid="delivery-reason"' in outbox
    assert "5 attempts" in outbox
