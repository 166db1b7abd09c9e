"""The cashier and admin pages in real headless Chromium, against the whole demo system.

One ``python -m shouyin.demo`` (acquirer simulator, a TLS and a serial simulated terminal, two
lane servers, as their own processes) and one browser serve the module. The cashier signs in
on lane L01 and sells by typing barcodes into the focused barcode field followed by Enter (what a
scanner does); pays by card and by a QR payment code on the simulated terminal, meets a declined
card, splits a tender, takes a return that a supervisor approves, closes the shift and the admin
reads the Z report. Lane L02 pays by card over the pty serial cable. The assertions are what the
cashier sees: lines, totals, change, messages. Screenshots of the main pages go to
``test-artifacts/screenshots/``. Last, Ctrl-C stops the demo: status 0 and no child left.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shouyin.acquirer.codes import Wallet
from shouyin.acquirer.testcards import qr_code
from shouyin.demo_store import CARD_AMOUNTS

from .browser_helpers import SCREENSHOTS, DemoRun, chromium_or_skip

CHROMIUM = chromium_or_skip()

from playwright.sync_api import (  # noqa: E402 - only once Chromium is known to be there
    Browser,
    Page,
    ViewportSize,
    expect,
    sync_playwright,
)

pytestmark = pytest.mark.slow

WAIT_MS = 30_000  # a card payment: terminal, acquirer, signature and slip steps
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
WATER = "6907806009203"  # 农夫山泉 380ml ¥1.50, a drink (饮料第二件半价)
MILK = "6905290088391"  # 伊利 纯牛奶 ¥3.50
CRISPS = "6916483384077"  # 乐事 薯片 ¥4.50


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    run = DemoRun(tmp_path_factory.mktemp("browser") / "demo").start()
    try:
        run.wait_ready()
        yield run
    finally:
        run.kill()  # only does something when the last test did not stop it


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield chromium
        chromium.close()


def lane_url(demo: DemoRun, lane: str) -> str:
    url: str = demo.state["lanes"][lane]["url"]
    return url


def shoot(page: Page, name: str) -> None:
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def sign_in(page: Page, url: str, username: str, password: str) -> None:
    page.goto(url)
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(password)
    page.get_by_test_id("login-submit").click()


@pytest.fixture(scope="module")
def cashier(demo: DemoRun, browser: Browser) -> Iterator[Page]:
    """Lane L01's cashier page, signed in as 李收银 with the shift open."""
    context = browser.new_context(viewport=VIEWPORT, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(lane_url(demo, "L01"))
    expect(page.get_by_test_id("login-submit")).to_be_visible()
    shoot(page, "cashier-login")
    sign_in(page, lane_url(demo, "L01"), "li", demo.state["users"]["li"]["password"])
    expect(page.get_by_test_id("shift-float")).to_be_visible()
    shoot(page, "cashier-shift-open")
    page.get_by_test_id("shift-float").fill("500")
    page.get_by_test_id("shift-open").click()
    expect(page.get_by_test_id("scan-input")).to_be_focused()
    yield page
    context.close()


_ONE_MORE_LINE = """([before, receipt]) => {
  const rows = document.querySelectorAll('#lines-body tr').length;
  const now = document.querySelector('[data-testid=receipt-no]').textContent;
  return now === receipt ? rows === before + 1 : rows === 1;
}"""


def scan(page: Page, *codes: str) -> None:
    """Type each code and Enter into whatever has the focus (it must be the barcode field)."""
    for code in codes:
        expect(page.get_by_test_id("scan-input")).to_be_focused()
        before = page.locator("#lines-body tr").count()
        receipt = page.get_by_test_id("receipt-no").inner_text()
        page.keyboard.type(code)
        page.keyboard.press("Enter")
        # One more line; or, after a finished sale, the first line of the next one.
        page.wait_for_function(_ONE_MORE_LINE, arg=[before, receipt])


def open_tender(page: Page) -> None:
    page.keyboard.press("F10")
    expect(page.get_by_test_id("tender-dialog")).to_be_visible()


def next_customer(page: Page) -> str:
    """Close the finished tender (Enter); the receipt number the page reports."""
    expect(page.get_by_test_id("tender-next")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("tender-dialog")).to_be_hidden()
    message = page.get_by_test_id("message").inner_text()
    found = re.search(r"L01-\d{6}", message)
    assert found, message
    return found.group(0)


def pay_cash(page: Page, amount: str) -> None:
    page.get_by_test_id("tender-amount").fill(amount)
    page.keyboard.press("Enter")


def test_the_page_shows_the_lane_the_cashier_and_a_ready_terminal(cashier: Page) -> None:
    expect(cashier.get_by_test_id("lane-id")).to_contain_text("L01")
    expect(cashier.get_by_test_id("cashier-name")).to_have_text("李收银")
    expect(cashier.get_by_test_id("terminal-status")).to_have_attribute("data-state", "ready")
    expect(cashier.get_by_test_id("lines-empty")).to_be_visible()
    shoot(cashier, "cashier-ready")


def test_scanned_lines_promotions_and_a_card_payment_with_its_receipt(
    cashier: Page, demo: DemoRun
) -> None:
    scan(cashier, WATER, MILK, WATER)
    lines = cashier.locator("#lines-body tr")
    expect(lines.nth(0)).to_contain_text("农夫山泉")
    expect(lines.nth(0)).to_contain_text("饮料第二件半价")
    expect(lines.nth(1)).to_contain_text("伊利 纯牛奶")
    expect(cashier.get_by_test_id("promotions")).to_contain_text("饮料第二件半价 -¥0.75")
    expect(cashier.get_by_test_id("item-count")).to_have_text("3")
    expect(cashier.get_by_test_id("total")).to_have_text("¥5.75")  # 1.50 + 3.50 + 1.50 - 0.75
    shoot(cashier, "cashier-sale")
    open_tender(cashier)
    expect(cashier.get_by_test_id("tender-remaining")).to_have_text("¥5.75")
    shoot(cashier, "tender")
    cashier.get_by_test_id("tender-card").click()
    expect(cashier.get_by_test_id("tender-done")).to_be_visible()
    steps = cashier.get_by_test_id("payment-steps")
    expect(steps).to_contain_text("请在POS机上刷卡")  # live progress from the terminal
    expect(cashier.get_by_test_id("payment-outcome")).to_have_class("ok")
    expect(cashier.get_by_test_id("change-due")).to_have_text("¥0.00")
    receipt = cashier.get_by_test_id("tender-receipt")
    expect(receipt).to_contain_text("银行卡")
    expect(receipt).to_contain_text(re.compile(r"卡号：622848\*+0018"))
    expect(receipt).to_contain_text("￥5.75")
    shoot(cashier, "receipt")
    receipt_no = next_customer(cashier)
    expect(cashier.get_by_test_id("scan-input")).to_be_focused()
    printed = printed_receipt(demo, "L01", receipt_no)  # by the lane's virtual printer
    assert re.search(r"卡号：622848\*+0018", printed), printed
    assert "￥5.75" in printed


def printed_receipt(demo: DemoRun, lane: str, receipt_no: str, timeout: float = 15.0) -> str:
    """The text of the virtual printer's job that printed ``receipt_no`` (bounded wait)."""
    directory = Path(demo.state["printers"][lane]["receipts"])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for job in sorted(directory.glob("job-*.txt")):
            text = job.read_text(encoding="utf-8", errors="replace")
            if receipt_no in text:
                return text
        time.sleep(0.1)
    raise AssertionError(f"receipt {receipt_no} was not printed in {directory}")


def test_a_declined_card_is_explained_and_cash_then_gives_change(cashier: Page) -> None:
    scan(cashier, CRISPS)
    open_tender(cashier)
    decline = f"{CARD_AMOUNTS['decline'] / 100:.2f}"  # the demo customer's declining card
    cashier.get_by_test_id("tender-amount").fill(decline)
    cashier.get_by_test_id("tender-card").click()
    outcome = cashier.get_by_test_id("payment-outcome")
    expect(outcome).to_have_class("bad")
    expect(outcome).to_contain_text("支付被拒绝")
    expect(outcome).to_contain_text("05")
    expect(outcome).to_contain_text("未扣款")
    shoot(cashier, "tender-declined")
    expect(cashier.get_by_test_id("tender-remaining")).to_have_text("¥4.50")  # nothing taken
    pay_cash(cashier, "10")
    expect(cashier.get_by_test_id("change-due")).to_have_text("¥5.50")
    expect(cashier.get_by_test_id("tender-receipt")).to_contain_text("现金")
    next_customer(cashier)


def test_split_tender_cash_then_a_qr_payment_code(cashier: Page) -> None:
    scan(cashier, MILK, CRISPS)
    open_tender(cashier)
    pay_cash(cashier, "2")
    expect(cashier.get_by_test_id("tender-remaining")).to_have_text("¥6.00")
    expect(cashier.get_by_test_id("tender-done")).to_be_hidden()
    cashier.get_by_test_id("tender-qr").click()
    code = cashier.get_by_test_id("tender-qr-code")
    expect(code).to_be_focused()
    cashier.keyboard.type(qr_code(Wallet.WECHAT))  # the customer's 付款码, scanned
    cashier.keyboard.press("Enter")
    expect(cashier.get_by_test_id("tender-done")).to_be_visible()
    expect(cashier.get_by_test_id("payment-outcome")).to_contain_text("支付成功 ¥6.00")
    receipt = cashier.get_by_test_id("tender-receipt")
    expect(receipt).to_contain_text(re.compile(r"现金\s+￥2\.00"))
    expect(receipt).to_contain_text(re.compile(r"扫码支付\s+￥6\.00"))
    expect(receipt).to_contain_text("wechat")
    shoot(cashier, "receipt-split")
    next_customer(cashier)


def test_a_page_reloaded_during_a_card_payment_shows_the_sale_completed(cashier: Page) -> None:
    scan(cashier, CRISPS)
    open_tender(cashier)
    pay_cash(cashier, "4.17")
    expect(cashier.get_by_test_id("tender-remaining")).to_have_text("¥0.33")
    receipt = cashier.get_by_test_id("receipt-no").inner_text()
    slow = f"{CARD_AMOUNTS['slow_customer'] / 100:.2f}"  # the customer takes 4 s to tap
    cashier.get_by_test_id("tender-amount").fill(slow)
    with cashier.expect_request(lambda request: request.url.endswith("/card")):
        cashier.get_by_test_id("tender-card").click()
    cashier.reload()  # the cashier reloads while the terminal waits for the card
    expect(cashier.get_by_test_id("receipt-no")).to_have_text(receipt)  # the same sale, open
    message = cashier.get_by_test_id("message")
    expect(message).to_contain_text(f"交易完成，小票 {receipt}", timeout=20_000)
    expect(cashier.get_by_test_id("tender-dialog")).to_be_hidden()
    shoot(cashier, "reloaded-mid-payment")


def _start_return(page: Page, receipt_no: str) -> None:
    page.keyboard.press("F9")
    expect(page.get_by_test_id("return-dialog")).to_be_visible()
    page.keyboard.type(receipt_no)
    page.keyboard.press("Enter")
    page.get_by_test_id("return-pick-1").check()
    shoot(page, "return")
    page.get_by_test_id("return-submit").click()
    expect(page.get_by_test_id("approval-dialog")).to_be_visible()


def test_a_return_needs_the_supervisor_and_a_wrong_password_is_refused(
    cashier: Page, demo: DemoRun
) -> None:
    scan(cashier, MILK)
    open_tender(cashier)
    pay_cash(cashier, "3.50")
    receipt_no = next_customer(cashier)

    _start_return(cashier, receipt_no)
    cashier.get_by_test_id("approval-username").fill("zhang")
    cashier.get_by_test_id("approval-password").fill("not-his-password")
    cashier.get_by_test_id("approval-reason").fill("顾客不要了")
    cashier.keyboard.press("Enter")
    message = cashier.get_by_test_id("message")
    expect(message).to_contain_text(re.compile("密码|授权|拒绝"))
    expect(message).not_to_contain_text("退货完成")

    _start_return(cashier, receipt_no)
    expect(cashier.get_by_test_id("approval-what")).to_contain_text(receipt_no)
    cashier.get_by_test_id("approval-username").fill("zhang")
    cashier.get_by_test_id("approval-password").fill(demo.state["users"]["zhang"]["password"])
    cashier.get_by_test_id("approval-reason").fill("顾客不要了")
    shoot(cashier, "return-approval")
    cashier.keyboard.press("Enter")
    expect(message).to_contain_text("退货完成，请退现金")
    expect(cashier.get_by_test_id("scan-input")).to_be_focused()


def test_lane_two_pays_by_card_over_the_serial_terminal(demo: DemoRun, browser: Browser) -> None:
    context = browser.new_context(viewport=VIEWPORT, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    sign_in(page, lane_url(demo, "L02"), "li", demo.state["users"]["li"]["password"])
    page.get_by_test_id("shift-float").fill("300")
    page.get_by_test_id("shift-open").click()
    expect(page.get_by_test_id("lane-id")).to_contain_text("L02")
    expect(page.get_by_test_id("terminal-status")).to_have_attribute("data-state", "ready")
    scan(page, CRISPS)
    open_tender(page)
    page.keyboard.press("Alt+C")
    expect(page.get_by_test_id("payment-outcome")).to_contain_text("支付成功 ¥4.50")
    expect(page.get_by_test_id("tender-receipt")).to_contain_text("单号：L02-")
    context.close()


def test_closing_the_shift_then_the_admin_reads_the_z_report(
    cashier: Page, demo: DemoRun, browser: Browser
) -> None:
    # Cash taken on L01 so far: 10.00 - 5.50 change + 2.00 + 4.17 + 3.50 - 3.50 returned
    # = 10.67, on a float of 500.00: the drawer should hold 510.67.
    cashier.keyboard.press("Alt+S")
    expect(cashier.get_by_test_id("input-dialog")).to_be_visible()
    cashier.get_by_test_id("input-value").fill("510.67")
    cashier.keyboard.press("Enter")
    report = cashier.get_by_test_id("text-body")
    expect(report).to_contain_text("X")
    expect(cashier.get_by_test_id("text-title")).to_contain_text("¥0.00")  # no variance
    shoot(cashier, "shift-closed")
    cashier.keyboard.press("Escape")
    expect(cashier.get_by_test_id("shift-float")).to_be_visible()  # next shift

    admin = browser.new_context(viewport=VIEWPORT, bypass_csp=True).new_page()
    admin.set_default_timeout(WAIT_MS)
    sign_in(
        admin, demo.state["web_url"] + "/admin", "admin", demo.state["users"]["admin"]["password"]
    )
    admin.get_by_role("tab", name="班次与报表").click()
    section = admin.get_by_test_id("section-reports")
    section.locator("input[name=lane_id]").fill("L01")
    admin.once("dialog", lambda dialog: dialog.accept())  # "close the day?" confirmation
    admin.get_by_test_id("z-report").click()
    text = admin.get_by_test_id("report-text")
    expect(text).to_contain_text("日结报表 Z")
    expect(text).to_contain_text(re.compile(r"退货笔数\s+1\n"))
    expect(text).to_contain_text(re.compile(r"银行卡\s+￥6\.08"))  # 5.75 + the slow 0.33
    expect(text).to_contain_text(re.compile(r"扫码支付\s+￥6\.00"))
    expect(text).to_contain_text(re.compile(r"实点现金\s+￥510\.67"))
    expect(text).to_contain_text(re.compile(r"长短款\s+￥0\.00"))
    shoot(admin, "admin-z-report")
    admin.context.close()


def test_admin_pages_show_the_paired_terminals_and_the_sales(
    demo: DemoRun, browser: Browser
) -> None:
    page = browser.new_context(viewport=VIEWPORT, bypass_csp=True).new_page()
    page.set_default_timeout(WAIT_MS)
    sign_in(
        page, demo.state["web_url"] + "/admin", "admin", demo.state["users"]["admin"]["password"]
    )
    terminals = page.get_by_test_id("terminals-table")
    expect(terminals).to_contain_text("10000001")
    expect(terminals).to_contain_text("10000002")
    expect(terminals).to_contain_text("serial://")
    shoot(page, "admin-fleet")
    page.get_by_role("tab", name="销售流水").click()
    page.get_by_test_id("section-journal").locator("button[type=submit]").click()
    journal = page.get_by_test_id("journal-table")
    expect(journal).to_contain_text("L01-000001")
    expect(journal).to_contain_text(re.compile(r"622848\*+0018"))
    expect(journal).to_contain_text("L02-")
    shoot(page, "admin-journal")
    for tab, name in (("商品与价格", "admin-catalogue"), ("分时销售", "admin-hourly")):
        page.get_by_role("tab", name=tab).click()
        shoot(page, name)
    page.context.close()


def test_ctrl_c_stops_every_process_of_the_demo(demo: DemoRun) -> None:
    children: dict[str, Any] = demo.state["children"]
    assert len(children) >= 5
    assert demo.interrupt() == 0, demo.text()
    assert demo.leftovers() == {}
    assert "已全部停止" in demo.text()
    assert "did not stop" not in demo.text()  # nobody had to be killed (with pages still open)
    assert (SCREENSHOTS / "cashier-sale.png").exists()
