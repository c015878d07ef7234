"""Request plumbing shared by every module's routes: the unit of work, the current Principal,
CSRF, content-type checks. Routes stay thin because all of this happens here, once."""

from __future__ import annotations

import functools
import hmac
import inspect
import secrets
from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from typing import Annotated, Any

from fastapi import Depends, Request, Response, UploadFile
from fastapi import params as fastapi_params
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.routing import request_response as starlette_request_response

from doorstep.platform import auth
from doorstep.platform.audit import set_actor
from doorstep.platform.auth import Principal, Role
from doorstep.platform.auth_cache import Identity, SessionCache
from doorstep.platform.errors import (
    CsrfFailed,
    DoorstepError,
    Forbidden,
    InvalidToken,
    NotAuthenticated,
    RuleViolation,
    UnsupportedMediaType,
)
from doorstep.platform.events import BUS_KEY

SESSION_COOKIE = "doorstep_session"
CSRF_COOKIE = "doorstep_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# These take credentials in their body and use no cookie, so a forged cross-site call gains nothing.
CSRF_EXEMPT = frozenset({"/api/auth/token", "/api/auth/refresh"})


def _db(request: Request) -> Session:
    """The request's session, made on first use (a request answered from the session cache
    never makes one)."""
    db: Session | None = getattr(request.state, "db", None)
    if db is None:
        factory: sessionmaker[Session] = request.app.state.sessionmaker
        db = factory()
        # After commit, the session announces its events on the bus and hands its jobs over.
        db.info[BUS_KEY] = request.app.state.bus
        request.app.state.jobs.bind(db)
        db.info[_OPEN_KEY] = True
        principal = getattr(request.state, "principal", None)
        if principal is not None:
            set_actor(db, principal)
        request.state.db = db
    _current_db.set(db)  # for the endpoint's thread to commit in (`_in_unit_of_work`)
    return db


async def _live(request: Request, session_id: str) -> Identity:
    """The session's identity: from the cache, else checked on a worker thread (and kept)."""
    cache: SessionCache = request.app.state.session_cache
    cached = cache.get(session_id)
    if cached is not None:
        return cached
    return await run_in_threadpool(lambda: cache.fetch(_db(request), session_id))


async def _identify(request: Request) -> Identity | None:
    """The request's identity: a Bearer token wins, otherwise the session cookie.

    Kept on the request as plain values, not ORM rows, so that error pages can still use them
    after a rollback. A bad token is an error (401); a stale cookie is just no identity."""
    # `request.state` reads and writes this dict; used directly, as on every request.
    values: dict[str, Any] = request.scope.setdefault("state", {})
    if "identity" in values:
        found: Identity | None = values["identity"]
        return found
    app_state = request.app.state
    cache: SessionCache = app_state.session_cache
    identity: Identity | None = None
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise InvalidToken("Authorization header must be 'Bearer <token>'")
        claims = cache.claims(token.strip(), app_state.token_settings)
        identity = (await _live(request, str(claims["sid"]))).for_token(claims)
    elif cookie := request.cookies.get(SESSION_COOKIE):
        try:
            sid, secret = auth.split_token(cookie)
            identity = (await _live(request, sid)).for_cookie(secret)
        except InvalidToken:
            identity = None
    values["identity"] = identity
    values["principal"] = identity.principal if identity is not None else None
    values["session_csrf"] = identity.csrf_token if identity is not None else None
    db: Session | None = values.get("db")
    if identity is not None and db is not None:
        set_actor(db, identity.principal)
    return identity


def csrf_token_for(request: Request) -> str:
    """The token a page embeds in forms and htmx headers for this visitor."""
    session_csrf: str | None = getattr(request.state, "session_csrf", None)
    if session_csrf:
        return session_csrf
    token: str | None = getattr(request.state, "anonymous_csrf", None) or request.cookies.get(
        CSRF_COOKIE
    )
    if not token or len(token) < 32:
        token = secrets.token_urlsafe(32)
    request.state.anonymous_csrf = token
    return token


async def _check_csrf(request: Request) -> None:
    await _identify(request)
    session_csrf: str | None = request.state.session_csrf
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        field = (await request.form()).get(CSRF_FIELD)
        sent = field if isinstance(field, str) else None
    expected = session_csrf or request.cookies.get(CSRF_COOKIE)
    if not sent or not expected or not hmac.compare_digest(sent, expected):
        raise CsrfFailed("CSRF token missing or incorrect; reload the page and try again")


def _expects_json(route: APIRoute) -> bool:
    return any(
        not isinstance(p.field_info, fastapi_params.Form) for p in route.dependant.body_params
    )


def _expects_form(route: APIRoute) -> bool:
    return any(isinstance(p.field_info, fastapi_params.Form) for p in route.dependant.body_params)


_current_db: ContextVar[Session | None] = ContextVar("doorstep_db", default=None)


def _end(db: Session, *, commit: bool) -> None:
    try:
        if commit:
            db.commit()
        else:
            db.rollback()
    finally:
        db.close()


def _in_unit_of_work(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """Commit (or roll back) in the endpoint's own worker thread, saving a second thread hop."""

    @functools.wraps(endpoint)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            result = endpoint(*args, **kwargs)
        except DoorstepError as exc:
            _finish_current(commit=exc.persist_changes)
            raise
        except BaseException:
            _finish_current(commit=False)
            raise
        _finish_current(commit=True)
        return result

    return run


def _finish_current(*, commit: bool) -> None:
    db = _current_db.get()
    if db is not None and db.info.pop(_OPEN_KEY, False):
        _end(db, commit=commit)


_OPEN_KEY = "doorstep.open"


class DoorstepRoute(APIRoute):
    """Every route of every module: checks the request, runs it, then commits or rolls back.

    The commit happens here, before the response leaves, so that a client never sees a
    success whose change is not yet durable (FastAPI runs the exit code of yield-dependencies
    at a point that has moved between releases)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(endpoint):
            endpoint = _in_unit_of_work(endpoint)
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return self._in_transaction(super().get_route_handler())

    def _in_transaction(
        self, handler: Callable[[Request], Coroutine[Any, Any, Response]]
    ) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        wants_json, wants_form = _expects_json(self), _expects_form(self)

        async def run(request: Request) -> Response:
            if request.method not in SAFE_METHODS:
                _check_media_type(request, wants_json=wants_json, wants_form=wants_form)
                if "authorization" not in request.headers and request.url.path not in CSRF_EXEMPT:
                    await _check_csrf(request)
            try:
                response = await handler(request)
            except DoorstepError as exc:
                await _finish(request, commit=exc.persist_changes)
                raise
            except BaseException:
                await _finish(request, commit=False)
                raise
            await _finish(request, commit=True)
            return response

        return run


class DirectRoute(DoorstepRoute):
    """A hot read whose endpoint takes the `Request` and returns the `Response` itself.

    FastAPI's per-request work (dependency solving, response validation and serialization, two
    exit stacks) is skipped: `/api/auth/me` answered from the session cache costs about three
    times less this way (docs/performance.md, "API baseline"). The endpoint still raises the
    platform's errors and runs in the unit of work; `response_model` documents the body in
    OpenAPI, and the endpoint must return exactly that shape (its tests compare them)."""

    def __init__(
        self, path: str, endpoint: Callable[[Request], Coroutine[Any, Any, Response]], **kwargs: Any
    ) -> None:
        super().__init__(path, endpoint, **kwargs)
        self.app = starlette_request_response(self._in_transaction(endpoint))


def _check_media_type(request: Request, *, wants_json: bool, wants_form: bool) -> None:
    has_body = request.headers.get("content-length", "0") != "0" or (
        "transfer-encoding" in request.headers
    )
    if not has_body:
        return
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if wants_json and not (ctype == "application/json" or ctype.endswith("+json")):
        raise UnsupportedMediaType(
            "This endpoint takes a JSON body (Content-Type: application/json)"
        )
    if wants_form and ctype not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        raise UnsupportedMediaType(
            "This endpoint takes a form body (application/x-www-form-urlencoded)"
        )


async def _finish(request: Request, *, commit: bool) -> None:
    """End the unit of work if the endpoint's thread has not already (async endpoints, errors
    raised before the endpoint ran)."""
    db: Session | None = request.scope.get("state", {}).pop("db", None)
    if db is None or not db.info.pop(_OPEN_KEY, False):
        return
    if db.in_transaction():
        await run_in_threadpool(_end, db, commit=commit)
    else:
        db.close()  # it never began: nothing to commit, no connection to return


async def get_db(request: Request) -> Session:
    """The request's session. The request owns the transaction; services only flush.

    Async on purpose: making a Session does no I/O, and every thread hop costs a request
    about 0.4 ms of CPU under load (docs/performance.md)."""
    return _db(request)


async def optional_principal(request: Request) -> Principal | None:
    identity = await _identify(request)
    return identity.principal if identity is not None else None


async def current_identity(request: Request) -> Identity:
    identity = await _identify(request)
    if identity is None:
        raise NotAuthenticated()
    return identity


async def current_principal(request: Request) -> Principal:
    return (await current_identity(request)).principal


def require_role(*roles: Role) -> Any:
    """A dependency that admits only the given roles (403 for the others)."""

    async def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in roles:
            allowed = ", ".join(str(r) for r in roles)
            raise Forbidden(f"This needs one of the roles: {allowed}")
        return principal

    return Depends(check)


DB = Annotated[Session, Depends(get_db)]
CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
CurrentIdentity = Annotated[Identity, Depends(current_identity)]
OptionalPrincipal = Annotated[Principal | None, Depends(optional_principal)]


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def wants_html(request: Request) -> bool:
    if request.url.path.startswith("/api/"):
        return False
    return is_htmx(request) or "text/html" in request.headers.get("accept", "")


async def read_csv_upload(file: UploadFile, *, max_bytes: int) -> str:
    """An uploaded CSV as text: refused (422) past `max_bytes` or when it is not UTF-8."""
    data = await file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise RuleViolation(f"The CSV is larger than {max_bytes // (1024 * 1024)} MB")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RuleViolation("The CSV must be UTF-8 text") from None
