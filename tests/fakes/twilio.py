"""Enough of Twilio's REST API for sending an SMS: `POST /2010-04-01/Accounts/{sid}/Messages.json`
with a form body (To, From or MessagingServiceSid, Body) and HTTP Basic auth, answered as Twilio
answers: 201 with the Message resource, or an error document with Twilio's error code."""

from __future__ import annotations

import base64
import re
import uuid
from email.utils import formatdate

from tests.fakes.http import FakeService, Recorded, Reply

MESSAGES = re.compile(r"^/2010-04-01/Accounts/(?P<sid>AC[0-9a-f]{32})/Messages\.json$")
E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def error(status: int, code: int, message: str) -> dict[str, object]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


class FakeTwilio(FakeService):
    def __init__(self, account_sid: str, auth_token: str) -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token

    @property
    def messages(self) -> list[dict[str, str]]:
        return [r.form() for r in self.requests if MESSAGES.match(r.path) and r.method == "POST"]

    def answer(self, request: Recorded) -> Reply:
        match = MESSAGES.match(request.path)
        if request.method != "POST" or match is None:
            return Reply(404, error(404, 20404, "The requested resource was not found"))
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return Reply(401, error(401, 20003, "Authenticate"))
        if match["sid"] != self.account_sid:
            return Reply(403, error(403, 20003, "Account does not match credentials"))
        form = request.form()
        to = form.get("To", "")
        if not E164.match(to):
            return Reply(400, error(400, 21211, f"Invalid 'To' Phone Number: {to}"))
        if not form.get("Body"):
            return Reply(400, error(400, 21602, "Message body is required."))
        if not (form.get("From") or form.get("MessagingServiceSid")):
            return Reply(400, error(400, 21603, "A 'From' phone number is required."))
        sid = "SM" + uuid.uuid4().hex
        now = formatdate(usegmt=True)
        return Reply(
            201,
            {
                "account_sid": self.account_sid,
                "api_version": "2010-04-01",
                "body": form["Body"],
                "date_created": now,
                "date_sent": None,
                "date_updated": now,
                "direction": "outbound-api",
                "error_code": None,
                "error_message": None,
                "from": form.get("From"),
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "num_media": "0",
                "num_segments": "1",
                "price": None,
                "price_unit": "USD",
                "sid": sid,
                "status": "queued",
                "subresource_uris": {
                    "media": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}/Media.json"
                },
                "to": to,
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
            },
        )
