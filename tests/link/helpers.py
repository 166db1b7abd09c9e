"""Test helpers: a fake link between a cashier Connection and a terminal Connection, no sleeping.

``LinkPair`` shuttles bytes between the two ends and moves a fake clock, firing timers in order,
in the manner of h11's ``ConnectionPair``. Taps can corrupt, drop or record bytes in flight.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from shouyin.link import (
    Capabilities,
    Connection,
    ConnectionState,
    Event,
    FrameRefused,
    LinkConfig,
    LoggedIn,
    LongTermKey,
    PaymentKind,
    Refusal,
    Role,
    SecurityError,
    SerialFramer,
    StreamFramer,
    Wallet,
)
from shouyin.link.framing import Framer

ECR_ID = "lane-01"
TERMINAL_ID = "T0001"
START = 1_000.0

Framing = Literal["stream", "serial"]
Tap = Callable[[bytes], bytes]
E = TypeVar("E")


def entropy(seed: int) -> Callable[[int], bytes]:
    """A deterministic random-bytes source (for exact-bytes tests)."""
    rng = random.Random(seed)
    return rng.randbytes


def ecr_capabilities() -> Capabilities:
    """What the cashier system offers."""
    return Capabilities(printer=True, display=True, max_frame_size=8192, firmware="shouyin 0.1.0")


def poi_capabilities(
    kinds: tuple[PaymentKind, ...] = (PaymentKind.CARD, PaymentKind.QR_CODE),
) -> Capabilities:
    """What the simulated terminal offers."""
    return Capabilities(
        payment_kinds=kinds,
        wallets=(Wallet.WECHAT, Wallet.ALIPAY, Wallet.UNIONPAY),
        printer=True,
        display=True,
        max_frame_size=8192,
        firmware="SIM-1.0.0",
        model="SIM-POS",
    )


def long_term_key(secret: bytes = bytes(range(32))) -> LongTermKey:
    """A pairing key shared by both ends of the tests."""
    return LongTermKey(secret, ecr_id=ECR_ID, terminal_id=TERMINAL_ID)


def framer_factory(framing: Framing) -> Callable[[], Framer]:
    """A framer factory for the chosen transport."""
    if framing == "serial":
        return functools.partial(SerialFramer, ack_timeout=0.5)
    return StreamFramer


@dataclass
class LinkPair:
    """Two Connections joined by a fake wire and a fake clock."""

    cashier: Connection
    terminal: Connection
    now: float = START
    to_terminal: Tap | None = None
    to_cashier: Tap | None = None
    wire: list[tuple[str, bytes]] = field(default_factory=list)
    cashier_events: list[Event] = field(default_factory=list)
    terminal_events: list[Event] = field(default_factory=list)

    def connect(self) -> None:
        """Both transports come up."""
        self.cashier.connection_made(self.now)
        self.terminal.connection_made(self.now)

    def pump(self, max_rounds: int = 1000) -> None:
        """Deliver bytes both ways until the wire is quiet; collect events."""
        for _ in range(max_rounds):
            moved = False
            data = self.cashier.data_to_send()
            if data:
                moved = True
                self.wire.append(("ecr->poi", data))
                if self.to_terminal is not None:
                    data = self.to_terminal(data)
                self.terminal.receive_data(data, self.now)
            data = self.terminal.data_to_send()
            if data:
                moved = True
                self.wire.append(("poi->ecr", data))
                if self.to_cashier is not None:
                    data = self.to_cashier(data)
                self.cashier.receive_data(data, self.now)
            self._collect()
            if not moved:
                return
        raise AssertionError("the link never went quiet")

    def _collect(self) -> None:
        self.cashier_events.extend(self.cashier.events())
        self.terminal_events.extend(self.terminal.events())

    def next_timer(self) -> float | None:
        """The earlier of both ends' timers."""
        timers = [
            t for t in (self.cashier.next_timer(), self.terminal.next_timer()) if t is not None
        ]
        return min(timers) if timers else None

    def advance(self, seconds: float) -> None:
        """Move the clock forward, firing every timer due on the way, in order."""
        target = self.now + seconds
        while (timer := self.next_timer()) is not None and timer <= target:
            self.now = max(self.now, timer)
            self.cashier.handle_timer(self.now)
            self.terminal.handle_timer(self.now)
            self.pump()
        self.now = target
        self.pump()

    def states(self) -> tuple[ConnectionState, ConnectionState]:
        """(cashier state, terminal state); a call, so type checkers do not narrow across it."""
        return self.cashier.state, self.terminal.state

    def login(self) -> None:
        """Log the cashier in and check both ends saw LoggedIn."""
        self.cashier.login(self.now)
        self.pump()
        assert any(isinstance(e, LoggedIn) for e in self.cashier_events), self.cashier_events
        assert any(isinstance(e, LoggedIn) for e in self.terminal_events), self.terminal_events

    def clear(self) -> None:
        """Forget recorded wire bytes and events."""
        self.wire.clear()
        self.cashier_events.clear()
        self.terminal_events.clear()


def make_pair(
    framing: Framing = "stream",
    *,
    config: LinkConfig | None = None,
    terminal_config: LinkConfig | None = None,
    paired: bool = True,
    connect: bool = True,
    login: bool = True,
    terminal_kinds: tuple[PaymentKind, ...] = (PaymentKind.CARD, PaymentKind.QR_CODE),
    seed: int = 1,
) -> LinkPair:
    """A cashier/terminal pair over ``framing``, by default connected and logged in."""
    key = long_term_key() if paired else None
    cashier = Connection(
        Role.ECR,
        ECR_ID,
        ecr_capabilities(),
        config=config,
        framer_factory=framer_factory(framing),
        long_term_key=key,
        entropy=entropy(seed),
    )
    terminal = Connection(
        Role.POI,
        TERMINAL_ID,
        poi_capabilities(terminal_kinds),
        config=terminal_config or config,
        framer_factory=framer_factory(framing),
        long_term_key=key,
        entropy=entropy(seed + 1000),
    )
    pair = LinkPair(cashier, terminal)
    if connect:
        pair.connect()
        if login and paired:
            pair.login()
            pair.clear()
    return pair


def of_type(events: Iterable[Event], kind: type[E]) -> list[E]:
    """The events of one type, in order."""
    return [e for e in events if isinstance(e, kind)]


def refusals(events: Iterable[Event]) -> list[Refusal]:
    """The security refusal reasons among ``FrameRefused`` events, in order."""
    return [
        e.error.refusal
        for e in events
        if isinstance(e, FrameRefused) and isinstance(e.error, SecurityError)
    ]
