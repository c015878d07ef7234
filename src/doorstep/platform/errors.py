"""Typed domain errors. Each carries its HTTP status and a stable code; app.py maps them once."""

from __future__ import annotations

from typing import Any


class DoorstepError(Exception):
    status_code = 400
    code = "bad_request"
    # A refusal that must still leave its trace (a revoked token family) commits the request.
    persist_changes = False
    # Every reason, when one refusal has several (a stage move missing two prerequisites).
    errors: list[Any] | None = None

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}


class NotAuthenticated(DoorstepError):
    status_code = 401
    code = "not_authenticated"

    def __init__(self, detail: str = "Authentication required") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class InvalidCredentials(NotAuthenticated):
    code = "invalid_credentials"


class InvalidToken(NotAuthenticated):
    code = "invalid_token"


class Forbidden(DoorstepError):
    status_code = 403
    code = "forbidden"


class CsrfFailed(Forbidden):
    code = "csrf_failed"


class NotFound(DoorstepError):
    status_code = 404
    code = "not_found"


class Conflict(DoorstepError):
    status_code = 409
    code = "conflict"


class RuleViolation(DoorstepError):
    """A business rule refuses the change (a transition not allowed, a prerequisite missing)."""

    status_code = 422
    code = "rule_violation"


class TooManyRequests(DoorstepError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after


class UnsupportedMediaType(DoorstepError):
    status_code = 415
    code = "unsupported_media_type"


class PayloadTooLarge(DoorstepError):
    status_code = 413
    code = "payload_too_large"
