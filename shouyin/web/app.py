"""The FastAPI application of a lane: :func:`create_app`.

Routers are collected from :mod:`shouyin.web.api` (every module there that exposes ``router``:
the cashier API, the admin API, ...) plus the session routes of :mod:`shouyin.web.auth` and the
live events of ``GET /api/events``. Static pages come from ``shouyin/web/static`` (``/`` is the
cashier page). The OpenAPI schema is at ``/api/openapi.json``; FastAPI's interactive docs are
off, since they load their scripts from a CDN and nothing here may (the lanes are offline).

The app's lifespan starts the :class:`~shouyin.web.runtime.LaneRuntime` (migrations, terminal
links, payment recovery) and closes it on shutdown; a test using ``TestClient(app)`` as a
context manager gets the same.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Final

from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi.responses import FileResponse, RedirectResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles

from shouyin.domain.users import Role
from shouyin.logs import PanScrubber
from shouyin.web import api as api_package
from shouyin.web import auth
from shouyin.web.auth import CurrentUser, RuntimeDep
from shouyin.web.errors import ApiError, install_error_handlers
from shouyin.web.events import sse_stream
from shouyin.web.runtime import LaneRuntime

__all__ = ["SECURITY_HEADERS", "STATIC_DIR", "api_routers", "create_app"]

logger = logging.getLogger(__name__)

STATIC_DIR: Final = Path(__file__).parent / "static"

events_router = APIRouter(prefix="/api", tags=["events"])


@events_router.get(
    "/events",
    summary="Live events (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def events(
    request: Request,
    user: CurrentUser,
    runtime: RuntimeDep,
    lifetime: Annotated[
        float, Query(ge=1, le=3600, description="seconds; the browser reconnects")
    ] = 600,
    all_lanes: Annotated[bool, Query(description="admins: every lane's events")] = False,
) -> StreamingResponse:
    """The signed-in user's live events: their lane's (payment progress, sale completed, ...)
    and, for admins, admin events. Ends after ``lifetime`` seconds (``EventSource`` reconnects),
    and as soon as the session is gone (signed out, expired, account locked or disabled, role
    changed): the session is checked again, without counting as activity, on every heartbeat
    and before any event is sent.
    """
    lane_id = None if all_lanes and user.role is Role.ADMIN else user.lane_id

    async def alive() -> bool:
        try:
            again = await auth.current_principal(request, runtime)
        except ApiError:
            return False
        return again.session.token_hash == user.session.token_hash and again.role is user.role

    async def stream() -> AsyncIterator[str]:
        with runtime.bus.subscribe(lane_id, user.role) as subscription:
            async for chunk in sse_stream(subscription, lifetime=lifetime, alive=alive):
                yield chunk

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def api_routers() -> list[APIRouter]:
    """Every ``router`` of the modules in :mod:`shouyin.web.api`, in module name order."""
    found: list[APIRouter] = []
    for module in sorted(pkgutil.iter_modules(api_package.__path__), key=lambda m: m.name):
        if module.name.startswith("_"):
            continue
        loaded = importlib.import_module(f"{api_package.__name__}.{module.name}")
        router = getattr(loaded, "router", None)
        if isinstance(router, APIRouter):
            found.append(router)
    return found


SECURITY_HEADERS: Final = {
    # Everything is served from here (no CDN, no inline script, no eval): a strict policy costs
    # nothing. Browser tests that evaluate strings (Playwright's wait_for_function) open their
    # pages with bypass_csp instead of weakening the policy for every shop.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        "img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


async def _security_headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    response = await call_next(request)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.url.path.startswith("/api/"):
        response.headers.setdefault("Cache-Control", "no-store")  # session data, never cached
    return response


def create_app(runtime: LaneRuntime, *, secure_cookies: bool = False) -> FastAPI:
    """Build the lane's web app around ``runtime``.

    Args:
        runtime: the lane runtime (started by the app's lifespan, closed on shutdown).
        secure_cookies: mark the session cookie ``Secure`` (when served over HTTPS; the default
            loopback HTTP server cannot).

    Returns:
        The app, ready for uvicorn or ``TestClient``.
    """

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.close()

    app = FastAPI(
        title="shouyin 收银",
        version="1",
        summary="Supermarket checkout: cashier and admin API",
        openapi_url="/api/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    for name in ("uvicorn.access", "uvicorn.error"):  # request lines may carry anything typed
        server_logger = logging.getLogger(name)
        if not any(isinstance(f, PanScrubber) for f in server_logger.filters):
            server_logger.addFilter(PanScrubber())
    app.state.runtime = runtime
    app.state.secure_cookies = secure_cookies
    install_error_handlers(app)
    app.middleware("http")(_security_headers)
    app.include_router(auth.router)
    app.include_router(events_router)
    for router in api_routers():
        app.include_router(router)

    @app.get("/", include_in_schema=False)
    async def index() -> RedirectResponse:
        return RedirectResponse("/static/cashier.html")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
