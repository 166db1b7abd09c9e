"""The Sale aggregate: lines, discounts, tenders, the state machine, events and restoring."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from shouyin.domain.errors import (
    CardDataError,
    DiscountError,
    DomainError,
    EmptySale,
    IllegalTransition,
    InactiveProduct,
    InvalidAmount,
    InvalidProduct,
    PermissionDenied,
    TenderError,
    TendersOutstanding,
    UnknownLine,
)
from shouyin.domain.money import Money
from shouyin.domain.product import Product, Unit
from shouyin.domain.promotions import ManualDiscount, MultiBuy
from shouyin.domain.sale import Sale
from shouyin.domain.sale_events import (
    LineAdded,
    SaleCompleted,
    SaleHeld,
    SaleOpened,
    SalePaid,
    SaleRecalled,
    SaleVoided,
    TenderAdded,
)
from shouyin.domain.sale_lines import PaymentRef, TenderKind, validate_masked_pan
from shouyin.domain.sale_states import SaleState
from shouyin.domain.users import Action, Approval, Role

NOW = datetime(2025, 3, 1, 10, 0)
COLA = Product("6901", "可口可乐 330ml", Money(350), category="饮料", member_price=Money(300))
WINE = Product("6902", "长城干红", Money(8800), category="酒")
APPLE = Product("2001", "红富士苹果", Money(1298), unit=Unit.KG, category="水果", tax_rate_bp=900)
RETIRED = Product("6903", "停售商品", Money(100), active=False)


def new_sale(**kwargs: object) -> Sale:
    return Sale.open(
        sale_id="S1",
        receipt_no="0001",
        lane_id="L1",
        shift_id="SH1",
        cashier_id="C1",
        now=NOW,
        **kwargs,  # type: ignore[arg-type]
    )


def card(ecr_ref: str = "E1") -> PaymentRef:
    return PaymentRef(
        ecr_ref,
        rrn="123456789012",
        trace="000123",
        batch="000001",
        auth_code="A1B2C3",
        masked_pan="622848******1234",
    )


def supervisor(action: Action, at: datetime = NOW) -> Approval:
    return Approval("SUP1", Role.SUPERVISOR, action, at)


def state(sale: Sale) -> SaleState:
    """Read the state through a call, so that mypy does not narrow it across commands."""
    return sale.state


def snapshot(sale: Sale) -> tuple[object, ...]:
    return (
        sale.state,
        sale.lines,
        sale.tenders,
        sale.member_id,
        sale.order_discount,
        sale.completed_at,
        sale.voided_at,
        sale.total_due,
    )


# -- lines --------------------------------------------------------------------------------------
def test_new_sale_is_open_empty_and_records_opening() -> None:
    sale = new_sale()
    assert state(sale) is SaleState.OPEN
    assert sale.total_due == Money(0)
    assert sale.events == [SaleOpened("S1", "0001", "L1", "SH1", "C1", NOW)]


def test_add_product_adds_a_priced_line_and_an_event() -> None:
    sale = new_sale()
    line = sale.add_product(COLA, 3)
    assert (line.line_no, line.quantity, line.name) == (1, 3, "可口可乐 330ml")
    assert sale.total_due == Money(1050)
    assert sale.events[-1] == LineAdded("S1", 1, "6901", 3, None, Money(1050))


def test_inactive_product_is_refused() -> None:
    sale = new_sale()
    with pytest.raises(InactiveProduct):
        sale.add_product(RETIRED)
    assert sale.lines == ()


def test_weighed_product_must_be_weighed() -> None:
    sale = new_sale()
    with pytest.raises(InvalidProduct):
        sale.add_product(APPLE)
    with pytest.raises(InvalidProduct):
        sale.add_weighed(COLA, 500)


def test_add_weighed_prices_per_kg_rounded_half_up() -> None:
    sale = new_sale()
    sale.add_weighed(APPLE, 1234)  # 12.98 × 1.234 = 16.01732
    assert sale.total_due == Money(1602)


def test_add_priced_uses_the_amount_from_the_scale_label() -> None:
    sale = new_sale()
    line = sale.add_priced(APPLE, Money(888), grams=684)
    assert sale.total_due == Money(888)
    assert line.grams == 684


def test_add_priced_refuses_zero() -> None:
    with pytest.raises(InvalidAmount):
        new_sale().add_priced(APPLE, Money(0))


@pytest.mark.parametrize("qty", [0, -1, 10_000])
def test_quantity_out_of_range_is_refused(qty: int) -> None:
    with pytest.raises(InvalidAmount):
        new_sale().add_product(COLA, qty)


def test_set_quantity_changes_the_line() -> None:
    sale = new_sale()
    sale.add_product(COLA)
    sale.set_quantity(1, 4)
    assert sale.total_due == Money(1400)


def test_set_quantity_refused_on_weighed_lines() -> None:
    sale = new_sale()
    sale.add_weighed(APPLE, 500)
    with pytest.raises(InvalidProduct):
        sale.set_quantity(1, 2)


def test_removed_line_is_kept_voided_and_its_number_never_reused() -> None:
    sale = new_sale()
    sale.add_product(COLA)
    sale.add_product(WINE)
    sale.remove_line(1, supervisor(Action.VOID_LINE))
    sale.add_product(COLA)
    assert [(ln.line_no, ln.voided) for ln in sale.lines] == [(1, True), (2, False), (3, False)]
    assert sale.lines[0].voided_by == "SUP1"
    assert sale.total_due == Money(9150)


def test_removing_a_removed_line_is_refused() -> None:
    sale = new_sale()
    sale.add_product(COLA)
    sale.remove_line(1)
    with pytest.raises(UnknownLine):
        sale.remove_line(1)


def test_remove_line_with_an_approval_for_something_else_is_refused() -> None:
    sale = new_sale()
    sale.add_product(COLA)
    with pytest.raises(PermissionDenied):
        sale.remove_line(1, supervisor(Action.REFUND))
    assert not sale.lines[0].voided


def test_price_override_needs_approval_and_drops_member_price() -> None:
    sale = new_sale()
    sale.add_product(COLA, 2)
    sale.set_member("M1")
    with pytest.raises(PermissionDenied):
        sale.override_price(1, Money(200), supervisor(Action.VOID_SALE), NOW)
    sale.override_price(1, Money(320), supervisor(Action.PRICE_OVERRIDE), NOW)
    assert sale.total_due == Money(640)
    assert sale.lines[0].price_override_by == "SUP1"


# -- member and discounts -----------------------------------------------------------------------
def test_member_gets_member_prices() -> None:
    sale = new_sale()
    sale.add_product(COLA, 2)
    sale.set_member("M88")
    assert sale.total_due == Money(600)
    sale.set_member(None)
    assert sale.total_due == Money(700)


def test_promotions_given_at_opening_are_applied() -> None:
    sale = new_sale(promotions=[MultiBuy("第二件半价", 2, 5000)])
    sale.add_product(COLA, 2)
    assert sale.total_due == Money(525)
    assert sale.applied_promotions[0].name == "第二件半价"


def test_line_discount_over_the_line_is_refused_and_changes_nothing() -> None:
    sale = new_sale()
    sale.add_product(COLA)
    before = snapshot(sale)
    with pytest.raises(DiscountError):
        sale.set_line_discount(1, ManualDiscount.amount_off(Money(351), "太多"))
    assert snapshot(sale) == before


def test_line_and_order_discounts() -> None:
    sale = new_sale()
    sale.add_product(WINE)
    sale.add_product(COLA)
    sale.set_line_discount(1, ManualDiscount.amount_off(Money(800), "包装破损"))
    sale.set_order_discount(ManualDiscount.percent_off(1000, "店庆"))
    assert sale.subtotal == Money(9150)
    assert sale.total_due == Money(7515)  # (80.00 + 3.50) × 90% = 75.15
    assert sale.discount_total == Money(1635)


def test_order_discount_over_the_total_is_refused() -> None:
    sale = new_sale()
    sale.add_product(COLA)
    with pytest.raises(DiscountError):
        sale.set_order_discount(ManualDiscount.amount_off(Money(351), "x"))
    assert sale.order_discount is None


# -- hold and recall ----------------------------------------------------------------------------
def test_hold_and_recall() -> None:
    sale = new_sale()
    sale.add_product(COLA)
    sale.hold()
    assert state(sale) is SaleState.HELD
    with pytest.raises(IllegalTransition):
        sale.add_product(COLA)
    sale.recall()
    assert state(sale) is SaleState.OPEN
    assert isinstance(sale.events[-2], SaleHeld)
    assert isinstance(sale.events[-1], SaleRecalled)


def test_empty_sale_cannot_be_held() -> None:
    with pytest.raises(EmptySale):
        new_sale().hold()


# -- tenders ------------------------------------------------------------------------------------
def test_cash_over_tender_gives_change_and_pays() -> None:
    sale = new_sale()
    sale.add_product(WINE)
    sale.add_tender(TenderKind.CASH, Money(10000))
    assert state(sale) is SaleState.PAID
    assert sale.change == Money(1200)
    assert sale.amount_by_kind()[TenderKind.CASH] == Money(8800)
    assert sale.events[-1] == SalePaid("S1", Money(8800), Money(10000), Money(1200))


def test_card_may_not_exceed_the_amount_due() -> None:
    sale = new_sale()
    sale.add_product(COLA)
    with pytest.raises(TenderError):
        sale.add_tender(TenderKind.CARD, Money(351), card())
    assert sale.tenders == ()


def test_card_tender_needs_its_payment_reference() -> None:
    sale = new_sale()
    sale.add_product(COLA)
    with pytest.raises(TenderError):
        sale.add_tender(TenderKind.QR, Money(350))


def test_split_tender_card_then_cash() -> None:
    sale = new_sale()
    sale.add_product(WINE)
    sale.add_tender(TenderKind.CARD, Money(5000), card())
    assert state(sale) is SaleState.TENDERING
    assert sale.remaining == Money(3800)
    with pytest.raises(IllegalTransition):
        sale.add_product(COLA)  # lines are frozen while paying
    sale.add_tender(TenderKind.CASH, Money(4000))
    assert state(sale) is SaleState.PAID
    assert sale.change == Money(200)
    assert sale.amount_by_kind() == {
        TenderKind.CASH: Money(3800),
        TenderKind.CARD: Money(5000),
        TenderKind.QR: Money(0),
    }


def test_reused_ecr_ref_is_refused() -> None:
    sale = new_sale()
    sale.add_product(WINE)
    sale.add_tender(TenderKind.CARD, Money(100), card("E1"))
    with pytest.raises(TenderError):
        sale.add_tender(TenderKind.QR, Money(100), PaymentRef("E1", wallet="wechat"))


def test_zero_tender_is_refused() -> None:
    sale = new_sale()
    sale.add_product(COLA)
    with pytest.raises(TenderError):
        sale.add_tender(TenderKind.CASH, Money(0))


def test_empty_sale_cannot_be_paid() -> None:
    with pytest.raises(EmptySale):
        new_sale().add_tender(TenderKind.CASH, Money(100))


def test_tender_events_carry_the_ecr_ref() -> None:
    sale = new_sale()
    sale.add_product(COLA)
    sale.add_tender(TenderKind.CARD, Money(350), card("E9"))
    assert TenderAdded("S1", 1, TenderKind.CARD, Money(350), "E9") in sale.events


# -- card data ----------------------------------------------------------------------------------
@pytest.mark.parametrize("masked", ["622848******1234", "411111***1111", "622848*********1234"])
def test_masked_pan_first_six_last_four_is_accepted(masked: str) -> None:
    assert validate_masked_pan(masked) == masked
    assert PaymentRef("E1", masked_pan=masked).masked_pan == masked


def test_full_pan_is_refused_without_echoing_it() -> None:
    with pytest.raises(CardDataError) as caught:
        PaymentRef("E1", masked_pan="6228480000001234567")
    assert "6228480000001234567" not in str(caught.value)
    assert "1234567" not in str(caught.value)


@pytest.mark.parametrize(
    "bad",
    [
        "622848 0000 0000 1234",
        "6228****1234",
        "622848******12345",
        "622848XXXXXX1234",
        "622848**1234",
        "62284**********1234",
    ],
)
def test_other_masks_are_refused(bad: str) -> None:
    with pytest.raises(CardDataError):
        PaymentRef("E1", masked_pan=bad)


# -- completing and voiding ---------------------------------------------------------------------
def paid_sale() -> Sale:
    sale = new_sale()
    sale.add_product(COLA)
    sale.add_tender(TenderKind.CASH, Money(500))
    return sale


def test_complete_finishes_a_paid_sale() -> None:
    sale = paid_sale()
    sale.complete(NOW)
    assert state(sale) is SaleState.COMPLETED
    assert sale.completed_at == NOW
    assert sale.events[-1] == SaleCompleted("S1", "0001", Money(350), Money(150), NOW)


def test_open_sale_cannot_complete() -> None:
    sale = new_sale()
    sale.add_product(COLA)
    with pytest.raises(IllegalTransition):
        sale.complete(NOW)


def test_free_sale_completes_without_tender() -> None:
    sale = new_sale()
    sale.add_product(COLA)
    sale.set_order_discount(ManualDiscount.percent_off(10_000, "赠品"))
    sale.complete(NOW)
    assert state(sale) is SaleState.COMPLETED


def test_empty_sale_cannot_complete() -> None:
    with pytest.raises(EmptySale):
        new_sale().complete(NOW)


def test_completed_sale_is_immutable() -> None:
    sale = paid_sale()
    sale.complete(NOW)
    before = snapshot(sale)
    attempts: list[Callable[[], object]] = [
        lambda: sale.add_product(COLA),
        lambda: sale.set_quantity(1, 2),
        lambda: sale.remove_line(1),
        lambda: sale.set_member("M"),
        lambda: sale.set_order_discount(None),
        sale.hold,
        lambda: sale.add_tender(TenderKind.CASH, Money(1)),
        lambda: sale.void_tender(1),
        lambda: sale.complete(NOW),
        lambda: sale.void(supervisor(Action.VOID_SALE), "x", NOW),
    ]
    for attempt in attempts:
        with pytest.raises(DomainError):
            attempt()
    assert snapshot(sale) == before


def test_void_needs_a_void_sale_approval() -> None:
    sale = new_sale()
    sale.add_product(COLA)
    with pytest.raises(PermissionDenied):
        sale.void(supervisor(Action.REFUND), "顾客不要了", NOW)
    with pytest.raises(PermissionDenied):
        sale.void(Approval("C1", Role.CASHIER, Action.VOID_SALE, NOW), "顾客不要了", NOW)
    with pytest.raises(PermissionDenied):
        sale.void(supervisor(Action.VOID_SALE), "顾客不要了", NOW + timedelta(hours=1))
    assert state(sale) is SaleState.OPEN


def test_void_records_approver_and_hands_back_cash() -> None:
    sale = new_sale()
    sale.add_product(WINE)
    sale.add_tender(TenderKind.CASH, Money(5000))
    sale.void(supervisor(Action.VOID_SALE), "顾客钱不够", NOW)
    assert state(sale) is SaleState.VOIDED
    assert (sale.voided_by, sale.void_reason, sale.voided_at) == ("SUP1", "顾客钱不够", NOW)
    assert sale.live_tenders == ()
    assert sale.events[-1] == SaleVoided("S1", "SUP1", "顾客钱不够", NOW)


def test_void_with_an_approved_card_tender_is_refused_until_it_is_voided() -> None:
    sale = new_sale()
    sale.add_product(WINE)
    sale.add_tender(TenderKind.CARD, Money(5000), card("E7"))
    with pytest.raises(TendersOutstanding) as caught:
        sale.void(supervisor(Action.VOID_SALE), "x", NOW)
    assert caught.value.ecr_refs == ("E7",)
    assert state(sale) is SaleState.TENDERING
    sale.void_tender(1)
    assert state(sale) is SaleState.OPEN
    sale.void(supervisor(Action.VOID_SALE), "x", NOW)
    assert state(sale) is SaleState.VOIDED


def test_paid_sale_cannot_be_voided_directly() -> None:
    sale = paid_sale()
    with pytest.raises(IllegalTransition):
        sale.void(supervisor(Action.VOID_SALE), "x", NOW)


def test_voiding_an_over_tender_keeps_the_sale_paid() -> None:
    sale = new_sale()
    sale.add_product(WINE)
    sale.add_tender(TenderKind.CASH, Money(5000))
    sale.add_tender(TenderKind.CASH, Money(10000))
    sale.void_tender(1)
    assert state(sale) is SaleState.PAID
    assert sale.change == Money(1200)


def test_held_sale_can_be_voided() -> None:
    sale = new_sale()
    sale.add_product(COLA)
    sale.hold()
    sale.void(supervisor(Action.VOID_SALE), "顾客走了", NOW)
    assert state(sale) is SaleState.VOIDED


# -- totals and tax -----------------------------------------------------------------------------
def test_tax_per_rate_on_vat_inclusive_prices() -> None:
    sale = new_sale()
    sale.add_product(Product("1", "x", Money(11300)))
    sale.add_weighed(Product("2", "y", Money(10900), unit=Unit.KG, tax_rate_bp=900), 1000)
    assert sale.tax_by_rate == ((900, Money(900)), (1300, Money(1300)))
