"""Void, refund, settlement, slips and the non-financial requests of the terminal."""

from __future__ import annotations

import hashlib
from pathlib import Path

from shouyin.acquirer.codes import Wallet as HostWallet
from shouyin.acquirer.testcards import qr_code
from shouyin.link import (
    AdminAction,
    AdminRequest,
    AdminResponse,
    DiagnosisRequest,
    DiagnosisResponse,
    DisplayRequest,
    DocumentKind,
    ErrorCondition,
    FirmwarePackage,
    NotificationKind,
    PaperState,
    PaymentKind,
    PaymentRequest,
    PaymentResponse,
    PowerSource,
    PrintRequest,
    ReconciliationKind,
    ReconciliationRequest,
    ReconciliationResponse,
    RefundRequest,
    RefundResponse,
    Result,
    ReversalReason,
    ReversalRequest,
    ReversalResponse,
    TransactionState,
    Wallet,
)
from shouyin.terminal.faults import AcquirerFault, FaultPlan
from tests.terminal import Harness, run_virtual


def pay(h: Harness, ecr_ref: str, amount: int = 1234) -> PaymentRequest:
    return PaymentRequest(service_id=h.sid(), ecr_ref=ecr_ref, amount=amount, kind=PaymentKind.CARD)


def void(h: Harness, ecr_ref: str) -> ReversalRequest:
    return ReversalRequest(service_id=h.sid(), ecr_ref=ecr_ref, reason=ReversalReason.VOID)


def refund(h: Harness, ecr_ref: str, original: str, amount: int) -> RefundRequest:
    return RefundRequest(
        service_id=h.sid(), ecr_ref=ecr_ref, amount=amount, original_ecr_ref=original
    )


def settle(
    h: Harness, kind: ReconciliationKind = ReconciliationKind.SETTLEMENT
) -> ReconciliationRequest:
    return ReconciliationRequest(service_id=h.sid(), kind=kind)


def test_void_cancels_an_approved_sale_of_the_open_batch(tmp_path: Path) -> None:
    async def main() -> None:
        async with Harness(tmp_path) as h:
            await h.ask(pay(h, "R1"))
            answer = await h.ask(void(h, "R1"))
            assert isinstance(answer, ReversalResponse)
            assert answer.result is Result.SUCCESS
            assert answer.acquirer is not None and answer.acquirer.trace == "000002"
            entry = h.app.state.get("R1")
            assert entry is not None and entry.state is TransactionState.VOIDED
            assert [e.status for e in h.acquirer.ledger] == ["voided", "approved"]
            slip = h.app.state.slip()
            assert slip is not None and slip.kind.value == "撤销(VOID)"

    run_virtual(main)


def test_void_after_settlement_is_refused(tmp_path: Path) -> None:
    async def main() -> None:
        async with Harness(tmp_path) as h:
            await h.ask(pay(h, "R1"))
            await h.ask(settle(h))
            answer = await h.ask(void(h, "R1"))
            assert answer.error_condition is ErrorCondition.NOT_ALLOWED

    run_virtual(main)


def test_void_without_answer_is_itself_reversed_and_the_sale_stands(tmp_path: Path) -> None:
    async def main() -> None:
        plan = FaultPlan(acquirer=AcquirerFault.LOSE_REPLY, acquirer_operations=frozenset({"void"}))
        async with Harness(tmp_path, plan=plan) as h:
            await h.ask(pay(h, "R1"))
            answer = await h.ask(void(h, "R1"))
            assert answer.error_condition is ErrorCondition.TIMEOUT
            await h.settle(2)
            assert h.app.state.reversals() == []
            entry = h.app.state.get("R1")
            assert entry is not None and entry.state is TransactionState.APPROVED
            assert h.acquirer.count("reverse") == 1

    run_virtual(main)


def test_partial_refunds_up_to_the_original_amount(tmp_path: Path) -> None:
    async def main() -> None:
        async with Harness(tmp_path) as h:
            await h.ask(pay(h, "R1", 1000))
            first = await h.ask(refund(h, "F1", "R1", 600))
            assert isinstance(first, RefundResponse) and first.result is Result.SUCCESS
            too_much = await h.ask(refund(h, "F2", "R1", 500))
            assert too_much.error_condition is ErrorCondition.NOT_ALLOWED
            rest = await h.ask(refund(h, "F3", "R1", 400))
            assert rest.result is Result.SUCCESS
            original = h.app.state.get("R1")
            assert original is not None and original.refunded == 1000
            assert h.acquirer.count("refund") == 2

    run_virtual(main)


def test_refund_without_answer_is_retried_with_the_same_number(tmp_path: Path) -> None:
    async def main() -> None:
        plan = FaultPlan(
            acquirer=AcquirerFault.LOSE_REPLY,
            acquirer_operations=frozenset({"refund"}),
            acquirer_count=1,
        )
        async with Harness(tmp_path, plan=plan) as h:
            await h.ask(pay(h, "R1", 1000))
            lost = await h.ask(refund(h, "F1", "R1", 1000))
            assert lost.error_condition is ErrorCondition.TIMEOUT
            retried = await h.ask(refund(h, "F1", "R1", 1000))
            assert retried.result is Result.SUCCESS
            again = await h.ask(refund(h, "F1", "R1", 1000))
            assert again.result is Result.SUCCESS
            refunds = [e for e in h.acquirer.ledger if e.operation == "refund"]
            assert len(refunds) == 1  # the host booked it once, keyed by the refund number
            assert h.acquirer.count("refund") == 2

    run_virtual(main)


def test_settlement_sends_batch_totals_and_opens_a_new_batch(tmp_path: Path) -> None:
    async def main() -> None:
        async with Harness(tmp_path) as h:
            await h.ask(pay(h, "C1", 1000))
            await h.ask(pay(h, "C2", 2500))
            await h.ask(pay(h, "C3", 700))
            await h.ask(void(h, "C3"))
            await h.ask(refund(h, "F1", "C2", 500))
            code = qr_code(HostWallet.WECHAT)
            await h.ask(
                PaymentRequest(
                    service_id=h.sid(),
                    ecr_ref="Q1",
                    amount=880,
                    kind=PaymentKind.QR_CODE,
                    auth_code=code,
                )
            )
            totals = await h.ask(settle(h, ReconciliationKind.TOTALS))
            answer = await h.ask(settle(h))
            assert isinstance(answer, ReconciliationResponse)
            assert isinstance(totals, ReconciliationResponse)
            assert answer.result is Result.SUCCESS  # the host's totals agree
            assert answer.batch == "000001"
            assert answer.totals == totals.totals
            by_kind = {(t.kind, t.wallet): t for t in answer.totals}
            card = by_kind[(PaymentKind.CARD, None)]
            assert (card.count, card.amount, card.refund_count, card.refund_amount) == (
                2,
                3500,
                1,
                500,
            )
            wechat = by_kind[(PaymentKind.QR_CODE, Wallet.WECHAT)]
            assert (wechat.count, wechat.amount) == (1, 880)
            assert h.app.state.batch == "000002"
            empty = await h.ask(settle(h, ReconciliationKind.TOTALS))
            assert isinstance(empty, ReconciliationResponse)
            assert empty.batch == "000002" and empty.totals == ()
            after = await h.ask(pay(h, "C9"))
            assert isinstance(after, PaymentResponse)
            assert after.acquirer is not None and after.acquirer.batch == "000002"

    run_virtual(main)


def test_slip_carries_the_required_fields_and_a_signature(tmp_path: Path) -> None:
    async def main() -> None:
        async with Harness(tmp_path) as h:
            response = await h.ask(pay(h, "R1", 12345))
            assert isinstance(response, PaymentResponse) and response.acquirer is not None
            slip = h.app.state.slip()
            assert slip is not None
            text = "\n".join(slip.lines())
            for expected in (
                "收银示范超市",
                "898310048160001",
                "10000001",
                "操作员号: 01",
                "622848*********0018",
                "UnionPay",
                "批次号: 000001",
                "凭证号: 000001",
                f"授权码: {response.acquirer.auth_code}",
                f"参考号: {response.acquirer.rrn}",
                "2025/03/14 10:00",
                "￥123.45",
                "电子签名 SIG-000001-000001-",
            ):
                assert expected in text, expected
            assert "6228480000000000018" not in text
            png = h.app.state.signature("000001", "000001")
            assert png is not None and png.startswith(b"\x89PNG\r\n\x1a\n")
            assert slip.signature_ref is not None
            assert slip.signature_ref.endswith(hashlib.sha256(png).hexdigest()[:12])
            printed = h.app.state.printouts()
            assert printed and printed[-1][0] == "card_slip"

    run_virtual(main)


def test_reprint_of_the_last_slip_and_by_trace(tmp_path: Path) -> None:
    async def main() -> None:
        async with Harness(tmp_path) as h:
            await h.ask(pay(h, "R1", 100))
            await h.ask(pay(h, "R2", 200))
            slip = DocumentKind.CARD_SLIP
            last = await h.ask(PrintRequest(service_id=h.sid(), document=slip, lines=()))
            first = await h.ask(
                PrintRequest(service_id=h.sid(), document=DocumentKind.CARD_SLIP, lines=("1",))
            )
            assert last.result is Result.SUCCESS and first.result is Result.SUCCESS
            printed = h.app.state.printouts()
            assert "重打印" in printed[-2][1] and "￥2.00" in printed[-2][1]
            assert "重打印" in printed[-1][1] and "凭证号: 000001" in printed[-1][1]

    run_virtual(main)


def test_paper_out_is_notified_and_refuses_printing(tmp_path: Path) -> None:
    async def main() -> None:
        async with Harness(tmp_path) as h:
            events = h.app.set_status(paper=PaperState.OUT)
            await h.settle(0.1)
            assert [e.event for e in events] == [NotificationKind.PAPER_OUT]
            assert [n.event for n in h.notifications] == [NotificationKind.PAPER_OUT]
            receipt = PrintRequest(service_id=h.sid(), document=DocumentKind.RECEIPT, lines=("x",))
            answer = await h.ask(receipt)
            assert answer.error_condition is ErrorCondition.PAPER_OUT
            sale = await h.ask(pay(h, "R1"))
            assert sale.result is Result.SUCCESS  # the payment does not need paper
            assert h.app.state.slip() is not None  # kept for a reprint
            assert h.app.state.printouts() == []

    run_virtual(main)


def test_diagnosis_reports_health_and_acquirer_reachability(tmp_path: Path) -> None:
    async def main() -> None:
        async with Harness(tmp_path) as h:
            h.app.set_status(power=PowerSource.BATTERY, battery_percent=15, temperature_c=41)
            answer = await h.ask(DiagnosisRequest(service_id=h.sid(), check_acquirer=True))
            assert isinstance(answer, DiagnosisResponse)
            assert answer.acquirer_reachable is True
            assert answer.health is not None
            assert answer.health.power is PowerSource.BATTERY
            assert answer.health.battery_percent == 15
            assert answer.health.firmware == "SIM-1.0.0"
            assert answer.message is not None and "firmware A:SIM-1.0.0*" in answer.message
            kinds = [n.event for n in h.notifications]
            assert kinds == [NotificationKind.ON_BATTERY, NotificationKind.LOW_BATTERY]
            h.acquirer.offline = True
            down = await h.ask(DiagnosisRequest(service_id=h.sid(), check_acquirer=True))
            assert isinstance(down, DiagnosisResponse) and down.acquirer_reachable is False

    run_virtual(main)


def test_display_and_a_firmware_update_without_a_repository_is_refused(tmp_path: Path) -> None:
    # Installing, self-test and roll-back, with tuf: tests/terminal/test_firmware_updates.py.
    async def main() -> None:
        async with Harness(tmp_path) as h:
            shown = await h.ask(DisplayRequest(service_id=h.sid(), lines=("欢迎光临",)))
            assert shown.result is Result.SUCCESS
            assert h.app.status.screen == ("欢迎光临",)
            package = FirmwarePackage(version="SIM-1.1.0", sha256="ab" * 32, size=1024)
            request = AdminRequest(
                service_id=h.sid(), action=AdminAction.FIRMWARE_UPDATE, firmware=package
            )
            answer = await h.ask(request)
            assert isinstance(answer, AdminResponse) and answer.result is Result.FAILURE
            assert answer.firmware_version == "SIM-1.0.0"
            assert h.app.state.firmware().active == "A"
            assert NotificationKind.FIRMWARE_INSTALLED not in [n.event for n in h.notifications]

    run_virtual(main)
