"""QR payments: micropay with the customer's code and merchant-presented codes (DESIGN.md §6)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shouyin.acquirer.codes import Wallet as HostWallet
from shouyin.acquirer.testcards import QrBehaviour, qr_code
from shouyin.link import (
    AbortRequest,
    ErrorCondition,
    PaymentKind,
    PaymentRequest,
    PaymentResponse,
    ProgressStage,
    Result,
    TransactionState,
    Wallet,
)
from shouyin.link.wallets import recognise_wallet
from shouyin.terminal.memory_host import MemoryAcquirer
from shouyin.terminal.ports import QrStatus
from tests.terminal import Harness, run_virtual


def qr(h: Harness, code: str, ecr_ref: str = "Q1", amount: int = 880) -> PaymentRequest:
    return PaymentRequest(
        service_id=h.sid(),
        ecr_ref=ecr_ref,
        amount=amount,
        kind=PaymentKind.QR_CODE,
        auth_code=code,
    )


def micropay(
    tmp_path: Path, code: str, acquirer: MemoryAcquirer | None = None
) -> tuple[PaymentResponse, Harness, float]:
    async def main() -> tuple[PaymentResponse, Harness, float]:
        async with Harness(tmp_path, acquirer=acquirer or MemoryAcquirer()) as h:
            start = h.time()
            response = await h.ask(qr(h, code))
            assert isinstance(response, PaymentResponse)
            return response, h, h.time() - start

    return run_virtual(main)


@pytest.mark.parametrize(
    ("code", "wallet"),
    [
        ("134567890123456700", Wallet.WECHAT),
        ("284567890123456700", Wallet.ALIPAY),
        ("301234567890123456", Wallet.ALIPAY),
        ("6284567890123456700", Wallet.UNIONPAY),
        ("990000000000000000", None),
        ("1345678901234567", None),  # WeChat codes are 18 digits
    ],
)
def test_wallet_is_recognised_by_the_public_rules(code: str, wallet: Wallet | None) -> None:
    assert recognise_wallet(code) is wallet


def test_qr_success_is_approved_with_wallet_data(tmp_path: Path) -> None:
    response, h, _ = micropay(tmp_path, qr_code(HostWallet.WECHAT))
    assert response.result is Result.SUCCESS
    assert response.acquirer is not None
    assert response.acquirer.wallet is Wallet.WECHAT
    assert response.acquirer.wallet_order_id is not None
    assert response.acquirer.masked_pan is None
    assert h.acquirer.count("query") == 0


def test_unrecognised_code_is_refused_without_contacting_the_acquirer(tmp_path: Path) -> None:
    response, h, _ = micropay(tmp_path, "990000000000000000")
    assert response.error_condition is ErrorCondition.INVALID_CODE
    assert h.acquirer.calls == []


def test_userpaying_then_success_polls_until_paid(tmp_path: Path) -> None:
    response, h, _ = micropay(tmp_path, qr_code(HostWallet.ALIPAY, QrBehaviour.USERPAYING_SUCCESS))
    assert response.result is Result.SUCCESS
    assert h.acquirer.count("query") == 2
    waiting = [p for p in h.progress if p.stage is ProgressStage.WAITING_FOR_CUSTOMER]
    assert waiting
    assert h.timeouts == []


def test_userpaying_then_failure_is_declined(tmp_path: Path) -> None:
    code = qr_code(HostWallet.WECHAT, QrBehaviour.USERPAYING_FAIL)
    response, h, _ = micropay(tmp_path, code)
    assert response.result is Result.FAILURE
    assert h.acquirer.count("reverse") == 0


def test_insufficient_balance_is_a_definite_failure(tmp_path: Path) -> None:
    code = qr_code(HostWallet.WECHAT, QrBehaviour.INSUFFICIENT_BALANCE)
    response, h, _ = micropay(tmp_path, code)
    assert response.error_condition is ErrorCondition.INSUFFICIENT_FUNDS
    assert h.acquirer.count("query") == 0


def test_system_error_is_resolved_by_query(tmp_path: Path) -> None:
    code = qr_code(HostWallet.UNIONPAY, QrBehaviour.SYSTEM_ERROR)
    response, h, _ = micropay(tmp_path, code)
    assert response.result is Result.SUCCESS
    assert h.acquirer.count("query") == 1


def test_userpaying_forever_is_revoked_after_the_poll_limit(tmp_path: Path) -> None:
    code = qr_code(HostWallet.WECHAT, QrBehaviour.USERPAYING_FOREVER)
    response, h, elapsed = micropay(tmp_path, code)
    assert response.result is Result.FAILURE
    assert response.error_condition is ErrorCondition.TIMEOUT
    assert 40 <= elapsed <= 60  # bounded by the 45 s limit
    queries = h.acquirer.count("query")
    assert 9 <= queries <= 12  # every 4 s
    assert h.acquirer.count("reverse") == 1
    entry = h.app.state.get("Q1")
    assert entry is not None and entry.state is TransactionState.FAILED
    assert h.app.state.reversals() == []


def test_revoke_is_repeated_while_the_wallet_says_retry(tmp_path: Path) -> None:
    acquirer = MemoryAcquirer(revoke_retries=2)
    code = qr_code(HostWallet.WECHAT, QrBehaviour.USERPAYING_FOREVER)
    response, h, _ = micropay(tmp_path, code, acquirer)
    assert response.result is Result.FAILURE
    assert h.acquirer.count("reverse") == 3
    assert h.app.state.reversals() == []


def test_abort_while_the_customer_confirms_revokes_no_earlier_than_15_s(tmp_path: Path) -> None:
    async def main() -> None:
        async with Harness(tmp_path) as h:
            request = qr(h, qr_code(HostWallet.WECHAT, QrBehaviour.USERPAYING_FOREVER))
            start = h.time()
            h.send(request)
            await h.settle(3)
            await h.ask(AbortRequest(service_id=h.sid(), target_service_id=request.service_id))
            response = await h.wait_response(request.service_id)
            assert response.error_condition is ErrorCondition.ABORTED
            reverse_at = h.time() - start
            assert 15 <= reverse_at < 25
            assert h.acquirer.count("reverse") == 1

    run_virtual(main)


def test_scripted_qr_order_is_followed_to_the_end(tmp_path: Path) -> None:
    code = qr_code(HostWallet.ALIPAY)
    acquirer = MemoryAcquirer(
        qr_scripts={code: [QrStatus.USERPAYING, QrStatus.NOTPAY, QrStatus.CLOSED]}
    )
    response, _, _ = micropay(tmp_path, code, acquirer)
    assert response.error_condition is ErrorCondition.CANCELLED


def test_merchant_presented_qr_is_shown_then_paid(tmp_path: Path) -> None:
    async def main() -> None:
        async with Harness(tmp_path) as h:
            request = PaymentRequest(
                service_id=h.sid(), ecr_ref="M1", amount=500, kind=PaymentKind.MERCHANT_QR
            )
            response = await h.ask(request)
            assert response.result is Result.SUCCESS
            shown = [p for p in h.progress if p.stage is ProgressStage.SHOWING_QR]
            assert shown and shown[0].message == "https://qr.sim/" + "10000001000001000001"
            assert h.acquirer.count("precreate") == 1

    run_virtual(main)


def test_merchant_qr_never_paid_is_closed(tmp_path: Path) -> None:
    async def main() -> None:
        acquirer = MemoryAcquirer(merchant_qr_script=(QrStatus.NOTPAY,))
        async with Harness(tmp_path, acquirer=acquirer) as h:
            request = PaymentRequest(
                service_id=h.sid(), ecr_ref="M1", amount=500, kind=PaymentKind.MERCHANT_QR
            )
            response = await h.ask(request)
            assert response.error_condition is ErrorCondition.TIMEOUT
            assert acquirer.count("reverse") == 1

    run_virtual(main)
