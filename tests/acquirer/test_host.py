"""The host's money rules: idempotency, reversal, void, refund, QR orders, settlement, ledger."""

from __future__ import annotations

from pathlib import Path

from shouyin.acquirer import (
    BatchTotals,
    CardSaleRequest,
    FinancialResponse,
    HostConfig,
    KindTotals,
    Ledger,
    QrBehaviour,
    ReversalResponse,
    SettlementResponse,
    TotalsKind,
    Wallet,
    card_by_name,
    qr_code,
)
from shouyin.acquirer.ledger import LEDGER_FILE

from . import Pair

APPROVE = card_by_name("approve").pan
VISA = card_by_name("visa").pan


def sale_request(
    pair: Pair, amount: int, pan: str = APPROVE, trace: int | None = None
) -> CardSaleRequest:
    return pair.session.card_sale(
        trace=trace if trace is not None else pair.next_trace(),
        batch=pair.batch,
        amount=amount,
        now=pair.now,
        pan=pan,
    )


def totals(
    card: tuple[int, int, int, int] = (0, 0, 0, 0), **wallets: tuple[int, int, int, int]
) -> BatchTotals:
    def kind(values: tuple[int, int, int, int]) -> KindTotals:
        return KindTotals(
            sale_count=values[0],
            sale_amount=values[1],
            refund_count=values[2],
            refund_amount=values[3],
        )

    by_kind = {TotalsKind.CARD: kind(card)}
    for name, values in wallets.items():
        by_kind[TotalsKind[name.upper()]] = kind(values)
    return BatchTotals(by_kind=by_kind)


# -- idempotency --------------------------------------------------------------------------------


def test_a_repeated_sale_gets_the_same_answer_and_no_second_charge() -> None:
    pair = Pair.create()
    request = sale_request(pair, 1999)
    first = pair.expect(request, FinancialResponse)
    again = pair.expect(request, FinancialResponse, at=pair.later(30))
    assert (again.response_code, again.rrn, again.auth_code) == (
        first.response_code,
        first.rrn,
        first.auth_code,
    )
    assert len(pair.host.ledger.export()) == 1


def test_a_repeated_decline_is_declined_again_without_a_new_entry() -> None:
    pair = Pair.create()
    request = sale_request(pair, 500, card_by_name("decline").pan)
    assert pair.run(request).response_code == "05"
    assert pair.run(request).response_code == "05"
    assert len(pair.host.ledger.export()) == 1


def test_a_reused_trace_for_another_request_is_refused_94() -> None:
    pair = Pair.create()
    pair.run(sale_request(pair, 1000, trace=50))
    answer = pair.run(sale_request(pair, 2000, trace=50))
    assert answer.response_code == "94"
    [entry] = pair.host.ledger.export()
    assert entry.amount == 1000


def test_the_same_trace_on_another_terminal_is_another_transaction() -> None:
    ledger = Ledger(":memory:")
    one = Pair.create(ledger)
    two = Pair.create(ledger, terminal_id="T0000002")
    two.host = one.host
    two.run(two.session.sign_in(trace=1, batch=1, now=two.now))
    assert one.run(sale_request(one, 100, trace=7)).approved
    assert two.run(sale_request(two, 100, trace=7)).approved
    assert len(ledger.export()) == 2


def test_a_zero_amount_is_refused_13() -> None:
    pair = Pair.create()
    assert pair.sale(0, APPROVE).response_code == "13"


# -- reversal -----------------------------------------------------------------------------------


def test_a_sale_that_was_never_answered_is_reversed() -> None:
    pair = Pair.create()
    request = sale_request(pair, 4500, card_by_name("no_answer").pan)
    assert pair.send(request) is None  # the terminal times out...
    reversal = pair.session.reversal(original=request, now=pair.later(60))
    answer = pair.expect(reversal, ReversalResponse)  # ...and reverses
    assert (answer.response_code, answer.trace, answer.amount) == ("00", request.trace, 4500)
    entries = {entry.kind.value: entry for entry in pair.host.ledger.export()}
    assert entries["sale"].status == "reversed"
    assert entries["reversal"].original_id == entries["sale"].id
    assert pair.run(reversal).response_code == "00"  # repeated: acknowledged again
    assert len(pair.host.ledger.export()) == 2


def test_a_reversal_of_an_unknown_trace_is_acknowledged_and_the_late_original_refused() -> None:
    pair = Pair.create()
    request = sale_request(pair, 300)
    reversal = pair.session.reversal(original=request, now=pair.now)
    assert pair.run(reversal).response_code == "00"
    assert pair.run(request).response_code == "94"  # the original, delayed in the network
    [entry] = pair.host.ledger.export()
    assert (entry.kind, entry.original_id) == ("reversal", None)


def test_a_reversal_of_a_declined_sale_changes_nothing() -> None:
    pair = Pair.create()
    request = sale_request(pair, 300, card_by_name("decline").pan)
    pair.run(request)
    assert pair.run(pair.session.reversal(original=request, now=pair.now)).approved
    assert pair.host.ledger.export()[0].status == "declined"


def test_a_reversal_for_another_amount_is_refused_13() -> None:
    pair = Pair.create()
    request = sale_request(pair, 300)
    pair.run(request)
    reversal = pair.session.reversal(
        trace=request.trace, batch=1, amount=301, processing_code="000000", now=pair.now
    )
    assert pair.run(reversal).response_code == "13"
    assert pair.host.ledger.export()[0].status == "approved"


# -- void and refund -----------------------------------------------------------------------------


def test_a_void_cancels_the_sale_and_its_reversal_restores_it() -> None:
    pair = Pair.create()
    sale = pair.sale(2500, APPROVE)
    void = pair.session.void(
        trace=pair.next_trace(), batch=1, amount=2500, original_trace=sale.trace,
        original_rrn=sale.rrn, now=pair.now,
    )  # fmt: skip
    assert pair.run(void).response_code == "00"
    assert pair.host.ledger.export()[0].status == "voided"
    assert pair.run(void).response_code == "00"  # idempotent
    assert pair.run(pair.session.reversal(original=void, now=pair.now)).approved
    assert pair.host.ledger.export()[0].status == "approved"


def test_a_void_must_match_an_approved_sale_of_the_open_batch() -> None:
    pair = Pair.create()
    sale = pair.sale(2500, APPROVE)
    declined = pair.sale(2500, card_by_name("decline").pan)

    def void(amount: int, original: int, rrn: str | None = None) -> str:
        request = pair.session.void(
            trace=pair.next_trace(), batch=1, amount=amount, original_trace=original,
            original_rrn=rrn, now=pair.now,
        )  # fmt: skip
        return pair.run(request).response_code

    assert void(2500, 999) == "25"
    assert void(2500, sale.trace, rrn="000000000000") == "25"
    assert void(2400, sale.trace) == "13"
    assert void(2500, declined.trace) == "12"
    assert void(2500, sale.trace) == "00"
    assert void(2500, sale.trace) == "12"  # a second void of the same sale


def test_refunds_add_up_to_at_most_the_sale() -> None:
    pair = Pair.create()
    sale = pair.sale(1000, VISA)
    assert sale.rrn is not None

    def refund(amount: int, rrn: str = sale.rrn or "") -> str:
        request = pair.session.refund(
            trace=pair.next_trace(), batch=1, amount=amount, original_rrn=rrn, now=pair.now
        )
        return pair.run(request).response_code

    assert refund(600) == "00"
    assert refund(500) == "13"
    assert refund(400) == "00"
    assert refund(1) == "13"
    assert refund(100, rrn="999999999999") == "25"
    refunds = [entry for entry in pair.host.ledger.export() if entry.kind == "refund"]
    assert [entry.status for entry in refunds] == [
        "approved",
        "declined",
        "approved",
        "declined",
        "declined",
    ]
    assert refunds[0].masked_pan == "411111******1111"


def test_a_refund_of_a_reversed_sale_is_refused() -> None:
    pair = Pair.create()
    request = sale_request(pair, 800)
    sale = pair.expect(request, FinancialResponse)
    pair.run(pair.session.reversal(original=request, now=pair.now))
    refund = pair.session.refund(
        trace=pair.next_trace(), batch=1, amount=800, original_rrn=sale.rrn or "", now=pair.now
    )
    assert pair.run(refund).response_code == "12"


# -- QR orders ----------------------------------------------------------------------------------


def test_userpaying_then_success_is_found_by_query() -> None:
    pair = Pair.create(config=HostConfig(userpaying_s=10))
    trace, first = pair.qr(1500, qr_code(Wallet.WECHAT, QrBehaviour.USERPAYING_SUCCESS))
    assert first.response_code == "09"
    pair.later(5)
    waiting = pair.query(trace)
    assert (waiting.status, waiting.wallet_status, waiting.original_response_code) == (
        "pending",
        "USERPAYING",
        "09",
    )
    pair.later(5)
    paid = pair.query(trace)
    assert (paid.status, paid.wallet_status, paid.original_response_code) == (
        "approved",
        "SUCCESS",
        "00",
    )
    assert paid.auth_code is not None


def test_userpaying_then_failure_ends_declined() -> None:
    pair = Pair.create(config=HostConfig(userpaying_s=3))
    trace, _ = pair.qr(1500, qr_code(Wallet.ALIPAY, QrBehaviour.USERPAYING_FAIL))
    pair.later(4)
    answer = pair.query(trace)
    assert (answer.status, answer.wallet_status, answer.original_response_code) == (
        "declined",
        "PAYERROR",
        "05",
    )


def test_a_revoke_closes_a_waiting_order_for_good() -> None:
    pair = Pair.create(config=HostConfig(userpaying_s=3))
    code = qr_code(Wallet.UNIONPAY, QrBehaviour.USERPAYING_SUCCESS)
    trace = pair.next_trace()
    request = pair.session.qr_sale(trace=trace, batch=1, amount=990, auth_code=code, now=pair.now)
    pair.run(request)
    revoke = pair.session.reversal(original=request, now=pair.later(1), reason="17")
    answer = pair.expect(revoke, ReversalResponse)
    assert (answer.response_code, answer.wallet_status) == ("00", "REVOKED")
    pair.later(10)  # the customer would have paid by now
    final = pair.query(trace)
    assert (final.status, final.wallet_status) == ("reversed", "REVOKED")


def test_a_revoke_after_the_customer_paid_refunds_the_order() -> None:
    pair = Pair.create(config=HostConfig(userpaying_s=2))
    request = pair.session.qr_sale(
        trace=pair.next_trace(), batch=1, amount=990,
        auth_code=qr_code(Wallet.WECHAT, QrBehaviour.USERPAYING_SUCCESS), now=pair.now,
    )  # fmt: skip
    pair.run(request)
    answer = pair.expect(
        pair.session.reversal(original=request, now=pair.later(5)), ReversalResponse
    )
    assert answer.wallet_status == "REVOKED"
    [order, _] = pair.host.ledger.export()
    assert (order.status, order.auth_code is not None) == ("reversed", True)


def test_a_system_error_hides_a_payment_the_query_finds() -> None:
    pair = Pair.create()
    trace, first = pair.qr(700, qr_code(Wallet.WECHAT, QrBehaviour.SYSTEM_ERROR))
    assert (first.response_code, first.wallet_status) == ("96", "SYSTEMERROR")
    found = pair.query(trace)
    assert (found.status, found.original_response_code) == ("approved", "00")


def test_a_query_of_an_unknown_trace_answers_25() -> None:
    pair = Pair.create()
    assert pair.query(4242).response_code == "25"


def test_a_merchant_presented_order_shows_a_code_and_is_paid_later() -> None:
    pair = Pair.create(config=HostConfig(userpaying_s=2))
    trace = pair.next_trace()
    precreate = pair.session.precreate(trace=trace, batch=1, amount=1234, now=pair.now)
    answer = pair.expect(precreate, FinancialResponse)
    assert (answer.response_code, answer.wallet_status) == ("09", "NOTPAY")
    assert answer.qr_payload is not None
    assert answer.qr_payload.startswith("https://qr.shouyin.invalid/wechat/")
    pair.later(3)
    assert pair.query(trace).wallet_status == "SUCCESS"


# -- settlement ----------------------------------------------------------------------------------


def busy_batch(pair: Pair) -> None:
    """Card sales 1000 + 2000 (+ a declined and a voided one), a card refund of 300, an Alipay
    sale of 880 and a reversed WeChat sale."""
    pair.sale(1000, APPROVE)
    sale = pair.sale(2000, VISA)
    pair.sale(5000, card_by_name("decline").pan)
    voided = pair.sale(700, APPROVE)
    pair.run(
        pair.session.void(
            trace=pair.next_trace(), batch=1, amount=700, original_trace=voided.trace, now=pair.now
        )
    )
    pair.run(
        pair.session.refund(
            trace=pair.next_trace(), batch=1, amount=300, original_rrn=sale.rrn or "", now=pair.now
        )
    )
    pair.qr(880, qr_code(Wallet.ALIPAY))
    wechat = pair.session.qr_sale(
        trace=pair.next_trace(), batch=1, amount=660, auth_code=qr_code(Wallet.WECHAT), now=pair.now
    )
    pair.run(wechat)
    pair.run(pair.session.reversal(original=wechat, now=pair.now))


BUSY_TOTALS = totals((2, 3000, 1, 300), alipay=(1, 880, 0, 0))


def test_a_balanced_settlement_is_approved_and_closes_the_batch() -> None:
    pair = Pair.create()
    busy_batch(pair)
    answer = pair.settle(BUSY_TOTALS)
    assert answer.response_code == "00"
    assert answer.totals == BUSY_TOTALS
    statuses = {entry.status for entry in pair.host.ledger.export() if entry.kind in ("sale", "qr")}
    assert statuses == {"settled", "declined", "voided", "reversed"}
    assert pair.sale(100, APPROVE).response_code == "12"  # the batch is closed


def test_an_unbalanced_settlement_answers_95_with_the_host_totals() -> None:
    pair = Pair.create()
    busy_batch(pair)
    answer = pair.settle(totals((2, 3000, 0, 0), alipay=(1, 880, 0, 0)))
    assert (answer.response_code, answer.totals) == ("95", BUSY_TOTALS)
    assert pair.host.ledger.settlement(pair.session.terminal_id, 1) is not None


def test_a_repeated_settlement_gets_the_same_answer() -> None:
    pair = Pair.create()
    busy_batch(pair)
    request = pair.session.settlement(
        trace=pair.next_trace(), batch=1, totals=BUSY_TOTALS, now=pair.now
    )
    first = pair.expect(request, SettlementResponse)
    assert pair.expect(request, SettlementResponse) == first


def test_settlement_closes_orders_still_waiting_for_the_customer() -> None:
    pair = Pair.create()
    trace, _ = pair.qr(500, qr_code(Wallet.WECHAT, QrBehaviour.USERPAYING_FOREVER))
    assert pair.settle(totals()).response_code == "00"
    answer = pair.query(trace)
    assert (answer.status, answer.wallet_status) == ("declined", "CLOSED")


def test_the_next_batch_is_open_after_settlement() -> None:
    pair = Pair.create()
    pair.sale(100, APPROVE)
    pair.settle(totals((1, 100, 0, 0)))
    pair.batch = 2
    assert pair.sale(100, APPROVE).response_code == "00"


# -- the ledger ------------------------------------------------------------------------------------


def test_the_ledger_survives_a_restart(tmp_path: Path) -> None:
    pair = Pair.create(Ledger.in_state_dir(tmp_path))
    busy_batch(pair)
    before = pair.host.ledger.export()
    pair.host.ledger.close()
    reopened = Pair.create(Ledger.in_state_dir(tmp_path), signed_in=False)
    reopened.session = pair.session
    reopened.trace = pair.trace
    assert reopened.host.ledger.export() == before
    assert reopened.settle(BUSY_TOTALS).response_code == "00"  # and the keys too
    assert (tmp_path / LEDGER_FILE).exists()


def test_a_repeat_after_restart_still_gets_the_same_answer(tmp_path: Path) -> None:
    pair = Pair.create(Ledger.in_state_dir(tmp_path))
    request = sale_request(pair, 1234)
    first = pair.expect(request, FinancialResponse)
    pair.host.ledger.close()
    reopened = Pair.create(Ledger.in_state_dir(tmp_path), signed_in=False)
    reopened.session = pair.session
    assert reopened.expect(request, FinancialResponse).rrn == first.rrn
    assert len(reopened.host.ledger.export()) == 1


def test_export_filters_by_terminal_and_batch() -> None:
    pair = Pair.create()
    pair.sale(100, APPROVE)
    assert len(pair.host.ledger.export("T0000001", 1)) == 1
    assert pair.host.ledger.export("T0000001", 2) == []
    assert pair.host.ledger.export("T0000009") == []


def test_the_ledger_file_is_durable_wal_with_full_sync(tmp_path: Path) -> None:
    ledger = Ledger.in_state_dir(tmp_path)
    assert ledger._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert ledger._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    ledger.close()


def test_a_qr_sale_is_voided_or_refunded_under_its_wallet() -> None:
    pair = Pair.create()
    first_trace, _ = pair.qr(1000, qr_code(Wallet.UNIONPAY))
    _, second = pair.qr(2000, qr_code(Wallet.UNIONPAY))
    void = pair.session.void(
        trace=pair.next_trace(), batch=1, amount=1000, original_trace=first_trace, now=pair.now
    )
    assert pair.run(void).approved
    refund = pair.session.refund(
        trace=pair.next_trace(), batch=1, amount=500, original_rrn=second.rrn or "", now=pair.now
    )
    assert pair.run(refund).approved
    assert pair.query(first_trace).wallet_status == "REFUND"
    expected = totals(unionpay=(1, 2000, 1, 500))
    assert pair.settle(expected).response_code == "00"
