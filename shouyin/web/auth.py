"""Signing in, sessions, CSRF and roles: the dependencies every route uses.

**Signing in** (``POST /api/session``) checks the user name and password with
:func:`shouyin.lane.services.login` (argon2, failures counted, lockout after 5) and starts a
server-side session (:mod:`shouyin.web.sessions`). The token goes back twice: as an
``HttpOnly; SameSite=Strict`` cookie for the pages, and in the JSON body for API clients, which
send it as ``Authorization: Bearer <token>``. Failures are logged with the user name and the
client address, never the password.

**CSRF**: a request authenticated by the cookie with an unsafe method (POST, PUT, PATCH,
DELETE) must carry ``X-CSRF-Token`` equal to the session's CSRF token (given at login and by
``GET /api/session``); a bearer request needs none (a browser never adds that header by itself).
``SameSite=Strict`` already stops cross-site cookies; the header is the second lock.

**Dependencies** (``Annotated`` aliases; see :mod:`shouyin.web.api.cashier` for use)::

    async def route(user: CurrentUser, runtime: RuntimeDep) -> ...          # any signed-in user
    async def route(user: Annotated[Principal, Depends(require(Action.Z_REPORT))]) -> ...
    async def route(user: AdminUser) -> ...                                 # admins only

A route that reads lane data must use ``user.lane_id`` (the session's lane) or check a lane it
is given with :func:`check_lane`: a cashier never reaches another lane's data.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from shouyin.domain.carddata import scrub
from shouyin.domain.errors import AuthError
from shouyin.domain.users import Action, Role, User, can
from shouyin.lane import services
from shouyin.web.errors import ApiError
from shouyin.web.runtime import LaneRuntime
from shouyin.web.sessions import WebSession

__all__ = [
    "COOKIE_NAME",
    "CSRF_HEADER",
    "PASSIVE_PATHS",
    "AdminUser",
    "CurrentUser",
    "Principal",
    "RuntimeDep",
    "SupervisorUser",
    "check_lane",
    "get_runtime",
    "require",
    "require_role",
    "router",
]

logger = logging.getLogger(__name__)

COOKIE_NAME: Final = "shouyin_session"
CSRF_HEADER: Final = "X-CSRF-Token"
_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
PASSIVE_PATHS: Final = frozenset({"/api/events", "/api/lane/terminal"})
"""Requests a page makes by itself (event stream, status polls): they do not count as the
user's activity, so an unattended page still reaches the idle timeout."""


async def get_runtime(request: Request) -> LaneRuntime:
    """The app's :class:`LaneRuntime` (``async``: FastAPI would run a plain function in a
    worker thread, a needless hop on every request)."""
    runtime = request.app.state.runtime
    assert isinstance(runtime, LaneRuntime)
    return runtime


RuntimeDep = Annotated[LaneRuntime, Depends(get_runtime)]


@dataclass(frozen=True, slots=True)
class Principal:
    """The signed-in user of a request.

    Attributes:
        user: the account (as loaded for this request).
        session: the web session.
        via_cookie: authenticated by the cookie (CSRF applies) rather than a bearer token.
    """

    user: User
    session: WebSession
    via_cookie: bool

    @property
    def lane_id(self) -> str:
        """The session's lane."""
        return self.session.lane_id

    @property
    def role(self) -> Role:
        """The user's role."""
        return self.user.role

    def can(self, action: Action) -> bool:
        """Whether the user's role allows ``action``."""
        return can(self.user.role, action)


def _not_signed_in() -> ApiError:
    return ApiError(401, "not_authenticated", "请先登录", "Please sign in")


def _token(request: Request) -> tuple[str | None, bool]:
    """The session token and whether it came from the cookie."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), False
    cookie = request.cookies.get(COOKIE_NAME)
    return (cookie, True) if cookie else (None, False)


async def current_principal(request: Request, runtime: RuntimeDep) -> Principal:
    """Authenticate the request (session, user still active, CSRF on unsafe cookie requests).

    Raises:
        ApiError: 401 without a live session; 403 for a missing or wrong CSRF token.
    """
    token, via_cookie = _token(request)
    if not token or len(token) > 256:
        raise _not_signed_in()
    now = runtime.clock()
    session = runtime.sessions.resolve(token, now, touch=request.url.path not in PASSIVE_PATHS)
    if session is None:
        raise _not_signed_in()
    uow = runtime.uow()
    with uow:
        user = uow.users.get(session.user_id)
    if user is None or not user.active or user.is_locked(now):
        runtime.sessions.end(session.token_hash)
        raise _not_signed_in()
    if via_cookie and request.method not in _SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
            logger.warning(
                "CSRF token missing or wrong: %s %s by %s",
                request.method,
                request.url.path,
                user.username,
            )
            raise ApiError(
                403, "csrf", "页面已过期，请刷新后重试", "Page expired; reload and retry"
            )
    principal = Principal(user, session, via_cookie)
    request.state.principal = principal  # for logging middleware and the audit trail
    return principal


CurrentUser = Annotated[Principal, Depends(current_principal)]


def require(action: Action) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency: the signed-in user, whose role must allow ``action``.

    Use as ``Annotated[Principal, Depends(require(Action.MANAGE_USERS))]``.
    """

    async def dependency(user: CurrentUser) -> Principal:
        if not user.can(action):
            raise ApiError(403, "forbidden", "没有权限", "Not allowed")
        return user

    return dependency


def require_role(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency: the signed-in user, whose role must be one of ``roles``."""

    async def dependency(user: CurrentUser) -> Principal:
        if user.role not in roles:
            raise ApiError(403, "forbidden", "没有权限", "Not allowed")
        return user

    return dependency


AdminUser = Annotated[Principal, Depends(require_role(Role.ADMIN))]
SupervisorUser = Annotated[Principal, Depends(require_role(Role.SUPERVISOR, Role.ADMIN))]


def check_lane(user: Principal, lane_id: str) -> None:
    """Refuse a lane other than the session's, except for admins.

    Raises:
        ApiError: 403.
    """
    if lane_id != user.lane_id and user.role is not Role.ADMIN:
        raise ApiError(403, "other_lane", "不能查看其他收银台", "Not your lane")


# -- routes ------------------------------------------------------------------------------------
router = APIRouter(prefix="/api", tags=["session"])


class LoginRequest(BaseModel):
    """Sign-in form."""

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)
    lane_id: str | None = Field(
        default=None, max_length=32, description="default: the server's lane"
    )


class SessionInfo(BaseModel):
    """The signed-in user and the session (no token)."""

    user_id: str
    username: str
    display_name: str
    role: Role
    lane_id: str
    csrf_token: str
    permissions: list[Action]
    expires_at: str


class LoginResponse(SessionInfo):
    """Sign-in result: the session info plus the bearer token (for API clients)."""

    token: str


def _info(user: User, session: WebSession) -> dict[str, object]:
    return {
        "user_id": user.user_id,
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role,
        "lane_id": session.lane_id,
        "csrf_token": session.csrf_token,
        "permissions": sorted(a for a in Action if can(user.role, a)),
        "expires_at": session.expires_at.isoformat(),
    }


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


@router.post("/session", response_model=LoginResponse, summary="Sign in (登录)")
async def login(
    body: LoginRequest, request: Request, response: Response, runtime: RuntimeDep
) -> LoginResponse:
    """Check the password (lockout applies) and start a session; sets the session cookie."""
    lane_id = body.lane_id or runtime.default_lane
    if lane_id not in runtime.lanes:
        raise ApiError(404, "unknown_lane", "没有这个收银台", "No such lane")
    ctx = runtime.context(lane_id)

    def check() -> User:
        return services.login(runtime.uow(), runtime.hasher, ctx, body.username, body.password)

    try:
        user = await runtime.run_blocking(check)  # argon2 takes tens of ms: off the event loop
    except AuthError as error:
        logger.warning(
            "sign-in refused for %r from %s: %s",
            scrub(body.username[:64]),
            _client(request),
            type(error).__name__,
        )
        raise
    token, session = runtime.sessions.create(user.user_id, lane_id, runtime.clock())
    response.set_cookie(
        COOKIE_NAME,
        token,
        httponly=True,
        samesite="strict",
        secure=request.app.state.secure_cookies,
        path="/",
        max_age=int(runtime.sessions.policy.lifetime.total_seconds()),
    )
    logger.info(
        "%s (%s) signed in on lane %s from %s", user.username, user.role, lane_id, _client(request)
    )
    return LoginResponse(token=token, **_info(user, session))


@router.get("/session", response_model=SessionInfo, summary="Who is signed in")
async def session_info(user: CurrentUser) -> SessionInfo:
    """The signed-in user, the lane and the CSRF token."""
    return SessionInfo(**_info(user.user, user.session))


@router.delete("/session", status_code=204, summary="Sign out (退出)")
async def logout(user: CurrentUser, response: Response, runtime: RuntimeDep) -> Response:
    """End the session and clear the cookie."""
    runtime.sessions.end(user.session.token_hash)
    logger.info("%s signed out", user.user.username)
    response = Response(status_code=204)
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict")
    return response
