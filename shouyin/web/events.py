"""The in-process event bus of the web app, and its Server-Sent Events stream.

Anything that the pages should see live (payment progress, a sale completed, a terminal's link
state, an admin alert) is published as a :class:`WebEvent` on the runtime's :class:`EventBus`::

    runtime.bus.publish(WebEvent("payment.progress", {...}, lane_id="L01"))
    runtime.bus.publish(WebEvent("terminal.alert", {...}, roles=ADMIN_ONLY))  # every lane

Each connected client has its own bounded queue (:class:`Subscription`): a slow or stuck browser
loses its oldest events (and is told so with a ``resync`` event, after which the page reloads
its state over REST) but never holds up the publisher or the other clients. Who sees what is
decided here, once: a client sees an event only if the event's ``lane_id`` is ``None`` (all
lanes) or its own lane, and its role is in the event's ``roles``. A cashier is never subscribed
to admin events, whatever the page asks for.

``publish`` may be called from the event loop or from a worker thread (sync code); it never
blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from shouyin.domain.users import Role

__all__ = [
    "ADMIN_ONLY",
    "ALL_ROLES",
    "STAFF",
    "EventBus",
    "Subscription",
    "WebEvent",
    "sse_format",
    "sse_stream",
]

logger = logging.getLogger(__name__)

ALL_ROLES: Final = frozenset(Role)
"""Everyone on the lane (the default audience)."""
STAFF: Final = frozenset({Role.SUPERVISOR, Role.ADMIN})
"""Supervisors and admins."""
ADMIN_ONLY: Final = frozenset({Role.ADMIN})
"""Admins only (fleet health, alerts, logs)."""

DEFAULT_QUEUE_SIZE: Final = 256
"""Events a client may fall behind by before its oldest are dropped."""


@dataclass(frozen=True, slots=True)
class WebEvent:
    """One live event.

    Attributes:
        kind: a dotted name the pages switch on (``payment.progress``, ``sale.completed``...).
        data: JSON-serialisable payload (never card data beyond the masked PAN).
        lane_id: the lane it concerns; ``None`` for every lane.
        roles: who may see it.
    """

    kind: str
    data: Mapping[str, Any] = field(default_factory=dict)
    lane_id: str | None = None
    roles: frozenset[Role] = ALL_ROLES

    def visible_to(self, lane_id: str | None, role: Role) -> bool:
        """Whether a client of ``role`` on ``lane_id`` (``None``: an admin watching every
        lane) may see this event."""
        if role not in self.roles:
            return False
        return self.lane_id is None or lane_id is None or self.lane_id == lane_id


class Subscription:
    """One client's bounded queue of events (made by :meth:`EventBus.subscribe`).

    Attributes:
        lane_id: the client's lane (``None``: every lane; admins only).
        role: the client's role.
        dropped: events lost because the client fell behind.
    """

    def __init__(self, lane_id: str | None, role: Role, maxsize: int) -> None:
        self.lane_id = lane_id
        self.role = role
        self.dropped = 0
        self._items: deque[tuple[int, WebEvent]] = deque()
        self._maxsize = maxsize
        self._ready = asyncio.Event()
        self._closed = False

    @property
    def closed(self) -> bool:
        """True once the bus closed (server shutting down)."""
        return self._closed

    def _offer(self, number: int, event: WebEvent) -> None:
        """Queue an event (on the loop); drop the oldest when full."""
        if self._closed or not event.visible_to(self.lane_id, self.role):
            return
        if len(self._items) >= self._maxsize:
            self._items.popleft()
            self.dropped += 1
        self._items.append((number, event))
        self._ready.set()

    def _close(self) -> None:
        self._closed = True
        self._ready.set()

    def pending(self) -> list[tuple[int, WebEvent]]:
        """Take every queued event now (numbered), without waiting."""
        items = list(self._items)
        self._items.clear()
        self._ready.clear()
        return items

    async def wait(self, timeout: float) -> list[tuple[int, WebEvent]]:
        """Wait up to ``timeout`` seconds for events; return them (empty on timeout or close)."""
        if not self._items and not self._closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), timeout)
        return self.pending()


class EventBus:
    """Fan-out of :class:`WebEvent` to subscribed clients (see the module docstring).

    Args:
        queue_size: each client's bound.
    """

    def __init__(self, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self.queue_size = queue_size
        self._subscribers: set[Subscription] = set()
        self._numbers = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._closed = False

    @property
    def subscribers(self) -> int:
        """How many clients are connected."""
        return len(self._subscribers)

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Deliver on ``loop`` (the server's); publishing from other threads hops onto it."""
        self._loop = loop

    @contextlib.contextmanager
    def subscribe(self, lane_id: str | None, role: Role) -> Iterator[Subscription]:
        """Subscribe a client for the ``with`` block (call on the event loop).

        Args:
            lane_id: the client's lane; ``None`` (every lane) only for admins.
            role: the client's role: decides which events it receives.
        """
        if lane_id is None and role is not Role.ADMIN:
            raise ValueError("only admins may watch every lane")
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        subscription = Subscription(lane_id, role, self.queue_size)
        if self._closed:
            subscription._close()
        with self._lock:
            self._subscribers.add(subscription)
        try:
            yield subscription
        finally:
            with self._lock:
                self._subscribers.discard(subscription)

    def publish(self, event: WebEvent) -> None:
        """Send ``event`` to every client allowed to see it; never blocks, from any thread."""
        number = next(self._numbers)
        loop = self._loop
        if loop is None or loop.is_closed():
            return  # nobody has ever subscribed: nothing to deliver
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._deliver(number, event)
        else:
            loop.call_soon_threadsafe(self._deliver, number, event)

    def _deliver(self, number: int, event: WebEvent) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for subscription in subscribers:
            subscription._offer(number, event)

    def close(self) -> None:
        """End every stream (server shutdown); later subscriptions end at once."""
        self._closed = True
        with self._lock:
            subscribers = list(self._subscribers)
        for subscription in subscribers:
            subscription._close()


def sse_format(number: int, kind: str, data: Mapping[str, Any]) -> str:
    """One Server-Sent Events message (``id``, ``event``, ``data`` lines)."""
    payload = json.dumps(dict(data), ensure_ascii=False, separators=(",", ":"))
    return f"id: {number}\nevent: {kind}\ndata: {payload}\n\n"


async def sse_stream(
    subscription: Subscription,
    *,
    lifetime: float,
    heartbeat: float = 15.0,
    alive: Callable[[], Awaitable[bool]] | None = None,
) -> AsyncIterator[str]:
    """The SSE text of a subscription for at most ``lifetime`` seconds (the browser's
    ``EventSource`` reconnects by itself), with a comment line every ``heartbeat`` seconds so
    proxies and the browser keep the connection open.

    ``alive`` (the web session check) is asked on every heartbeat tick and before every batch
    of events is sent: once it says no (signed out, session expired, account locked or
    disabled), the stream ends without sending what was queued, so an open stream never
    outlives its session.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + lifetime
    yield sse_format(0, "hello", {"lane_id": subscription.lane_id, "role": subscription.role})
    dropped = 0
    while not subscription.closed:
        left = deadline - loop.time()
        if left <= 0:
            break
        items = await subscription.wait(min(heartbeat, left))
        if alive is not None and not subscription.closed and not await alive():
            logger.info(
                "event stream of %s/%s ended: session gone", subscription.lane_id, subscription.role
            )
            return
        if subscription.dropped > dropped:
            dropped = subscription.dropped
            yield sse_format(0, "resync", {"dropped": dropped})
        if not items:
            yield ": keep-alive\n\n"
        for number, event in items:
            yield sse_format(number, event.kind, event.data)
    logger.debug("event stream of %s/%s ended", subscription.lane_id, subscription.role)
