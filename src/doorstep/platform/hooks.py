"""Domain hooks: a module announces that something happened (`escrow.created`) and other modules
react in the same unit of work, without the announcer knowing who listens.

Handlers run synchronously inside the caller's transaction, so what they write commits or
rolls back with the change itself; anything slow belongs in a job they enqueue."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

Handler = Callable[..., None]
_handlers: dict[str, list[Handler]] = {}


def on(name: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        _handlers.setdefault(name, []).append(handler)
        return handler

    return register


def emit(session: Session, name: str, **payload: Any) -> None:
    for handler in _handlers.get(name, ()):
        handler(session, **payload)
