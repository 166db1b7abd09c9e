"""Helpers for the acquirer simulator's tests: a host and a terminal session wired back to back
(no sockets, time passed in), and a loopback server runner."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TypeVar

from shouyin.acquirer import (
    AcquirerServer,
    BatchTotals,
    Faults,
    FinancialResponse,
    Host,
    HostConfig,
    Ledger,
    QueryResponse,
    SettlementResponse,
    TerminalSession,
    derive_tmk,
)
from shouyin.acquirer.fieldmap import IsoMessage
from shouyin.acquirer.session import Response

CST = timezone(timedelta(hours=8))
NOW = datetime(2025, 11, 29, 10, 30, 0, tzinfo=CST)
TID = "T0000001"
MID = "898310048161234"

T = TypeVar("T")
R = TypeVar("R")


def fixed_random(size: int) -> bytes:
    """Deterministic "random" working keys."""
    return bytes(range(size))


@dataclass
class Pair:
    """A :class:`Host` and one :class:`TerminalSession`, passing bytes to each other.

    ``trace`` counts up like a terminal's; ``now`` is the shared clock.
    """

    host: Host
    session: TerminalSession
    now: datetime = NOW
    batch: int = 1
    trace: int = 0
    delays: list[float] = field(default_factory=list)

    @classmethod
    def create(
        cls,
        ledger: Ledger | None = None,
        config: HostConfig | None = None,
        terminal_id: str = TID,
        signed_in: bool = True,
    ) -> Pair:
        host = Host(ledger or Ledger(":memory:"), config, random=fixed_random)
        pair = cls(host, TerminalSession(terminal_id, MID, derive_tmk(terminal_id)))
        if signed_in:
            pair.run(pair.session.sign_in(trace=pair.next_trace(), batch=1, now=pair.now))
        return pair

    def next_trace(self) -> int:
        self.trace += 1
        return self.trace

    def send(self, request: IsoMessage, at: datetime | None = None) -> bytes | None:
        """The host's raw answer (``None``: silence)."""
        reply = self.host.handle(self.session.encode(request), at or self.now)
        self.delays.append(reply.delay_s)
        return reply.message

    def run(self, request: IsoMessage, at: datetime | None = None) -> Response:
        """The decoded answer (fails if the host stays silent)."""
        message = self.send(request, at)
        assert message is not None, "the host did not answer"
        return self.session.decode(request, message)

    def expect(self, request: IsoMessage, kind: type[R], at: datetime | None = None) -> R:
        """The decoded answer, checked to be a ``kind``."""
        answer = self.run(request, at)
        assert isinstance(answer, kind)
        return answer

    def later(self, seconds: float) -> datetime:
        self.now = self.now + timedelta(seconds=seconds)
        return self.now

    # request shortcuts with fresh traces
    def sale(
        self,
        amount: int,
        pan: str,
        *,
        expiry: str | None = None,
        pin_block: bytes | None = None,
        trace: int | None = None,
    ) -> FinancialResponse:
        request = self.session.card_sale(
            trace=trace or self.next_trace(), batch=self.batch, amount=amount, now=self.now,
            pan=pan, expiry=expiry, pin_block=pin_block,
        )  # fmt: skip
        return self.expect(request, FinancialResponse)

    def qr(self, amount: int, code: str) -> tuple[int, FinancialResponse]:
        trace = self.next_trace()
        request = self.session.qr_sale(
            trace=trace, batch=self.batch, amount=amount, auth_code=code, now=self.now
        )
        return trace, self.expect(request, FinancialResponse)

    def query(self, trace: int, batch: int | None = None) -> QueryResponse:
        request = self.session.query(trace=trace, batch=batch or self.batch, now=self.now)
        return self.expect(request, QueryResponse)

    def settle(self, totals: BatchTotals) -> SettlementResponse:
        request = self.session.settlement(
            trace=self.next_trace(), batch=self.batch, totals=totals, now=self.now
        )
        return self.expect(request, SettlementResponse)


def run_async(factory: Callable[[], Awaitable[T]], timeout: float = 10.0) -> T:
    """Run a coroutine to completion with an overall time limit."""

    async def limited() -> T:
        return await asyncio.wait_for(factory(), timeout)

    return asyncio.run(limited())


def make_server(
    state: Path | None = None,
    faults: Faults | None = None,
    config: HostConfig | None = None,
) -> AcquirerServer:
    """A server on free loopback ports (terminal and control), not yet started."""
    ledger = Ledger.in_state_dir(state) if state is not None else Ledger(":memory:")
    return AcquirerServer(Host(ledger, config), port=0, control_port=0, faults=faults)
