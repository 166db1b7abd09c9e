"""The cashier side's requests awaiting an answer: deadlines, the one financial request in flight,
and a short memory of timed-out requests so that a late answer is reported, never dropped.

A financial request (Payment, Refund, Reversal, Reconciliation) has two deadlines: an inactivity
deadline that every progress message from the terminal pushes back by ``payment_timeout``, and a
hard limit ``payment_hard_limit`` after sending that nothing pushes back. Other requests have one
deadline, ``request_timeout``. Heartbeats are tracked here too but never reported as timed out:
silence is judged by the connection's ``dead_after``.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from shouyin.link.config import LinkConfig
from shouyin.link.events import TimeoutReason
from shouyin.link.messages import Request, Response, response_type_for

__all__ = ["Outstanding", "PendingRequests"]


@dataclass(slots=True)
class Outstanding:
    """One request awaiting its answer."""

    request: Request
    deadline: float
    hard_deadline: float | None
    financial: bool

    @property
    def due(self) -> float:
        """The earlier of the two deadlines."""
        if self.hard_deadline is None:
            return self.deadline
        return min(self.deadline, self.hard_deadline)


class PendingRequests:
    """Requests sent and not yet answered, keyed by ``service_id``."""

    def __init__(self, config: LinkConfig) -> None:
        self._config = config
        self._outstanding: dict[str, Outstanding] = {}
        self._expired: OrderedDict[str, Request] = OrderedDict()
        self.financial: str | None = None
        self.heartbeat: str | None = None

    def __contains__(self, service_id: object) -> bool:
        return service_id in self._outstanding

    def add(
        self, request: Request, now: float, *, financial: bool, heartbeat: bool = False
    ) -> None:
        """Track a request just sent."""
        config = self._config
        if financial:
            self.financial = request.service_id
            entry = Outstanding(
                request, now + config.payment_timeout, now + config.payment_hard_limit, True
            )
        else:
            entry = Outstanding(request, now + config.request_timeout, None, False)
        if heartbeat:
            self.heartbeat = request.service_id
        self._outstanding[request.service_id] = entry

    def answer(self, response: Response) -> Outstanding | None:
        """Pop the request ``response`` answers, or return ``None`` if it answers none pending."""
        entry = self._outstanding.get(response.service_id)
        if entry is None or not isinstance(response, response_type_for(entry.request)):
            return None
        self._forget(response.service_id)
        return entry

    def late(self, response: Response) -> Request | None:
        """Pop the timed-out request ``response`` answers, if remembered."""
        request = self._expired.get(response.service_id)
        if request is None or not isinstance(response, response_type_for(request)):
            return None
        del self._expired[response.service_id]
        return request

    def progress(self, service_id: str, now: float) -> Request | None:
        """Restart the inactivity deadline of the financial request ``service_id``."""
        entry = self._outstanding.get(service_id)
        if entry is None or not entry.financial:
            return None
        entry.deadline = now + self._config.payment_timeout
        return entry.request

    def expire(self, now: float) -> list[tuple[Outstanding, TimeoutReason | None]]:
        """Pop every request past its deadline, with the reason (``None`` for heartbeats)."""
        expired: list[tuple[Outstanding, TimeoutReason | None]] = []
        for service_id, entry in list(self._outstanding.items()):
            if now < entry.due:
                continue
            is_heartbeat = service_id == self.heartbeat
            self._forget(service_id)
            if is_heartbeat:
                expired.append((entry, None))
                continue
            if not entry.financial:
                reason = TimeoutReason.NO_RESPONSE
            elif entry.hard_deadline is not None and now >= entry.hard_deadline:
                reason = TimeoutReason.HARD_LIMIT
            else:
                reason = TimeoutReason.INACTIVITY
            self._expired[service_id] = entry.request
            while len(self._expired) > self._config.late_response_memory:
                self._expired.popitem(last=False)
            expired.append((entry, reason))
        return expired

    def next_due(self) -> float | None:
        """The earliest deadline, or ``None``."""
        return min((entry.due for entry in self._outstanding.values()), default=None)

    def requests(self) -> tuple[Request, ...]:
        """The pending requests, heartbeats excluded, in the order they were sent."""
        return tuple(
            entry.request for sid, entry in self._outstanding.items() if sid != self.heartbeat
        )

    def clear(self) -> None:
        """Forget every pending request (the session ended); late-answer memory is kept."""
        self._outstanding.clear()
        self.financial = self.heartbeat = None

    def _forget(self, service_id: str) -> None:
        del self._outstanding[service_id]
        if service_id == self.financial:
            self.financial = None
        if service_id == self.heartbeat:
            self.heartbeat = None
