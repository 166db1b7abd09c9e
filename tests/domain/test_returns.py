"""Returns: quantities, exact pro-rata refunds, refund tenders and approval."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shouyin.domain.errors import PermissionDenied, ReturnError
from shouyin.domain.money import Money, total
from shouyin.domain.product import Product, Unit
from shouyin.domain.promotions import ManualDiscount, Threshold
from shouyin.domain.returns import RefundTender, Return, ReturnItem
from shouyin.domain.sale import Sale
from shouyin.domain.sale_lines import PaymentRef, TenderKind
from shouyin.domain.users import Action, Approval, Role

NOW = datetime(2025, 3, 2, 15, 0)
SOLD_AT = NOW - timedelta(days=1)
TISSUE = Product("6910", "纸巾", Money(1000), category="日用")
WINE = Product("6902", "长城干红", Money(8800), category="酒")
APPLE = Product("2001", "苹果", Money(1298), unit=Unit.KG, category="水果", tax_rate_bp=900)
REFUND_OK = Approval("SUP1", Role.SUPERVISOR, Action.REFUND, NOW)


def completed_sale(card_fen: int = 0) -> Sale:
    """Three tissues with 10.00 off the order (net 20.00 over 3 units), a wine, 1 kg of apples."""
    sale = Sale.open(
        sale_id="S1", receipt_no="0001", lane_id="L1", shift_id="SH0", cashier_id="C1", now=SOLD_AT
    )
    sale.add_product(TISSUE, 3)
    sale.add_product(WINE)
    sale.add_weighed(APPLE, 1000)
    sale.set_line_discount(1, ManualDiscount.amount_off(Money(1000), "会员日"))
    if card_fen:
        ref = PaymentRef("E1", masked_pan="622848******1234")
        sale.add_tender(TenderKind.CARD, Money(card_fen), ref)
    sale.add_tender(TenderKind.CASH, Money(20_000))
    sale.complete(SOLD_AT)
    return sale


def cash(fen: int) -> tuple[RefundTender, ...]:
    return (RefundTender(TenderKind.CASH, Money(fen)),) if fen else ()


def make_return(
    sale: Sale,
    items: list[ReturnItem],
    tenders: tuple[RefundTender, ...] | None = None,
    prior: tuple[Return, ...] = (),
    return_id: str = "R1",
    approval: Approval = REFUND_OK,
) -> Return:
    if tenders is None:
        tenders = cash(total([ln.amount for ln in Return.refund_for(sale, items, prior)]).fen)
    return Return.create(
        return_id=return_id,
        sale=sale,
        items=items,
        tenders=tenders,
        approval=approval,
        lane_id="L2",
        shift_id="SH1",
        cashier_id="C2",
        reason="质量问题",
        now=NOW,
        prior_returns=prior,
    )


def test_refund_is_the_lines_net_per_unit_smallest_shares_first() -> None:
    sale = completed_sale()
    ret = make_return(sale, [ReturnItem(1, 1)])
    assert ret.lines[0].amount == Money(666)  # 20.00 over 3 units: 6.66, 6.67, 6.67
    assert ret.refund_total == Money(666)
    assert ret.approver_id == "SUP1"


def test_returning_every_unit_over_several_returns_refunds_exactly_the_net() -> None:
    sale = completed_sale()
    first = make_return(sale, [ReturnItem(1, 1)], return_id="R1")
    second = make_return(sale, [ReturnItem(1, 2)], prior=(first,), return_id="R2")
    assert first.refund_total + second.refund_total == sale.priced.line(1).net == Money(2000)


def test_whole_line_by_default() -> None:
    sale = completed_sale()
    ret = make_return(sale, [ReturnItem(2)])
    assert ret.lines[0].quantity == 1
    assert ret.refund_total == Money(8800)


def test_cannot_return_more_than_sold_minus_returned() -> None:
    sale = completed_sale()
    with pytest.raises(ReturnError):
        make_return(sale, [ReturnItem(1, 4)])
    first = make_return(sale, [ReturnItem(1, 2)])
    with pytest.raises(ReturnError):
        make_return(sale, [ReturnItem(1, 2)], prior=(first,), return_id="R2")
    make_return(sale, [ReturnItem(1, 1)], prior=(first,), return_id="R2")


def test_fully_returned_line_cannot_be_returned_again() -> None:
    sale = completed_sale()
    first = make_return(sale, [ReturnItem(2)])
    with pytest.raises(ReturnError):
        make_return(sale, [ReturnItem(2)], prior=(first,), return_id="R2", tenders=())


def test_weighed_line_goes_back_whole() -> None:
    sale = completed_sale()
    with pytest.raises(ReturnError):
        make_return(sale, [ReturnItem(3, 2)])
    ret = make_return(sale, [ReturnItem(3)])
    assert (ret.lines[0].grams, ret.refund_total) == (1000, Money(1298))


def test_refund_includes_allocated_threshold_discount() -> None:
    sale = Sale.open(
        sale_id="S9",
        receipt_no="9",
        lane_id="L1",
        shift_id="SH0",
        cashier_id="C1",
        now=SOLD_AT,
        promotions=[Threshold("满100减20", Money(10_000), Money(2000))],
    )
    sale.add_product(WINE)
    sale.add_product(TISSUE, 2)
    sale.add_tender(TenderKind.CASH, Money(10_000))
    sale.complete(SOLD_AT)
    ret = make_return(sale, [ReturnItem(1), ReturnItem(2)])
    assert ret.refund_total == sale.total_due == Money(8800)


def test_sale_not_completed_cannot_be_returned() -> None:
    sale = Sale.open(
        sale_id="S2", receipt_no="2", lane_id="L1", shift_id="SH0", cashier_id="C1", now=SOLD_AT
    )
    sale.add_product(WINE)
    with pytest.raises(ReturnError):
        make_return(sale, [ReturnItem(1)], tenders=cash(8800))


def test_unknown_voided_or_repeated_lines_are_refused() -> None:
    sale = completed_sale()
    for items in ([ReturnItem(9)], [ReturnItem(1, 1), ReturnItem(1, 1)], []):
        with pytest.raises(ReturnError):
            make_return(sale, items, tenders=())


def test_tenders_must_sum_to_the_refund() -> None:
    with pytest.raises(ReturnError):
        make_return(completed_sale(), [ReturnItem(2)], tenders=cash(8000))


def test_refund_needs_a_fresh_refund_approval() -> None:
    sale = completed_sale()
    with pytest.raises(PermissionDenied):
        make_return(
            sale, [ReturnItem(2)], approval=Approval("S", Role.SUPERVISOR, Action.NO_SALE, NOW)
        )
    stale = Approval("S", Role.SUPERVISOR, Action.REFUND, NOW - timedelta(hours=1))
    with pytest.raises(PermissionDenied):
        make_return(sale, [ReturnItem(2)], approval=stale)


def card_refund(fen: int, ecr_ref: str = "E1-R1", original: str = "E1") -> RefundTender:
    return RefundTender(TenderKind.CARD, Money(fen), PaymentRef(ecr_ref), original)


def test_refund_back_to_the_original_card() -> None:
    sale = completed_sale(card_fen=5000)
    ret = make_return(sale, [ReturnItem(2)], tenders=(card_refund(5000), *cash(3800)))
    assert ret.refunded_by_kind()[TenderKind.CARD] == Money(5000)
    assert ret.tenders[0].original_ecr_ref == "E1"


def test_card_refunds_never_exceed_the_original_payment() -> None:
    sale = completed_sale(card_fen=5000)
    with pytest.raises(ReturnError):
        make_return(sale, [ReturnItem(2)], tenders=(card_refund(5001), *cash(3799)))
    first = make_return(sale, [ReturnItem(2)], tenders=(card_refund(4000), *cash(4800)))
    with pytest.raises(ReturnError):
        make_return(
            sale,
            [ReturnItem(3)],
            tenders=(card_refund(1298, ecr_ref="E1-R2"),),
            prior=(first,),
            return_id="R2",
        )


def test_card_refund_to_an_unknown_payment_is_refused() -> None:
    sale = completed_sale(card_fen=5000)
    with pytest.raises(ReturnError):
        make_return(
            sale, [ReturnItem(2)], tenders=(card_refund(5000, original="E404"), *cash(3800))
        )


def test_card_refund_needs_its_own_ecr_ref() -> None:
    sale = completed_sale(card_fen=5000)
    with pytest.raises(ReturnError):
        make_return(sale, [ReturnItem(2)], tenders=(card_refund(5000, ecr_ref="E1"), *cash(3800)))


def test_prior_return_of_another_sale_is_refused() -> None:
    sale = completed_sale()
    other = make_return(sale, [ReturnItem(2)])
    other = replace(other, sale_id="SX")
    with pytest.raises(ReturnError):
        make_return(sale, [ReturnItem(1)], prior=(other,), return_id="R2")


@settings(max_examples=60, deadline=None)
@given(
    qty=st.integers(1, 12),
    net_fen=st.integers(0, 5000),
    cuts=st.lists(st.integers(1, 12), max_size=12),
)
def test_any_split_of_returns_refunds_the_net_exactly(
    qty: int, net_fen: int, cuts: list[int]
) -> None:
    sale = Sale.open(
        sale_id="S", receipt_no="1", lane_id="L", shift_id="SH", cashier_id="C", now=SOLD_AT
    )
    sale.add_product(Product("x", "x", Money(5000)), qty)
    if net_fen < 5000 * qty:
        sale.set_order_discount(ManualDiscount.amount_off(Money(5000 * qty - net_fen), "r"))
    if sale.total_due.fen:
        sale.add_tender(TenderKind.CASH, sale.total_due)
    sale.complete(SOLD_AT)
    returns: list[Return] = []
    left = qty
    for n, cut in enumerate([*cuts, qty]):
        take = min(cut, left)
        if take == 0:
            break
        returns.append(
            make_return(sale, [ReturnItem(1, take)], prior=tuple(returns), return_id=f"R{n}")
        )
        left -= take
    assert total([r.refund_total for r in returns]) == sale.total_due
