"""Optional personal wording of celebrations and recommendations through Claude (the official
`anthropic` client). Without `DOORSTEP_ANTHROPIC_API_KEY`, or when the call fails or answers
nonsense, the deterministic template text stands: a celebration never waits on, or breaks
because of, a language model."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from doorstep.config import Settings
from doorstep.transactions.rules import CelebrationText

if TYPE_CHECKING:
    import anthropic

log = logging.getLogger("doorstep.transactions.personalize")

CELEBRATION_SYSTEM = (
    "You write short, warm, factual celebration messages for home buyers in a real-estate "
    "transaction portal. Never invent facts, dates, prices or promises. Answer with one JSON "
    'object: {"title": ≤60 chars, "message": ≤200 chars, "share_message": ≤140 chars}.'
)
RECOMMENDATION_SYSTEM = (
    "You rewrite next-step recommendations for a real-estate agent so that each is specific and "
    "actionable. Keep every fact; add none. Answer with one JSON array of strings, one per "
    "input recommendation, in the same order."
)


def _client(settings: Settings) -> anthropic.Anthropic | None:
    if not settings.anthropic_api_key:
        return None
    import anthropic  # only when configured: the client takes 2 s to import, in every process

    return anthropic.Anthropic(
        api_key=settings.anthropic_api_key,
        base_url=settings.anthropic_base_url,
        timeout=settings.anthropic_timeout_seconds,
        max_retries=0,  # a retry would only delay the template fallback
    )


def _ask(settings: Settings, *, system: str, prompt: str) -> Any | None:
    client = _client(settings)
    if client is None:
        return None
    import anthropic

    try:
        reply = client.messages.create(
            model=settings.anthropic_model,
            max_tokens=400,
            system=system,
            messages=[{"role": "user", "content": prompt}],
        )
        text = "".join(block.text for block in reply.content if block.type == "text")
        start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
        return json.loads(text[start:]) if start >= 0 else None
    except (anthropic.APIError, ValueError) as exc:
        log.warning("personalisation unavailable, using the template: %s", type(exc).__name__)
        return None
    finally:
        client.close()


def celebration(
    settings: Settings, text: CelebrationText, context: Mapping[str, object]
) -> CelebrationText:
    """The template's celebration, reworded for this buyer when Claude is configured."""
    facts = ", ".join(f"{k}: {v}" for k, v in context.items() if v not in (None, ""))
    answer = _ask(
        settings,
        system=CELEBRATION_SYSTEM,
        prompt=f"Occasion: {text.title} — {text.message}\nFacts: {facts}",
    )
    if not isinstance(answer, dict):
        return text
    title, message = answer.get("title"), answer.get("message")
    share = answer.get("share_message", text.share_message)
    if not all(isinstance(v, str) and v.strip() for v in (title, message)) or not isinstance(
        share, str
    ):
        return text
    return CelebrationText(
        title=str(title)[:120],
        message=str(message)[:500],
        animation=text.animation,
        duration=text.duration,
        share_message=share[:300],
    )


def recommendations(
    settings: Settings, actions: Sequence[str], context: Mapping[str, object]
) -> list[str]:
    """The rule-based next steps, reworded; the same number, or the originals."""
    if not actions:
        return []
    facts = ", ".join(f"{k}: {v}" for k, v in context.items() if v not in (None, ""))
    listed = "\n".join(f"- {a}" for a in actions)
    answer = _ask(
        settings, system=RECOMMENDATION_SYSTEM, prompt=f"Facts: {facts}\nRecommendations:\n{listed}"
    )
    if (
        not isinstance(answer, list)
        or len(answer) != len(actions)
        or not all(isinstance(a, str) and a.strip() for a in answer)
    ):
        return list(actions)
    return [a.strip()[:300] for a in answer]
