"""Diagnostics against a lane's terminal: connection test and test-transaction suite.

:func:`connection_test` sends N ``DiagnosisRequest`` round trips over a logged-in
:class:`~shouyin.link.aio.LinkEndpoint` and measures latency (p50/p95/max), loss and reconnects,
and reads the transport (TLS version, cipher, the terminal's certificate expiry) and the
terminal's health from the answers.

:func:`transaction_suite` runs sale, status query, void, QR micropay, refund and settlement in
the terminal's **test mode** (Admin ``test_mode_start``; see :mod:`shouyin.terminal.test_mode`),
each with pass/fail and timing. In test mode the terminal answers from its test host and keeps a
separate test journal and batch, so the settlement really closes the *test* batch while the real
batch, its totals and the acquirer's ledger stay exactly as they were. The suite checks this
itself: every answer must be marked ``test`` (a step that gets an unmarked answer stops the
suite, since real money could be moving), and the real batch's totals are read before test mode
starts and after it ends and must be equal. Test mode is left at the end whatever happened (and
the terminal leaves it by itself after ``test_mode_timeout`` or a restart). ``ecr_ref`` values
start with ``DIAG-``.

:mod:`shouyin.fleet.diagnostics_report` turns the result into JSON and HTML.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cryptography import x509
from pydantic import AwareDatetime, BaseModel, ConfigDict

from shouyin.link.messages import (
    AdminRequest,
    AdminResponse,
    DiagnosisRequest,
    DiagnosisResponse,
    PaymentRequest,
    PaymentResponse,
    ReconciliationRequest,
    ReconciliationResponse,
    RefundRequest,
    Request,
    Response,
    ReversalRequest,
    TransactionStatusRequest,
    TransactionStatusResponse,
)
from shouyin.link.values import (
    AdminAction,
    PaymentKind,
    ReconciliationKind,
    Result,
    ReversalReason,
    TerminalHealth,
    Totals,
    TransactionState,
)

if TYPE_CHECKING:
    from shouyin.link.aio import LinkEndpoint

__all__ = [
    "ConnectionReport",
    "DiagnosticsReport",
    "StepResult",
    "connection_test",
    "percentile",
    "transaction_suite",
]

logger = logging.getLogger(__name__)

TEST_AMOUNT = 1
"""Fen per test transaction."""
TEST_QR_CODE = "134567890123456700"
"""A WeChat-shaped 付款码 the simulated acquirer approves (use a test wallet's code for real)."""
TEST_MODE_TIMEOUT = 600
"""Seconds the terminal stays in test mode if the suite never gets to end it (10 minutes)."""
SUITE_STEPS: tuple[str, ...] = (
    "test_mode_start",
    "sale",
    "status_query",
    "void",
    "qr_micropay",
    "refund",
    "settlement",
    "test_mode_end",
)

Progress = Callable[[str], None]


class ConnectionReport(BaseModel):
    """What the connection test measured."""

    model_config = ConfigDict(frozen=True)

    rounds: int
    answered: int
    loss_percent: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_max_ms: float | None
    reconnects: int
    transport: str | None = None
    peer: str | None = None
    tls_version: str | None = None
    cipher: str | None = None
    certificate_expires_at: AwareDatetime | None = None
    certificate_days_left: int | None = None
    acquirer_reachable: bool | None = None
    health: TerminalHealth | None = None
    terminal_summary: str | None = None


class StepResult(BaseModel):
    """One step of the test-transaction suite (or the printer test)."""

    model_config = ConfigDict(frozen=True)

    name: str
    passed: bool
    duration_ms: float
    detail: str = ""
    skipped: bool = False


class DiagnosticsReport(BaseModel):
    """Everything one ``shouyin diag`` run found, for the technician and for support."""

    terminal_id: str
    lane_id: str = ""
    started_at: AwareDatetime
    finished_at: AwareDatetime | None = None
    connection: ConnectionReport | None = None
    transactions: list[StepResult] = []
    printer: StepResult | None = None
    clock_skew_ms: float | None = None
    notes: list[str] = []

    @property
    def passed(self) -> bool:
        """True when every test that ran passed and the connection lost nothing."""
        connection_ok = self.connection is None or (
            self.connection.answered == self.connection.rounds
        )
        steps = [*self.transactions, *([self.printer] if self.printer else [])]
        return connection_ok and all(s.passed or s.skipped for s in steps)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) by nearest rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _certificate_expiry(der: bytes | None) -> datetime | None:
    if der is None:
        return None
    try:
        return x509.load_der_x509_certificate(der).not_valid_after_utc
    except ValueError:
        logger.warning("the terminal's certificate could not be parsed")
        return None


async def connection_test(
    endpoint: LinkEndpoint,
    *,
    rounds: int = 20,
    timeout: float = 2.0,
    check_acquirer: bool = True,
    on_round: Progress | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ConnectionReport:
    """N diagnosis round trips: latency, loss, reconnects, transport and certificate.

    Args:
        endpoint: a logged-in link to the terminal.
        rounds: how many round trips (bounded: 1..1000).
        timeout: seconds allowed per round trip; a round without an answer counts as lost.
        check_acquirer: ask the terminal to echo its acquirer on the first round.
        on_round: called after each round (for a progress bar).
        now: the aware current time (certificate days left).

    Returns:
        The measurements.
    """
    rounds = max(1, min(rounds, 1000))
    sessions_before = endpoint.sessions
    latencies: list[float] = []
    last: DiagnosisResponse | None = None
    acquirer: bool | None = None
    for n in range(rounds):
        request = DiagnosisRequest(
            service_id=endpoint.new_service_id(), check_acquirer=check_acquirer and n == 0
        )
        started = time.perf_counter()
        try:
            answer = await endpoint.request(request, timeout=timeout)
        except (TimeoutError, OSError, Exception) as error:  # a lost round, whatever the cause
            logger.info("diagnosis round %d lost: %s", n + 1, type(error).__name__)
            answer = None
            if not endpoint.is_ready:
                try:
                    await endpoint.wait_ready(timeout)
                except Exception:  # still down: the next rounds count as lost too
                    logger.info("link still down after round %d", n + 1)
        if isinstance(answer, DiagnosisResponse) and answer.result is Result.SUCCESS:
            latencies.append((time.perf_counter() - started) * 1000)
            last = answer
            if n == 0 and check_acquirer:
                acquirer = answer.acquirer_reachable
        if on_round is not None:
            on_round(f"round {n + 1}/{rounds}")
    info = endpoint.transport_info
    expires = _certificate_expiry(info.peer_certificate if info else None)
    p95 = percentile(latencies, 95)
    return ConnectionReport(
        rounds=rounds,
        answered=len(latencies),
        loss_percent=round(100 * (rounds - len(latencies)) / rounds, 1),
        latency_p50_ms=_ms(percentile(latencies, 50)),
        latency_p95_ms=_ms(p95),
        latency_max_ms=_ms(max(latencies) if latencies else None),
        reconnects=endpoint.sessions - sessions_before,
        transport=info.scheme.value if info else None,
        peer=info.peer if info else None,
        tls_version=info.tls_version if info else None,
        cipher=info.cipher if info else None,
        certificate_expires_at=expires,
        certificate_days_left=(expires - now()).days if expires else None,
        acquirer_reachable=acquirer,
        health=last.health if last else None,
        terminal_summary=last.message if last else None,
    )


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


class _Suite:
    """The suite's state: the endpoint, the refs it made, and the results so far."""

    def __init__(self, endpoint: LinkEndpoint, prefix: str, timeout: float) -> None:
        self.endpoint = endpoint
        self.prefix = prefix
        self.timeout = timeout
        self.results: list[StepResult] = []
        self.skew_ms: float | None = None
        self.stopped: str | None = None  # why the money steps are not run (any more)

    def ref(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    async def ask(self, build: Callable[[str], Request]) -> Response:
        if not self.endpoint.is_ready:  # a link that dropped comes back by itself: wait for it
            await self.endpoint.wait_ready(self.timeout)
        request = build(self.endpoint.new_service_id())
        return await self.endpoint.request(request, timeout=self.timeout)

    def skip(self, name: str, why: str) -> None:
        self.results.append(
            StepResult(name=name, passed=False, duration_ms=0.0, detail=why, skipped=True)
        )
        logger.info("diag step %s skipped: %s", name, why)

    async def step(self, name: str, work: Callable[[], Awaitable[str]]) -> bool:
        started = time.perf_counter()
        try:
            detail, passed = await work(), True
        except Exception as error:  # a failed step is a result, not a crash
            detail, passed = f"{type(error).__name__}: {error}"[:300], False
        duration = round((time.perf_counter() - started) * 1000, 2)
        self.results.append(
            StepResult(name=name, passed=passed, duration_ms=duration, detail=detail)
        )
        logger.info("diag step %s: %s (%.1f ms) %s", name, passed, duration, detail)
        return passed


class StepFailed(Exception):
    """A suite step got an answer that is not what a healthy terminal gives."""


class NotTestMode(StepFailed):
    """A financial answer was not marked as a test transaction: real money could be moving."""


def _expect(response: Response, kind: type[Response], *, test: bool = True) -> None:
    if not isinstance(response, kind):
        raise StepFailed(f"unexpected answer {response.type}")
    if test and response.test is not True:
        raise NotTestMode("the answer is not marked as a test transaction (测试交易)")
    if response.result is not Result.SUCCESS:
        raise StepFailed(f"{response.error_condition}: {response.message or ''}".strip())


def _fen(totals: Sequence[Totals]) -> tuple[int, int, int, int]:
    return (
        sum(t.count for t in totals),
        sum(t.amount for t in totals),
        sum(t.refund_count for t in totals),
        sum(t.refund_amount for t in totals),
    )


async def _real_totals(suite: _Suite) -> tuple[str | None, tuple[Totals, ...]]:
    """The real batch's number and totals (read outside test mode; closes nothing)."""
    answer = await suite.ask(
        lambda sid: ReconciliationRequest(service_id=sid, kind=ReconciliationKind.TOTALS)
    )
    _expect(answer, ReconciliationResponse, test=False)
    assert isinstance(answer, ReconciliationResponse)
    if answer.test:
        raise StepFailed("the terminal is still in test mode")
    return answer.batch, answer.totals


async def transaction_suite(  # noqa: PLR0915 - one closure per step, in order
    endpoint: LinkEndpoint,
    *,
    prefix: str | None = None,
    qr_code: str = TEST_QR_CODE,
    timeout: float = 60.0,
    test_mode_timeout: int = TEST_MODE_TIMEOUT,
    on_step: Progress | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> tuple[list[StepResult], float | None]:
    """Run the test-transaction suite in the terminal's test mode (see the module docstring).

    Args:
        endpoint: a logged-in link to the terminal (no payment in flight).
        prefix: the ``ecr_ref`` prefix (default ``DIAG-<date>T<time>``: digit runs stay short,
            since a terminal refuses to store a reference that looks like a card number).
        qr_code: the 付款码 for the QR micropay (a test wallet's code).
        timeout: seconds allowed per request.
        test_mode_timeout: seconds after which the terminal leaves test mode by itself, should
            the suite never get to end it (the link lost for good, the process killed).
        on_step: called with each step's name when it finishes.
        now: the aware current time (for the prefix and the clock skew).

    Returns:
        The steps' results, in :data:`SUITE_STEPS` order, and the terminal's clock skew in ms
        (terminal minus cashier system, from the test sale's transaction time; None when
        unknown).
    """
    suite = _Suite(endpoint, prefix or f"DIAG-{now():%Y%m%dT%H%M%S}", timeout)
    real_before: list[tuple[str | None, tuple[Totals, ...]]] = []

    async def test_mode_start() -> str:
        real_before.append(await _real_totals(suite))
        answer = await suite.ask(
            lambda sid: AdminRequest(
                service_id=sid,
                action=AdminAction.TEST_MODE_START,
                test_mode_timeout=test_mode_timeout,
            )
        )
        _expect(answer, AdminResponse, test=False)
        assert isinstance(answer, AdminResponse)
        if answer.test_mode is not True:
            raise StepFailed("the terminal did not confirm test mode (no test mode?)")
        until = f" until {answer.test_mode_until:%H:%M:%S}" if answer.test_mode_until else ""
        return f"test mode on{until}; real batch {real_before[0][0]}"

    async def sale() -> str:
        sent = now()
        answer = await suite.ask(
            lambda sid: PaymentRequest(
                service_id=sid,
                ecr_ref=suite.ref("SALE"),
                amount=TEST_AMOUNT,
                kind=PaymentKind.CARD,
                description="diagnostics test",
            )
        )
        _expect(answer, PaymentResponse)
        data = answer.acquirer if isinstance(answer, PaymentResponse) else None
        if data is not None and data.transaction_time is not None:
            midpoint = sent + (now() - sent) / 2
            suite.skew_ms = round((data.transaction_time - midpoint).total_seconds() * 1000, 1)
        return f"approved by the test host, rrn {data.rrn if data else '-'}"

    async def status_query() -> str:
        answer = await suite.ask(
            lambda sid: TransactionStatusRequest(service_id=sid, ecr_ref=suite.ref("SALE"))
        )
        _expect(answer, TransactionStatusResponse)
        assert isinstance(answer, TransactionStatusResponse)
        if answer.transaction is None or answer.transaction.state is not TransactionState.APPROVED:
            raise StepFailed(f"the test sale is {answer.transaction}")
        return "the test sale is found approved"

    async def void() -> str:
        answer = await suite.ask(
            lambda sid: ReversalRequest(
                service_id=sid,
                ecr_ref=suite.ref("SALE"),
                reason=ReversalReason.VOID,
                amount=TEST_AMOUNT,
            )
        )
        _expect(answer, Response)
        return "the test sale is voided"

    async def qr_micropay() -> str:
        answer = await suite.ask(
            lambda sid: PaymentRequest(
                service_id=sid,
                ecr_ref=suite.ref("QR"),
                amount=TEST_AMOUNT,
                kind=PaymentKind.QR_CODE,
                auth_code=qr_code,
            )
        )
        _expect(answer, PaymentResponse)
        data = answer.acquirer if isinstance(answer, PaymentResponse) else None
        return f"paid, wallet {data.wallet.value if data and data.wallet else '-'}"

    async def refund() -> str:
        answer = await suite.ask(
            lambda sid: RefundRequest(
                service_id=sid,
                ecr_ref=suite.ref("REFUND"),
                amount=TEST_AMOUNT,
                original_ecr_ref=suite.ref("QR"),
            )
        )
        _expect(answer, Response)
        return "the test QR payment is refunded"

    async def settlement() -> str:
        answer = await suite.ask(
            lambda sid: ReconciliationRequest(service_id=sid, kind=ReconciliationKind.SETTLEMENT)
        )
        _expect(answer, ReconciliationResponse)
        assert isinstance(answer, ReconciliationResponse)
        count, amount, refunds, refunded = _fen(answer.totals)
        return (
            f"test batch {answer.batch} settled, balanced: {count} sale(s) {amount} fen, "
            f"{refunds} refund(s) {refunded} fen"
        )

    async def test_mode_end() -> str:
        answer = await suite.ask(
            lambda sid: AdminRequest(service_id=sid, action=AdminAction.TEST_MODE_END)
        )
        _expect(answer, AdminResponse, test=False)
        assert isinstance(answer, AdminResponse)
        if answer.test_mode is not False:
            raise StepFailed("the terminal did not confirm leaving test mode")
        if not real_before:
            return "test mode off"
        batch, totals = await _real_totals(suite)
        if (batch, totals) != real_before[0]:
            raise StepFailed(
                f"the real batch moved: {real_before[0][0]} {_fen(real_before[0][1])}"
                f" -> {batch} {_fen(totals)}"
            )
        return f"test mode off; real batch {batch} and its totals unchanged"

    money = {
        "sale": sale,
        "status_query": status_query,
        "void": void,
        "qr_micropay": qr_micropay,
        "refund": refund,
        "settlement": settlement,
    }

    def done(name: str) -> None:
        if on_step is not None:
            on_step(name)

    try:
        if not await suite.step("test_mode_start", test_mode_start):
            suite.stopped = "not run: the terminal did not enter test mode"
        done("test_mode_start")
        for name, run in money.items():
            if suite.stopped is not None:
                suite.skip(name, suite.stopped)
            elif not await suite.step(name, run) and _unmarked(suite.results[-1]):
                suite.stopped = "not run: an answer was not marked as a test transaction"
            done(name)
    finally:  # whatever happened above, the terminal must not stay in test mode
        await suite.step("test_mode_end", test_mode_end)
        done("test_mode_end")
    return suite.results, suite.skew_ms


def _unmarked(result: StepResult) -> bool:
    return result.detail.startswith(NotTestMode.__name__)
