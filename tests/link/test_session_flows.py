"""Random flows (hypothesis state machine): every request the cashier sends ends exactly once.

Payments, queries, progress, answers, time passing, a cut cable, corrupted bytes and reconnects in
any order. Invariants: the API only ever raises the documented local errors; at most one financial
request is in flight per side; each cashier request gets exactly one outcome (a response, a
timeout, or a place in ``LinkDead.pending`` / ``ConnectionClosed.pending``), never two, and none
is left without one once the link is healthy again and time has passed.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from shouyin.link import (
    Busy,
    ConnectionState,
    ErrorCondition,
    LinkConfig,
    LinkDead,
    LocalProtocolError,
    MessageReceived,
    PaymentKind,
    PaymentProgress,
    PaymentRequest,
    ProgressStage,
    Request,
    Response,
    ResponseTimedOut,
    Result,
    SessionReset,
    TransactionStatusRequest,
    failure_response,
)

from .helpers import make_pair

CONFIG = LinkConfig(
    heartbeat_interval=1.0,
    dead_after=3.0,
    request_timeout=2.0,
    login_timeout=2.0,
    payment_timeout=5.0,
    payment_hard_limit=12.0,
)
LOGGED_IN = (ConnectionState.READY, ConnectionState.BUSY)


class LinkFlows(RuleBasedStateMachine):
    """Drives a serial LinkPair with random actions."""

    def __init__(self) -> None:
        super().__init__()
        self.pair = make_pair("serial", config=CONFIG)
        self.sent: list[str] = []
        self.outcomes: Counter[str] = Counter()
        self.terminal_pending: list[Request] = []
        self.cable_cut = False
        self.counter = 0

    # -- plumbing ------------------------------------------------------------------------------

    def settle(self) -> None:
        self.pair.pump()
        for event in self.pair.cashier_events:
            if isinstance(event, MessageReceived) and isinstance(event.message, Response):
                if event.in_reply_to is not None:
                    self.outcomes[event.in_reply_to.service_id] += 1
            elif isinstance(event, ResponseTimedOut):
                self.outcomes[event.request.service_id] += 1
            elif isinstance(event, LinkDead):
                for request in event.pending:
                    self.outcomes[request.service_id] += 1
        for event in self.pair.terminal_events:
            if isinstance(event, MessageReceived) and isinstance(event.message, Request):
                self.terminal_pending.append(event.message)
            elif isinstance(event, SessionReset | LinkDead):
                self.terminal_pending.clear()
        self.pair.cashier_events.clear()
        self.pair.terminal_events.clear()

    def ecr_send(self, request: Request) -> None:
        try:
            self.pair.cashier.send(request, self.pair.now)
        except Busy:
            assert self.pair.cashier.in_flight is not None
            return
        except LocalProtocolError:
            assert self.pair.cashier.state not in LOGGED_IN
            return
        self.sent.append(request.service_id)
        self.settle()

    # -- rules ---------------------------------------------------------------------------------

    @rule(amount=st.integers(min_value=1, max_value=10**6))
    def pay(self, amount: int) -> None:
        self.counter += 1
        self.ecr_send(
            PaymentRequest(
                service_id=self.pair.cashier.new_service_id(),
                ecr_ref=f"L01-{self.counter}",
                amount=amount,
                kind=PaymentKind.CARD,
            )
        )

    @rule()
    def query(self) -> None:
        self.ecr_send(
            TransactionStatusRequest(service_id=self.pair.cashier.new_service_id(), ecr_ref="L01-1")
        )

    @precondition(lambda self: self.pair.terminal.in_flight is not None)
    @rule(stage=st.sampled_from(ProgressStage))
    def progress(self, stage: ProgressStage) -> None:
        in_flight = self.pair.terminal.in_flight
        assert in_flight is not None
        self.pair.terminal.send(PaymentProgress(service_id=in_flight, stage=stage), self.pair.now)
        self.settle()

    @precondition(lambda self: bool(self.terminal_pending))
    @rule(index=st.integers(min_value=0, max_value=10), approve=st.booleans())
    def answer(self, index: int, approve: bool) -> None:
        request = self.terminal_pending.pop(index % len(self.terminal_pending))
        response = failure_response(request, ErrorCondition.DECLINED)
        if approve:
            response = response.model_copy(
                update={"result": Result.SUCCESS, "error_condition": None}
            )
        try:
            self.pair.terminal.send(response, self.pair.now)
        except LocalProtocolError:
            assert self.pair.terminal.state not in LOGGED_IN
        self.settle()

    @rule(seconds=st.sampled_from([0.1, 0.5, 1.0, 2.5, 6.0, 15.0]))
    def wait(self, seconds: float) -> None:
        self.pair.advance(seconds)
        self.settle()

    @rule()
    def cut_cable(self) -> None:
        self.cable_cut = True
        self.pair.to_terminal = self.pair.to_cashier = lambda data: b""

    @rule()
    def mend_cable(self) -> None:
        self.cable_cut = False
        self.pair.to_terminal = self.pair.to_cashier = None

    @rule(byte=st.integers(min_value=0, max_value=255), where=st.integers(min_value=0))
    def corrupt_next_chunk(self, byte: int, where: int) -> None:
        def corrupt(data: bytes) -> bytes:
            self.pair.to_terminal = None
            i = where % len(data)
            return data[:i] + bytes([data[i] ^ byte]) + data[i + 1 :]

        if not self.cable_cut:
            self.pair.to_terminal = corrupt

    @precondition(lambda self: self.pair.cashier.state is ConnectionState.DISCONNECTED)
    @rule()
    def reconnect(self) -> None:
        self.pair.terminal.connection_lost(self.pair.now)
        self.settle()
        self.pair.connect()
        if self.pair.cashier.state is ConnectionState.CONNECTED:
            self.pair.cashier.login(self.pair.now)
        self.settle()

    # -- invariants ----------------------------------------------------------------------------

    @invariant()
    def each_request_has_at_most_one_outcome(self) -> None:
        assert all(count == 1 for count in self.outcomes.values()), self.outcomes
        assert set(self.outcomes) <= set(self.sent)

    @invariant()
    def busy_means_exactly_one_financial_request(self) -> None:
        for conn in (self.pair.cashier, self.pair.terminal):
            assert (conn.state is ConnectionState.BUSY) == (conn.in_flight is not None)

    def teardown(self) -> None:
        """Heal the link, let every timer run out: then every request has its one outcome."""
        self.mend_cable()
        self.pair.advance(CONFIG.payment_hard_limit + CONFIG.dead_after + 1)
        self.settle()
        if self.pair.cashier.state is not ConnectionState.DISCONNECTED:
            self.pair.cashier.close(self.pair.now)
            for event in self.pair.cashier.events():
                for request in getattr(event, "pending", ()):
                    self.outcomes[request.service_id] += 1
        assert Counter(self.sent) == self.outcomes, (self.sent, self.outcomes)


LinkFlows.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestLinkFlows = LinkFlows.TestCase
