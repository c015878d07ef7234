"""Enough of the WhatsApp Cloud API for sending a message: `POST /v21.0/{phone_number_id}/messages`
with a bearer token and a JSON body (text or template), answered as Graph answers: the message id,
or a Graph error object."""

from __future__ import annotations

import re
import uuid
from typing import Any

from tests.fakes.http import FakeService, Recorded, Reply

MESSAGES = re.compile(r"^/v21\.0/(?P<phone_id>\d+)/messages$")


def graph_error(message: str, code: int, type_: str = "OAuthException") -> dict[str, Any]:
    return {
        "error": {
            "message": message,
            "type": type_,
            "code": code,
            "fbtrace_id": uuid.uuid4().hex[:20],
        }
    }


class FakeWhatsApp(FakeService):
    def __init__(self, token: str, phone_number_id: str) -> None:
        super().__init__()
        self.token = token
        self.phone_number_id = phone_number_id

    @property
    def messages(self) -> list[dict[str, Any]]:
        return [r.json() for r in self.requests if MESSAGES.match(r.path)]

    def answer(self, request: Recorded) -> Reply:
        match = MESSAGES.match(request.path)
        if request.method != "POST" or match is None:
            return Reply(400, graph_error("Unsupported request", 100, "GraphMethodException"))
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return Reply(401, graph_error("Invalid OAuth access token.", 190))
        if match["phone_id"] != self.phone_number_id:
            return Reply(400, graph_error("Object does not exist", 100, "GraphMethodException"))
        body = request.json()
        if body.get("messaging_product") != "whatsapp":
            return Reply(400, graph_error("messaging_product must be whatsapp", 100))
        to = str(body.get("to", ""))
        if not to.isdigit():
            return Reply(400, graph_error(f"Invalid parameter: to {to!r}", 131009))
        kind = body.get("type")
        if kind == "text" and not (body.get("text") or {}).get("body"):
            return Reply(400, graph_error("text.body is required", 131008))
        if kind == "template" and not (body.get("template") or {}).get("name"):
            return Reply(400, graph_error("template.name is required", 131008))
        if kind not in ("text", "template"):
            return Reply(400, graph_error(f"Unsupported message type {kind!r}", 131009))
        return Reply(
            200,
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to}],
                "messages": [{"id": f"wamid.{uuid.uuid4().hex}"}],
            },
        )
