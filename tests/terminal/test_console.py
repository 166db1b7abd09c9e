"""The interactive console: the terminal's screen, and a person presenting cards, typing the PIN
and signing, driven by scripted input lines; and ``shouyin terminal sim --interactive`` as a
process whose stdin is the person."""

from __future__ import annotations

import asyncio
import io
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from rich.console import Console

from shouyin.acquirer.testcards import card_by_name
from shouyin.link import (
    AcquirerData,
    Capabilities,
    CardEntry,
    Connection,
    ErrorCondition,
    LinkConfig,
    MessageBase,
    PairingCode,
    PaymentKind,
    PaymentProgress,
    PaymentRequest,
    PaymentResponse,
    ProgressStage,
    Result,
    Role,
    Wallet,
)
from shouyin.link.aio import LinkEndpoint
from shouyin.link.transport import LinkAddress, Transport, open_serial
from shouyin.terminal.app import TerminalApp
from shouyin.terminal.cards import read_test_card
from shouyin.terminal.console import (
    ScriptedLines,
    TerminalConsole,
    parse_card_choice,
    qr_text,
)
from shouyin.terminal.memory_host import MemoryAcquirer
from shouyin.terminal.ports import CardPrompt
from shouyin.terminal.state import TerminalState
from tests.terminal import LoopClock, run_virtual

PROMPT = CardPrompt(amount=1234, ecr_ref="R1")
WECHAT_CODE = "134567890123456791"


def make_console(lines: Sequence[str]) -> tuple[TerminalConsole, io.StringIO, ScriptedLines]:
    out = io.StringIO()
    source = ScriptedLines(lines)
    console = Console(file=out, width=100, color_system=None, force_terminal=False)
    return TerminalConsole(console, source, terminal_id="T0001"), out, source


# -- choosing a card -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name", "entry"),
    [
        ("pin", "pin", CardEntry.CHIP),
        ("  visa  tap ", "visa", CardEntry.CONTACTLESS),
        ("5", "pin", CardEntry.CHIP),
        ("1 swipe", "approve", CardEntry.SWIPE),
        ("decline 挥卡", "decline", CardEntry.CONTACTLESS),
        ("MASTERCARD insert", "mastercard", CardEntry.CHIP),
    ],
)
def test_a_card_is_chosen_by_name_or_number_with_how_it_is_presented(
    text: str, name: str, entry: CardEntry
) -> None:
    choice = parse_card_choice(text)
    assert choice is not None
    assert (choice[0].name, choice[1]) == (name, entry)


@pytest.mark.parametrize("text", ["", "0", "99", "platinum", "pin sideways", "pin tap now"])
def test_a_line_naming_no_card_chooses_nothing(text: str) -> None:
    assert parse_card_choice(text) is None


def test_the_person_presents_the_chosen_card_after_seeing_the_amount() -> None:
    console, out, _ = make_console(["visa tap"])
    card = asyncio.run(console.read_card(PROMPT))
    assert card is not None
    assert card.pan == card_by_name("visa").pan and card.entry is CardEntry.CONTACTLESS
    text = out.getvalue()
    assert "请刷卡/插卡/挥卡" in text and "￥12.34" in text
    assert card_by_name("visa").masked_pan in text  # the table and the "reading" screen
    assert card.pan not in text
    assert console.screen[0] == "读卡中"


def test_an_empty_line_presents_the_first_card_inserted() -> None:
    console, _, _ = make_console([""])
    card = asyncio.run(console.read_card(PROMPT))
    assert card is not None
    assert (card.pan, card.entry) == (card_by_name("approve").pan, CardEntry.CHIP)


def test_an_unknown_card_is_explained_and_the_person_asked_again() -> None:
    console, out, source = make_console(["gold", "pin"])
    card = asyncio.run(console.read_card(PROMPT))
    assert card is not None and card.pan == card_by_name("pin").pan
    assert "没有这张卡" in out.getvalue()
    assert source.left == 0


def test_a_payment_code_at_the_card_prompt_is_recognised_and_handed_back() -> None:
    console, out, _ = make_console([WECHAT_CODE, "approve"])
    card = asyncio.run(console.read_card(PROMPT))
    assert card is not None and card.pan == card_by_name("approve").pan
    text = out.getvalue()
    assert "微信支付付款码" in text and "请收银员扫码" in text


@pytest.mark.parametrize("lines", [["n"], ["取消"], []])
def test_no_card_or_the_end_of_input_presents_nothing(lines: list[str]) -> None:
    console, _, _ = make_console(lines)
    assert asyncio.run(console.read_card(PROMPT)) is None
    assert console.screen[0] == "未检测到卡片"


# -- PIN and signature -----------------------------------------------------------------------------


def test_an_empty_pin_line_types_the_test_cards_right_pin_and_shows_only_stars() -> None:
    console, out, _ = make_console([""])
    entry = asyncio.run(console.enter_pin(read_test_card("pin"), PROMPT))
    assert entry.pin == card_by_name("pin").pin
    text = out.getvalue()
    assert "请输入密码" in text and "******" in text
    assert card_by_name("pin").pin not in text


def test_a_typed_pin_is_taken_and_a_malformed_one_asked_again() -> None:
    console, out, _ = make_console(["12ab", "0000"])
    entry = asyncio.run(console.enter_pin(read_test_card("pin"), PROMPT))
    assert entry.pin == "0000"
    assert "4-12" in out.getvalue()


@pytest.mark.parametrize("lines", [["x"], []])
def test_the_cardholder_may_cancel_at_the_pin_pad(lines: list[str]) -> None:
    console, _, _ = make_console(lines)
    assert asyncio.run(console.enter_pin(read_test_card("pin"), PROMPT)).pin is None


def test_the_cardholder_signs_or_refuses() -> None:
    card = read_test_card("approve")
    console, out, _ = make_console(["", "n"])
    signed = asyncio.run(console.capture_signature(card, PROMPT))
    assert signed is not None and signed.strokes
    assert asyncio.run(console.capture_signature(card, PROMPT)) is None
    assert "请持卡人签名" in out.getvalue()


# -- the screen ------------------------------------------------------------------------------------


def test_a_scanned_payment_code_shows_its_wallet_masked_then_the_result() -> None:
    console, out, _ = make_console([])
    request = PaymentRequest(
        service_id="S1",
        ecr_ref="Q1",
        amount=880,
        kind=PaymentKind.QR_CODE,
        auth_code=WECHAT_CODE,
    )
    console.watch(request)
    assert console.screen == ("付款码支付", "￥8.80", "微信支付 1345**********6791")
    wait = PaymentProgress(
        service_id="S1", stage=ProgressStage.WAITING_FOR_CUSTOMER, message="等待顾客确认支付"
    )
    console.watch(wait)
    console.watch(wait)  # a reminder is not drawn again
    assert out.getvalue().count("等待顾客确认支付") == 1
    console.watch(
        PaymentResponse(
            service_id="S1",
            ecr_ref="Q1",
            result=Result.SUCCESS,
            amount=880,
            kind=PaymentKind.QR_CODE,
            acquirer=AcquirerData(trace="000007", rrn="000000000007", wallet=Wallet.WECHAT),
        )
    )
    assert console.screen[:3] == ("交易成功", "￥8.80", "微信支付")
    assert WECHAT_CODE not in out.getvalue()


def test_a_failed_payment_shows_why() -> None:
    console, _, _ = make_console([])
    console.watch(
        PaymentResponse(
            service_id="S1",
            ecr_ref="R1",
            result=Result.FAILURE,
            error_condition=ErrorCondition.INSUFFICIENT_FUNDS,
            message="余额不足 (51)",
        )
    )
    assert console.screen == ("交易失败", "余额不足 (51)", "insufficient_funds")


def test_a_merchant_presented_code_is_drawn_for_the_customer_to_scan() -> None:
    console, out, _ = make_console([])
    console.watch(
        PaymentRequest(service_id="S1", ecr_ref="M1", amount=500, kind=PaymentKind.MERCHANT_QR)
    )
    payload = "https://qr.shouyin.invalid/wechat/WX0001"
    console.watch(PaymentProgress(service_id="S1", stage=ProgressStage.SHOWING_QR, message=payload))
    assert console.screen == ("请顾客扫码支付", "￥5.00")
    symbol = qr_text(payload)
    assert symbol.splitlines()[1] in out.getvalue()
    assert set(symbol) <= set("█▀▄ \n")


def test_link_events_are_told_to_the_person() -> None:
    console, out, _ = make_console([])
    console.event("serial", ecr_path="/dev/pts/9", baud=115200)
    console.event("started", terminal_id="T0042", batch="000001")
    console.event("request", type="payment_request", service_id="E1")
    text = out.getvalue()
    assert "/dev/pts/9" in text and "T0042" in text and "欢迎使用" in text
    assert "payment_request" not in text


# -- through the terminal application --------------------------------------------------------------


def test_a_person_pays_with_the_pin_card_through_the_terminal(tmp_path: Path) -> None:
    console, out, source = make_console(["pin", "", ""])

    async def main() -> PaymentResponse:
        state = TerminalState(tmp_path / "terminal")
        sent: list[MessageBase] = []

        def outbox(message: MessageBase) -> None:
            console.watch(message)
            sent.append(message)

        app = TerminalApp(state, MemoryAcquirer(), console, clock=LoopClock(), outbox=outbox)
        request = PaymentRequest(service_id="S1", ecr_ref="R1", amount=1234, kind=PaymentKind.CARD)
        console.watch(request)
        response = await app.handle(request)
        state.close()
        assert isinstance(response, PaymentResponse)
        return response

    response = run_virtual(main)
    assert response.result is Result.SUCCESS, response
    assert response.acquirer is not None
    assert response.acquirer.masked_pan == card_by_name("pin").masked_pan
    assert source.left == 0  # card, PIN, signature
    text = out.getvalue()
    order = [
        text.index(word) for word in ("请刷卡/插卡/挥卡", "请输入密码", "请持卡人签名", "交易成功")
    ]
    assert order == sorted(order)
    assert console.screen[0] == "交易成功"


# -- the process -----------------------------------------------------------------------------------

ECR = LinkConfig(heartbeat_interval=0.5, dead_after=2.0, login_timeout=3.0, pairing_timeout=5.0)
SERIAL_PATH = re.compile(r"(/dev/pts/\d+)")


async def _read_until(out: Path, pattern: re.Pattern[str], limit: float) -> re.Match[str]:
    async with asyncio.timeout(limit):
        while (found := pattern.search(out.read_text(errors="replace"))) is None:
            await asyncio.sleep(0.05)
    return found


def test_interactive_process_takes_the_card_the_person_chooses(tmp_path: Path) -> None:
    (tmp_path / "stdin").write_text("pin\n\n\n")  # the card, the right PIN, a signature
    out = tmp_path / "stdout"
    code = PairingCode.generate(time.monotonic())
    args = [
        *("terminal", "sim", "--interactive", "--serial", "pty", "--pair", code.digits),
        *("--state-dir", str(tmp_path / "t"), "--control", "off", "--dead-after", "2"),
    ]
    with (tmp_path / "stdin").open("rb") as stdin, out.open("wb") as stdout:
        process = subprocess.Popen(
            [sys.executable, "-m", "shouyin.cli", *args],
            stdin=stdin,
            stdout=stdout,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    async def scenario() -> PaymentResponse:
        path = (await _read_until(out, SERIAL_PATH, 10.0)).group(1)
        address = LinkAddress.parse(f"serial://{path}?baud=115200")

        async def dial() -> Transport:
            return await open_serial(address)

        connection = Connection(
            Role.ECR,
            "lane-01",
            Capabilities(max_frame_size=8192, firmware="test"),
            config=ECR,
            framer_factory=address.framer_factory(),
        )
        cashier = LinkEndpoint(connection, connector=dial)
        cashier.allow_pairing(code)
        await cashier.start()
        try:
            await cashier.wait_ready(20.0)
            request = PaymentRequest(
                service_id=cashier.new_service_id(),
                ecr_ref="I1",
                amount=4321,
                kind=PaymentKind.CARD,
            )
            response = await cashier.request(request, timeout=15.0)
            assert isinstance(response, PaymentResponse)
            await _read_until(out, re.compile("交易成功"), 5.0)
            return response
        finally:
            await cashier.close()

    try:
        response = asyncio.run(asyncio.wait_for(scenario(), 40.0))
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5.0)
    assert response.result is Result.SUCCESS, response
    assert response.acquirer is not None
    assert response.acquirer.masked_pan == card_by_name("pin").masked_pan
    text = out.read_text(errors="replace")
    for screen in ("请刷卡/插卡/挥卡", "￥43.21", "请输入密码", "请持卡人签名", "交易成功"):
        assert screen in text
    assert card_by_name("pin").pan not in text
