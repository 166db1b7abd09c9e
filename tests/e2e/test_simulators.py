"""Issue 4's "done when": ``shouyin acquirer sim`` and ``shouyin terminal sim`` as real
processes, the cashier system played by this test with the link library, every flow, over the
terminal's pty serial cable and over TLS.

Per transport: the terminal is paired (the one-time code over the cable; the pairing QR code's
text over TLS) and logged in; then card sales (approve, decline, insufficient funds, PIN
required, wrong PIN, expired, a slow acquirer kept alive by progress messages, an acquirer that
never answers and is reversed), QR micropay with WeChat, Alipay and UnionPay codes (SUCCESS,
USERPAYING then success, USERPAYING then failure), a merchant-presented QR, a void, status
queries, an idempotent repeat of a Payment, a reprint; the terminal is stopped (SIGTERM),
power-cut while idle (SIGKILL) and power-cut in the middle of a payment (SIGKILL), and comes
back with nothing lost; then settlement, a refund of a settled sale, and a second settlement.
Throughout, the slips, the batch totals and the acquirer's ledger are checked against what the
cashier heard and against the terminal's journal.

The timers are shortened so that the file runs in well under a minute: the terminal's state
directory is created with a short progress and QR-poll interval before its first start (the
simulator keeps the configuration of an existing state), and the acquirer's USERPAYING and
slow-issuer delays are set over its control channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shouyin.acquirer.codes import TxnKind, TxnStatus
from shouyin.acquirer.codes import Wallet as HostWallet
from shouyin.acquirer.ledger import LedgerEntry
from shouyin.acquirer.testcards import QrBehaviour, card_by_name, qr_code
from shouyin.link import (
    AcquirerData,
    DocumentKind,
    ErrorCondition,
    LinkConfig,
    LinkError,
    PaymentKind,
    PaymentProgress,
    PaymentRequest,
    PaymentResponse,
    PrintRequest,
    PrintResponse,
    ProgressStage,
    ReconciliationKind,
    ReconciliationRequest,
    ReconciliationResponse,
    RefundRequest,
    RefundResponse,
    Result,
    ReversalReason,
    ReversalRequest,
    ReversalResponse,
    Totals,
    TransactionRecord,
    TransactionState,
    TransactionStatusRequest,
    TransactionStatusResponse,
    Wallet,
)
from shouyin.link.aio import LinkEndpoint
from shouyin.terminal.cards import luhn_valid
from shouyin.terminal.records import JournalEntry, TerminalConfig
from shouyin.terminal.slips import format_fen
from shouyin.terminal.state import TerminalState

from . import TERMINAL_ID, ecr_capabilities
from .sim_helpers import (
    WAIT,
    AcquirerProcess,
    ProcessGroup,
    SerialLane,
    TerminalProcess,
    TlsLane,
    eventually,
)

MERCHANT_NAME = "收银示范超市"
MERCHANT_ID = "898310048160001"
ACQUIRER_TERMINAL = "10000001"
APPROVE_MASKED = card_by_name("approve").masked_pan
FULL_PANS = tuple(card_by_name(name).pan for name in ("approve", "pin", "slow", "no_answer"))

PAYMENT_TIMEOUT = 1.2
"""The cashier's payment timeout: shorter than the slow acquirer, so only the terminal's
progress messages keep a slow payment alive."""
SLOW_ISSUER_MS = 2000
ACQUIRER_TIMEOUT = 3.5
"""The terminal's wait for each acquirer answer (longer than the slow issuer)."""
ECR_CONFIG = LinkConfig(
    heartbeat_interval=0.5,
    dead_after=2.0,
    request_timeout=5.0,
    login_timeout=3.0,
    pairing_timeout=5.0,
    payment_timeout=PAYMENT_TIMEOUT,
    payment_hard_limit=30.0,
)
TERMINAL_CONFIG = TerminalConfig(
    terminal_id=TERMINAL_ID,
    progress_interval=0.3,
    qr_poll_interval=0.3,
    reversal_retry=0.5,
    card_timeout=20.0,
)
READER_RULES = [
    {"ecr_ref": "C-DECLINE-.*", "card": "decline"},
    {"ecr_ref": "C-INSUFF-.*", "card": "insufficient"},
    {"ecr_ref": "C-PIN-.*", "card": "pin"},
    {"ecr_ref": "C-WRONGPIN-.*", "card": "pin", "pin": "wrong"},
    {"ecr_ref": "C-EXPIRED-.*", "card": "expired"},
    {"ecr_ref": "C-SLOW-.*", "card": "slow", "entry": "swipe"},
    {"ecr_ref": "C-NOANS-.*", "card": "no_answer"},
    {"ecr_ref": "R-CUT-.*", "card": "slow"},
]
"""Which test card the "customer" presents, by the cashier's reference (else: ``approve``)."""
SCENARIO_LIMIT = 50.0


# -- the cashier's side ----------------------------------------------------------------------------


@dataclass
class Cashier:
    """The cashier system: sends requests through the logged-in endpoint and remembers what it
    heard, so that the totals can be checked against it."""

    endpoint: LinkEndpoint
    approved: dict[str, PaymentResponse] = field(default_factory=dict)
    refunds: dict[str, RefundResponse] = field(default_factory=dict)

    async def pay(
        self,
        ecr_ref: str,
        amount: int,
        kind: PaymentKind = PaymentKind.CARD,
        auth_code: str | None = None,
    ) -> tuple[PaymentResponse, list[PaymentProgress]]:
        """A Payment; its response and the progress messages that came before it."""
        progress: list[PaymentProgress] = []
        request = PaymentRequest(
            service_id=self.endpoint.new_service_id(),
            ecr_ref=ecr_ref,
            amount=amount,
            kind=kind,
            auth_code=auth_code,
        )
        response = await self.endpoint.request(request, on_progress=progress.append, timeout=WAIT)
        assert isinstance(response, PaymentResponse)
        assert response.ecr_ref == ecr_ref
        if response.result is Result.SUCCESS:
            self.approved[ecr_ref] = response
        return response, progress

    async def status(self, ecr_ref: str) -> TransactionStatusResponse:
        """查询 by ``ecr_ref``."""
        request = TransactionStatusRequest(
            service_id=self.endpoint.new_service_id(), ecr_ref=ecr_ref
        )
        response = await self.endpoint.request(request, timeout=WAIT)
        assert isinstance(response, TransactionStatusResponse)
        return response

    async def record(self, ecr_ref: str) -> TransactionRecord:
        """What the terminal remembers of ``ecr_ref`` (it must know it)."""
        response = await self.status(ecr_ref)
        assert response.result is Result.SUCCESS and response.transaction is not None, response
        return response.transaction

    async def void(self, ecr_ref: str) -> ReversalResponse:
        """撤销 of an approved payment in the open batch."""
        request = ReversalRequest(
            service_id=self.endpoint.new_service_id(), ecr_ref=ecr_ref, reason=ReversalReason.VOID
        )
        response = await self.endpoint.request(request, timeout=WAIT)
        assert isinstance(response, ReversalResponse)
        if response.result is Result.SUCCESS:
            self.approved.pop(ecr_ref, None)
        return response

    async def refund(self, ecr_ref: str, amount: int, original: str) -> RefundResponse:
        """退货 of ``amount`` against the payment ``original``."""
        request = RefundRequest(
            service_id=self.endpoint.new_service_id(),
            ecr_ref=ecr_ref,
            amount=amount,
            original_ecr_ref=original,
        )
        response = await self.endpoint.request(request, timeout=WAIT)
        assert isinstance(response, RefundResponse)
        if response.result is Result.SUCCESS:
            self.refunds[ecr_ref] = response
        return response

    async def settle(self) -> ReconciliationResponse:
        """结算: close the batch."""
        request = ReconciliationRequest(
            service_id=self.endpoint.new_service_id(), kind=ReconciliationKind.SETTLEMENT
        )
        response = await self.endpoint.request(request, timeout=WAIT)
        assert isinstance(response, ReconciliationResponse)
        return response

    async def reprint(self, trace: str) -> PrintResponse:
        """Reprint the card slip with ``trace``."""
        request = PrintRequest(
            service_id=self.endpoint.new_service_id(),
            document=DocumentKind.CARD_SLIP,
            lines=(trace,),
        )
        response = await self.endpoint.request(request, timeout=WAIT)
        assert isinstance(response, PrintResponse)
        return response

    def expected_totals(self) -> dict[tuple[PaymentKind, Wallet | None], list[int]]:
        """Per (kind, wallet): [sales, amount, refunds, refund amount] as the cashier heard them;
        then forgotten (a new batch starts)."""
        sums: dict[tuple[PaymentKind, Wallet | None], list[int]] = {}
        for payment in self.approved.values():
            assert payment.kind is not None and payment.amount is not None
            wallet = payment.acquirer.wallet if payment.acquirer else None
            row = sums.setdefault((payment.kind, wallet), [0, 0, 0, 0])
            row[0] += 1
            row[1] += payment.amount
        for refund in self.refunds.values():
            kind, wallet = PaymentKind.CARD, refund.acquirer.wallet if refund.acquirer else None
            assert refund.amount is not None
            row = sums.setdefault((kind, wallet), [0, 0, 0, 0])
            row[2] += 1
            row[3] += refund.amount
        self.approved.clear()
        self.refunds.clear()
        return sums


def totals_map(totals: tuple[Totals, ...]) -> dict[tuple[PaymentKind, Wallet | None], list[int]]:
    """Settlement totals as the same shape as :meth:`Cashier.expected_totals`."""
    return {
        (t.kind, t.wallet): [t.count, t.amount, t.refund_count, t.refund_amount] for t in totals
    }


def stages(progress: list[PaymentProgress]) -> list[ProgressStage]:
    """The stages the terminal reported."""
    return [message.stage for message in progress]


# -- checks ----------------------------------------------------------------------------------------

_DIGIT_RUN = re.compile(r"(?<![0-9])[0-9]{13,19}(?![0-9])")


def assert_no_full_pan(text: str) -> None:
    """Nothing in ``text`` looks like a full card number (first 6 + last 4 at most)."""
    for pan in FULL_PANS:
        assert pan not in text
    for run in _DIGIT_RUN.findall(text):
        assert not luhn_valid(run), f"a card-number-like run of digits: {run[:6]}..."


def check_slip(lines: list[str], data: AcquirerData, amount: int, *, kind: str = "消费") -> None:
    """The slip carries DESIGN.md §6's fields: merchant name and number, terminal number,
    masked card (never the full number), batch and trace, auth code, reference number, amount."""
    assert data.batch is not None and data.trace is not None
    assert f"商户名称: {MERCHANT_NAME}" in lines
    assert f"商户编号: {MERCHANT_ID}" in lines
    assert f"终端编号: {ACQUIRER_TERMINAL}" in lines
    assert f"批次号: {data.batch}  凭证号: {data.trace}" in lines
    assert f"授权码: {data.auth_code or ''}" in lines
    assert data.rrn is not None and f"参考号: {data.rrn}" in lines
    sign = "-" if kind != "消费" else ""
    assert f"金额: {sign}{format_fen(amount)}" in lines
    assert any(line.startswith(f"交易类型: {kind}") for line in lines)
    assert any(line.startswith("日期/时间: ") for line in lines)
    if data.masked_pan is not None:
        assert any(line.startswith(f"卡号: {data.masked_pan}") for line in lines)
    if data.wallet is not None:
        assert f"钱包: {data.wallet.value}" in lines
    assert_no_full_pan("\n".join(lines))


def ledger_totals(rows: list[LedgerEntry]) -> dict[HostWallet | None, list[int]]:
    """The acquirer's view: approved or settled sales and refunds, per wallet (None: card)."""
    sums: dict[HostWallet | None, list[int]] = {}
    for row in rows:
        if row.status not in (TxnStatus.APPROVED, TxnStatus.SETTLED):
            continue
        slot = sums.setdefault(row.wallet, [0, 0, 0, 0])
        if row.kind in (TxnKind.SALE, TxnKind.QR):
            slot[0] += 1
            slot[1] += row.amount
        elif row.kind is TxnKind.REFUND:
            slot[2] += 1
            slot[3] += row.amount
    return sums


def by_wallet(
    totals: dict[tuple[PaymentKind, Wallet | None], list[int]],
) -> dict[HostWallet | None, list[int]]:
    """Terminal totals folded per wallet, as the acquirer counts them."""
    sums: dict[HostWallet | None, list[int]] = {}
    for (_, wallet), values in totals.items():
        slot = sums.setdefault(HostWallet(wallet.value) if wallet else None, [0, 0, 0, 0])
        for index, value in enumerate(values):
            slot[index] += value
    return sums


def check_ledger_matches_journal(journal: list[JournalEntry], rows: list[LedgerEntry]) -> None:
    """Every terminal transaction is in the acquirer's ledger with the same outcome, and the
    ledger holds nothing the terminal does not know (no double charge)."""
    money = {row.trace: row for row in rows if row.kind is not TxnKind.REVERSAL}
    reversals = {row.trace for row in rows if row.kind is TxnKind.REVERSAL}
    traces: set[int] = set()
    for entry in journal:
        if entry.trace is None:  # never sent (a wallet code refused before the acquirer)
            continue
        trace = int(entry.trace)
        traces.add(trace)
        row = money.get(trace)
        if entry.state is TransactionState.REVERSED:
            assert trace in reversals, entry.ecr_ref
            assert row is None or row.status is TxnStatus.REVERSED, (entry.ecr_ref, row)
            continue
        assert row is not None, f"{entry.ecr_ref} (trace {trace}) is not in the ledger"
        assert row.amount == entry.amount, entry.ecr_ref
        if entry.state is TransactionState.APPROVED:
            assert row.status in (TxnStatus.APPROVED, TxnStatus.SETTLED), (entry.ecr_ref, row)
            assert entry.acquirer is not None
            assert row.rrn == entry.acquirer.rrn
            assert row.auth_code == entry.acquirer.auth_code
            assert row.masked_pan == entry.acquirer.masked_pan
        elif entry.state is TransactionState.VOIDED:
            assert row.status is TxnStatus.VOIDED, (entry.ecr_ref, row)
            assert entry.void_trace is not None
            traces.add(int(entry.void_trace))
            void = money[int(entry.void_trace)]
            assert void.kind is TxnKind.VOID and void.original_id == row.id
        else:
            assert entry.state is TransactionState.DECLINED, entry
            assert row.status is TxnStatus.DECLINED, (entry.ecr_ref, row)
    assert set(money) == traces, "the ledger and the journal name different transactions"
    for row in rows:
        assert_no_full_pan(row.model_dump_json())


# -- the flows -------------------------------------------------------------------------------------


async def card_flows(cashier: Cashier, terminal: TerminalProcess) -> PaymentResponse:
    """Approve (with the slip), decline, insufficient funds, PIN, wrong PIN, expired card."""
    approved, progress = await cashier.pay("C-APPROVE-1", 1234)
    assert approved.result is Result.SUCCESS and approved.amount == 1234
    data = approved.acquirer
    assert data is not None and data.masked_pan == APPROVE_MASKED
    assert data.rrn is not None and data.auth_code is not None and data.batch == "000001"
    assert stages(progress)[0] is ProgressStage.PRESENT_CARD
    assert {ProgressStage.CONTACTING_ACQUIRER, ProgressStage.SIGNATURE} <= set(stages(progress))
    assert data.trace is not None
    slip = await terminal.slip(data.trace)
    check_slip(slip, data, 1234)
    assert any(line.startswith("持卡人签名: [电子签名 SIG-000001-") for line in slip)

    declined, _ = await cashier.pay("C-DECLINE-1", 2001)
    assert declined.result is Result.FAILURE
    assert declined.error_condition is ErrorCondition.DECLINED

    insufficient, progress = await cashier.pay("C-INSUFF-1", 2002)
    assert insufficient.error_condition is ErrorCondition.INSUFFICIENT_FUNDS
    assert ProgressStage.PIN_ENTRY in stages(progress)

    pin, progress = await cashier.pay("C-PIN-1", 2003)
    assert pin.result is Result.SUCCESS, pin
    assert ProgressStage.PIN_ENTRY in stages(progress)

    wrong, _ = await cashier.pay("C-WRONGPIN-1", 2004)
    assert wrong.error_condition is ErrorCondition.WRONG_PIN

    expired, _ = await cashier.pay("C-EXPIRED-1", 2005)
    assert expired.error_condition is ErrorCondition.INVALID_CARD
    assert expired.message is not None and "(54)" in expired.message
    return approved


async def slow_and_silent_acquirer(
    cashier: Cashier, terminal: TerminalProcess, acquirer: AcquirerProcess
) -> None:
    """A slow acquirer: longer than the cashier's payment timeout, kept alive by progress.
    An acquirer that never answers: failure, and the terminal reverses the sale (0400)."""
    started = time.monotonic()
    slow, progress = await cashier.pay("C-SLOW-1", 2006)
    took = time.monotonic() - started
    assert slow.result is Result.SUCCESS, slow
    assert took > PAYMENT_TIMEOUT + 0.3, took
    assert stages(progress).count(ProgressStage.PROCESSING) >= 2

    silent, _ = await cashier.pay("C-NOANS-1", 2007)
    assert silent.result is Result.FAILURE
    assert silent.error_condition is ErrorCondition.TIMEOUT

    async def reversed_() -> bool:
        return (await cashier.record("C-NOANS-1")).state is TransactionState.REVERSED

    await eventually(reversed_)
    assert (await terminal.control({"cmd": "reversals"}))["reversals"] == []
    assert silent.acquirer is not None and silent.acquirer.trace is not None
    trace = int(silent.acquirer.trace)
    rows = [r for r in await acquirer.ledger(ACQUIRER_TERMINAL, 1) if r.trace == trace]
    assert {(r.kind, r.status) for r in rows} == {
        (TxnKind.SALE, TxnStatus.REVERSED),
        (TxnKind.REVERSAL, TxnStatus.APPROVED),
    }


async def qr_flows(cashier: Cashier, terminal: TerminalProcess) -> None:
    """Micropay with each wallet's code: SUCCESS, USERPAYING -> SUCCESS, USERPAYING -> failure;
    then a merchant-presented code."""
    amount = 3000
    for wallet in (Wallet.WECHAT, Wallet.ALIPAY, Wallet.UNIONPAY):
        for behaviour in (
            QrBehaviour.SUCCESS,
            QrBehaviour.USERPAYING_SUCCESS,
            QrBehaviour.USERPAYING_FAIL,
        ):
            amount += 11
            code = qr_code(HostWallet(wallet.value), behaviour)
            ref = f"Q-{wallet.value}-{behaviour.value}".replace("_", "-")
            response, progress = await cashier.pay(ref, amount, PaymentKind.QR_CODE, code)
            waited = ProgressStage.WAITING_FOR_CUSTOMER in stages(progress)
            assert waited is (behaviour is not QrBehaviour.SUCCESS), (ref, stages(progress))
            if behaviour is QrBehaviour.USERPAYING_FAIL:
                assert response.result is Result.FAILURE, response
                assert response.error_condition is ErrorCondition.DECLINED
                continue
            assert response.result is Result.SUCCESS, response
            assert response.acquirer is not None and response.acquirer.wallet is wallet
            assert response.acquirer.wallet_order_id is not None
            assert code not in response.model_dump_json()  # the customer's code is not echoed
            assert response.acquirer.trace is not None
            slip = await terminal.slip(response.acquirer.trace)
            check_slip(slip, response.acquirer, amount)
            assert f"订单号: {response.acquirer.wallet_order_id}" in slip

    unknown, _ = await cashier.pay("Q-UNKNOWN", 3999, PaymentKind.QR_CODE, "9912345678901234")
    assert unknown.error_condition is ErrorCondition.INVALID_CODE

    merchant, progress = await cashier.pay("MQR-1", 3100, PaymentKind.MERCHANT_QR)
    assert merchant.result is Result.SUCCESS, merchant
    shown = [p for p in progress if p.stage is ProgressStage.SHOWING_QR]
    assert shown and shown[0].message, "the terminal shows the code to scan"
    assert merchant.acquirer is not None and merchant.acquirer.wallet is not None


async def after_sale_flows(
    cashier: Cashier, terminal: TerminalProcess, acquirer: AcquirerProcess, first: PaymentResponse
) -> None:
    """Void, status queries, an idempotent repeat (the ledger shows one sale), and a reprint."""
    sale, _ = await cashier.pay("V-SALE-1", 4100)
    assert sale.result is Result.SUCCESS
    void = await cashier.void("V-SALE-1")
    assert void.result is Result.SUCCESS, void
    assert void.acquirer is not None and void.acquirer.trace is not None
    check_slip(await terminal.slip(void.acquirer.trace), void.acquirer, 4100, kind="撤销")
    assert (await cashier.record("V-SALE-1")).state is TransactionState.VOIDED
    again = await cashier.void("V-SALE-1")
    assert again.result is Result.SUCCESS  # already voided: nothing more happens

    record = await cashier.record("C-APPROVE-1")
    assert record.state is TransactionState.APPROVED and record.acquirer == first.acquirer
    assert (await cashier.record("C-DECLINE-1")).state is TransactionState.DECLINED
    missing = await cashier.status("NEVER-SEEN")
    assert missing.error_condition is ErrorCondition.NOT_FOUND and missing.transaction is None

    before = await acquirer.ledger(ACQUIRER_TERMINAL)
    repeat, _ = await cashier.pay("C-APPROVE-1", 1234)
    assert repeat.result is Result.SUCCESS and repeat.acquirer == first.acquirer
    other, _ = await cashier.pay("C-APPROVE-1", 999)
    assert other.error_condition is ErrorCondition.NOT_ALLOWED
    after = await acquirer.ledger(ACQUIRER_TERMINAL)
    assert after == before, "a repeated Payment reached the acquirer"
    assert first.acquirer is not None
    assert [r.kind for r in after if r.rrn == first.acquirer.rrn] == [TxnKind.SALE]


async def reprint(cashier: Cashier, terminal: TerminalProcess, first: PaymentResponse) -> None:
    """Reprint the first sale's slip: the same slip, marked as a reprint."""
    assert first.acquirer is not None and first.acquirer.trace is not None
    answer = await cashier.reprint(first.acquirer.trace)
    assert answer.result is Result.SUCCESS, answer
    latest = await terminal.last_printout()
    assert latest["document"] == DocumentKind.CARD_SLIP.value
    lines = latest["text"].split("\n")
    check_slip(lines, first.acquirer, 1234)
    assert "重打印 REPRINT" in lines


async def snapshot(cashier: Cashier, journal: list[JournalEntry]) -> dict[str, TransactionRecord]:
    """What a status query says of every transaction in ``journal``."""
    return {entry.ecr_ref: await cashier.record(entry.ecr_ref) for entry in journal}


async def restarts(
    lane: SerialLane | TlsLane,
    cashier: Cashier,
    terminal: TerminalProcess,
    acquirer: AcquirerProcess,
) -> None:
    """Mid-batch: SIGTERM, SIGKILL while idle, SIGKILL during a payment. Each time the terminal
    comes back on its state: every earlier transaction answers the status query as before, the
    batch continues with the next trace, and the interrupted payment is reversed."""
    known = await snapshot(cashier, await terminal.journal())
    for how, ref in (("SIGTERM", "R-TERM-1"), ("SIGKILL", "R-KILL-1")):
        last_trace = (await terminal.status())["last_trace"]
        lane.going_down()
        if how == "SIGTERM":
            assert await terminal.stop() == 0
        else:
            assert await terminal.power_cut() == -signal.SIGKILL
        await lane.restart()
        assert await snapshot(cashier, await terminal.journal()) == known, how
        response, _ = await cashier.pay(ref, 5100)
        assert response.result is Result.SUCCESS, (how, response)
        assert response.acquirer is not None and response.acquirer.batch == "000001"
        assert response.acquirer.trace == f"{int(last_trace) + 1:06d}", how
        known[ref] = await cashier.record(ref)

    # The power goes while the acquirer is working on a sale: unknown outcome, reversed.
    processing = asyncio.Event()

    def watch(message: PaymentProgress) -> None:
        if message.stage is ProgressStage.PROCESSING:
            processing.set()

    request = PaymentRequest(
        service_id=cashier.endpoint.new_service_id(),
        ecr_ref="R-CUT-1",
        amount=5200,
        kind=PaymentKind.CARD,
    )
    payment = asyncio.ensure_future(
        cashier.endpoint.request(request, on_progress=watch, timeout=WAIT)
    )
    await asyncio.wait_for(processing.wait(), WAIT)
    lane.going_down()
    assert await terminal.power_cut() == -signal.SIGKILL
    with pytest.raises((LinkError, TimeoutError)):  # the cashier never hears: unknown outcome
        await asyncio.wait_for(payment, WAIT)
    await lane.restart()
    assert (await terminal.expect("recovered"))["closed"] == 1

    async def reversed_() -> bool:
        return (await cashier.record("R-CUT-1")).state is TransactionState.REVERSED

    await eventually(reversed_)
    after = await snapshot(cashier, await terminal.journal())
    assert after.pop("R-CUT-1").state is TransactionState.REVERSED
    assert after == known
    cut = await terminal.control({"cmd": "journal", "ecr_ref": "R-CUT-1"})
    trace = int(cut["entry"]["trace"])
    rows = [r for r in await acquirer.ledger(ACQUIRER_TERMINAL, 1) if r.trace == trace]
    assert {(r.kind, r.status) for r in rows} == {
        (TxnKind.SALE, TxnStatus.REVERSED),
        (TxnKind.REVERSAL, TxnStatus.APPROVED),
    }


async def settlements(
    cashier: Cashier, terminal: TerminalProcess, acquirer: AcquirerProcess
) -> None:
    """Settle batch 1 (totals = what the cashier heard = the journal = the ledger), refund a
    settled sale in batch 2, settle batch 2."""
    journal = await terminal.journal()
    expected = cashier.expected_totals()
    settled = await cashier.settle()
    assert settled.result is Result.SUCCESS, settled  # the acquirer's totals agree
    assert settled.batch == "000001"
    got = totals_map(settled.totals)
    assert got == expected
    from_journal: Counter[tuple[PaymentKind, Wallet | None]] = Counter()
    for entry in journal:
        if entry.state is TransactionState.APPROVED:
            from_journal[(entry.payment_kind, entry.wallet)] += entry.amount
    assert {key: values[1] for key, values in got.items()} == dict(from_journal)
    report = await terminal.last_printout()
    assert report["document"] == DocumentKind.REPORT.value and "对账平" in report["text"]

    rows = await acquirer.ledger(ACQUIRER_TERMINAL, 1)
    check_ledger_matches_journal(journal, rows)
    assert ledger_totals(rows) == by_wallet(got)
    kinds = Counter(row.kind for row in rows)
    assert kinds[TxnKind.REVERSAL] == 2 and kinds[TxnKind.VOID] == 1
    assert (await terminal.status())["batch"] == "000002"

    refund = await cashier.refund("RF-1", 1000, original="C-PIN-1")
    assert refund.result is Result.SUCCESS, refund
    assert refund.acquirer is not None and refund.acquirer.batch == "000002"
    assert refund.acquirer.masked_pan == card_by_name("pin").masked_pan
    assert refund.acquirer.trace is not None
    check_slip(await terminal.slip(refund.acquirer.trace), refund.acquirer, 1000, kind="退货")
    repeat = await cashier.refund("RF-1", 1000, original="C-PIN-1")
    assert repeat.acquirer == refund.acquirer  # the same refund, not a second one
    sale, _ = await cashier.pay("B2-SALE-1", 6100)
    assert sale.result is Result.SUCCESS

    journal = await terminal.journal()
    expected = cashier.expected_totals()
    second = await cashier.settle()
    assert second.result is Result.SUCCESS and second.batch == "000002", second
    assert totals_map(second.totals) == expected == {(PaymentKind.CARD, None): [1, 6100, 1, 1000]}
    rows = await acquirer.ledger(ACQUIRER_TERMINAL, 2)
    check_ledger_matches_journal(journal, rows)
    refunds = [row for row in rows if row.kind is TxnKind.REFUND]
    assert len(refunds) == 1 and refunds[0].status is TxnStatus.SETTLED
    assert ledger_totals(rows) == {None: [1, 6100, 1, 1000]}


# -- the test --------------------------------------------------------------------------------------


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[ProcessGroup]:
    """Every child process of the test; the finaliser kills whatever still runs."""
    group = ProcessGroup(tmp_path)
    yield group
    group.close()


def new_terminal_state(directory: Path) -> None:
    """The terminal's state directory with short timers (kept by the simulator afterwards)."""
    TerminalState(directory, TERMINAL_CONFIG).close()


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["serial", "tls"])
def test_simulators_run_every_flow_and_lose_nothing_across_restarts(
    transport: str, tmp_path: Path, processes: ProcessGroup
) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps(READER_RULES))
    state = tmp_path / "terminal"
    new_terminal_state(state)

    async def scenario() -> None:
        acquirer = await AcquirerProcess(processes, tmp_path / "acquirer").start()
        await acquirer.call("config", userpaying_ms=200, slow_issuer_ms=SLOW_ISSUER_MS)
        terminal = TerminalProcess(
            processes,
            [
                "--state-dir",
                str(state),
                "--acquirer",
                acquirer.url,
                "--acquirer-timeout",
                str(ACQUIRER_TIMEOUT),
                "--rules",
                str(rules),
                "--dead-after",
                "2",
                "--log-level",
                "INFO",
            ],
        )
        lane: SerialLane | TlsLane
        if transport == "serial":
            lane = SerialLane(terminal, ECR_CONFIG, ecr_capabilities())
        else:
            lane = TlsLane(terminal, tmp_path / "ecr", ECR_CONFIG, ecr_capabilities())
        try:
            cashier = Cashier(await lane.start())
            first = await card_flows(cashier, terminal)
            await slow_and_silent_acquirer(cashier, terminal, acquirer)
            await qr_flows(cashier, terminal)
            await after_sale_flows(cashier, terminal, acquirer, first)
            await restarts(lane, cashier, terminal, acquirer)
            await reprint(cashier, terminal, first)
            await settlements(cashier, terminal, acquirer)
            assert await terminal.stop() == 0
        finally:
            await lane.close()
            with contextlib.suppress(Exception):
                await acquirer.close()

    asyncio.run(asyncio.wait_for(scenario(), SCENARIO_LIMIT))
    log = (tmp_path / "terminal.log").read_text(errors="replace")
    assert_no_full_pan(log + (tmp_path / "terminal.out").read_text(errors="replace"))
