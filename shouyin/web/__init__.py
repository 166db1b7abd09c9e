"""shouyin.web: the lane's FastAPI server — REST API, cashier and admin pages, live events.

Pieces (each module's docstring says more):

* :mod:`~shouyin.web.runtime`: :class:`LaneRuntime`, everything a running server holds
  (database, hasher, event bus, terminal links, one payment orchestrator per lane);
* :mod:`~shouyin.web.app`: :func:`create_app` (routers, static pages, OpenAPI at
  ``/api/openapi.json``, the JSON error shape of :mod:`~shouyin.web.errors`);
* :mod:`~shouyin.web.auth`: sign-in, server-side sessions (cookie or bearer), CSRF, and the
  ``CurrentUser`` / ``require(Action)`` / ``AdminUser`` dependencies;
* :mod:`~shouyin.web.events`: the event bus and its Server-Sent Events stream
  (``GET /api/events``);
* :mod:`~shouyin.web.api`: one module per audience, each exposing ``router``;
* :mod:`~shouyin.web.cli`: ``shouyin serve``.

The names below are imported lazily, so that ``shouyin`` commands that do not serve pages do not
pay for importing FastAPI.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shouyin.web.app import create_app
    from shouyin.web.events import EventBus, WebEvent
    from shouyin.web.runtime import LaneRuntime

__all__ = ["EventBus", "LaneRuntime", "WebEvent", "create_app"]

_HOMES = {
    "create_app": "shouyin.web.app",
    "EventBus": "shouyin.web.events",
    "WebEvent": "shouyin.web.events",
    "LaneRuntime": "shouyin.web.runtime",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'shouyin.web' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
