"""Enough of the Anthropic Messages API (`POST /v1/messages`, the key, `anthropic-version`)
for the official client: a message whose text the test chooses, or Anthropic's error shapes."""

from __future__ import annotations

import uuid
from typing import Any

from tests.fakes.http import FakeService, Recorded, Reply


def api_error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


class FakeAnthropic(FakeService):
    def __init__(self, api_key: str) -> None:
        super().__init__()
        self.api_key = api_key
        self.replies: list[str] = []  # texts to answer with, in order; the last one repeats

    @property
    def prompts(self) -> list[dict[str, Any]]:
        return [r.json() for r in self.requests if r.path == "/v1/messages"]

    def answer(self, request: Recorded) -> Reply:
        if request.method != "POST" or request.path != "/v1/messages":
            return Reply(404, api_error("not_found_error", "Not found"))
        # Older clients send `x-api-key`; the 2.x client sends the key as a Bearer token.
        given = request.headers.get("x-api-key") or request.headers.get(
            "authorization", ""
        ).removeprefix("Bearer ")
        if given != self.api_key:
            return Reply(401, api_error("authentication_error", "invalid x-api-key"))
        if not request.headers.get("anthropic-version"):
            return Reply(400, api_error("invalid_request_error", "anthropic-version required"))
        body = request.json()
        if not body.get("model") or not body.get("max_tokens") or not body.get("messages"):
            return Reply(400, api_error("invalid_request_error", "model, max_tokens, messages"))
        text = self.replies.pop(0) if len(self.replies) > 1 else (self.replies or ["{}"])[0]
        return Reply(
            200,
            {
                "id": f"msg_{uuid.uuid4().hex[:24]}",
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 42, "output_tokens": 17},
            },
        )
