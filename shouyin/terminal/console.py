"""The simulator's interactive console: the terminal's screen and keypad on a text terminal.

``shouyin terminal sim --interactive`` puts a person in front of the simulated 电签POS.
:class:`TerminalConsole` draws what the terminal's screen shows, one Rich panel per change:
the amount and "请刷卡/插卡/挥卡" when a card payment arrives, "请输入密码", "请持卡人签名",
the customer's payment code (付款码) and its wallet when the cashier scanned one, the code to
scan for a merchant-presented QR payment, "交易处理中" while the acquirer works, and the result.

It is also the terminal's card reader, PIN pad and signature pad (it implements
:class:`~shouyin.terminal.ports.CardReader`): when a card payment arrives it lists the test
cards (:data:`~shouyin.terminal.cards.TEST_CARDS`, the acquirer simulator's table) and reads the
person's choice, e.g. ``pin``, ``3`` or ``visa tap`` (how the card is read: ``chip``/``insert``,
``tap``/``contactless``, ``swipe``). A payment code typed or scanned at that prompt is recognised
(WeChat Pay, Alipay, UnionPay) and handed back to the person: on this link the cashier system
scans the customer's code and sends it with a QR payment (DESIGN.md section 6), so a code shown
to the terminal during a card payment cannot pay for it.

Input comes from a :class:`LineSource`: :class:`StdinLines` for a person, :class:`ScriptedLines`
for tests and demos. The console shows card numbers masked only and never echoes a PIN (the
person's own terminal may echo what they type; the test PINs are public).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import segno
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from shouyin.acquirer.testcards import TestCard, card_by_pan
from shouyin.link.messages import (
    DisplayRequest,
    EventNotification,
    MessageBase,
    PaymentProgress,
    PaymentRequest,
    PaymentResponse,
    ReconciliationRequest,
    ReconciliationResponse,
    RefundRequest,
    RefundResponse,
    ReversalRequest,
    ReversalResponse,
)
from shouyin.link.values import CardEntry, PaymentKind, ProgressStage, Result, Wallet
from shouyin.link.wallets import DEFAULT_WALLET_RULES, WalletRule, recognise_wallet
from shouyin.terminal.cards import TEST_CARDS, read_test_card, scribble
from shouyin.terminal.ports import CardData, CardPrompt, PinEntry, Signature
from shouyin.terminal.slips import format_fen

__all__ = [
    "ENTRY_WORDS",
    "WALLET_NAMES",
    "LineSource",
    "ScriptedLines",
    "StdinLines",
    "TerminalConsole",
    "parse_card_choice",
    "qr_text",
]

logger = logging.getLogger(__name__)

ENTRY_WORDS: dict[str, CardEntry] = {
    "chip": CardEntry.CHIP,
    "insert": CardEntry.CHIP,
    "插卡": CardEntry.CHIP,
    "tap": CardEntry.CONTACTLESS,
    "contactless": CardEntry.CONTACTLESS,
    "挥卡": CardEntry.CONTACTLESS,
    "swipe": CardEntry.SWIPE,
    "刷卡": CardEntry.SWIPE,
}
"""Words for how a card is presented (default: inserted)."""
WALLET_NAMES: dict[Wallet, str] = {
    Wallet.WECHAT: "微信支付",
    Wallet.ALIPAY: "支付宝",
    Wallet.UNIONPAY: "云闪付",
    Wallet.OTHER: "其他钱包",
}
"""How the screen names each wallet."""
_NO_CARD = frozenset({"n", "no", "none", "x", "cancel", "取消"})
_REFUSE = frozenset({"n", "no", "x", "cancel", "取消"})
_READER_STAGES = frozenset(
    {
        ProgressStage.PRESENT_CARD,
        ProgressStage.READING_CARD,
        ProgressStage.PIN_ENTRY,
        ProgressStage.SIGNATURE,
    }
)
_HALF_BLOCKS = {(True, True): "█", (True, False): "▀", (False, True): "▄", (False, False): " "}


class LineSource(Protocol):
    """Where the person's input comes from, one line at a time."""

    async def readline(self) -> str | None:
        """The next line without its newline, or ``None`` at the end of input."""
        ...


class ScriptedLines:
    """Input from a list of lines (tests and demos); ``None`` once they are used up.

    Args:
        lines: the lines, in order.
    """

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines = deque(lines)

    @property
    def left(self) -> int:
        """Lines not read yet."""
        return len(self._lines)

    async def readline(self) -> str | None:
        """The next scripted line."""
        await asyncio.sleep(0)  # a person never answers within the same instant
        return self._lines.popleft() if self._lines else None


class StdinLines:
    """Lines typed on standard input, read by a daemon thread (so that a pending read never
    keeps the process from exiting) and handed to the event loop."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[str | None] | None = None

    def _start(self) -> asyncio.Queue[str | None]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | None] = asyncio.Queue()

        def pump() -> None:
            while True:
                line = sys.stdin.readline()
                with contextlib.suppress(RuntimeError):  # the loop is gone: we are exiting
                    loop.call_soon_threadsafe(
                        queue.put_nowait, line.rstrip("\r\n") if line else None
                    )
                if not line:
                    return

        threading.Thread(target=pump, name="terminal console input", daemon=True).start()
        return queue

    async def readline(self) -> str | None:
        """The next line typed, ``None`` after end of input (Ctrl-D)."""
        if self._queue is None:
            self._queue = self._start()
        line = await self._queue.get()
        if line is None:
            self._queue.put_nowait(None)  # stays at the end
        return line


def parse_card_choice(
    text: str, cards: Sequence[TestCard] = TEST_CARDS
) -> tuple[TestCard, CardEntry] | None:
    """The test card and entry mode a person typed (``"pin"``, ``"3"``, ``"visa tap"``).

    Args:
        text: the line typed; the card by its number in the list (from 1) or its name,
            optionally followed by how it is presented (:data:`ENTRY_WORDS`).
        cards: the cards offered.

    Returns:
        ``(card, entry)``, or ``None`` when the line names no card or no known entry mode.
    """
    words = text.strip().lower().split()
    if not words or len(words) > 2:
        return None
    first, entry = words[0], CardEntry.CHIP
    if len(words) == 2:
        if words[1] not in ENTRY_WORDS:
            return None
        entry = ENTRY_WORDS[words[1]]
    if first.isdigit():
        index = int(first) - 1
        return (cards[index], entry) if 0 <= index < len(cards) else None
    card = next((card for card in cards if card.name == first), None)
    return (card, entry) if card is not None else None


def qr_text(payload: str, border: int = 2) -> str:
    """A QR code as terminal text, two module rows per line (light blocks on a dark screen)."""
    rows = [
        [not module for module in row]
        for row in segno.make_qr(payload, error="m").matrix_iter(scale=1, border=border)
    ]
    if len(rows) % 2:
        rows.append([False] * len(rows[0]))
    return "\n".join(
        "".join(_HALF_BLOCKS[top, bottom] for top, bottom in zip(upper, lower, strict=True))
        for upper, lower in zip(rows[0::2], rows[1::2], strict=True)
    )


def _mask_code(code: str) -> str:
    """A payment code as the screen shows it: first 4 and last 4 digits."""
    return code[:4] + "*" * max(0, len(code) - 8) + code[-4:] if len(code) > 8 else code


class TerminalConsole:
    """The terminal's screen on a Rich console, and its card reader driven by a person.

    Args:
        console: where the screen is drawn.
        lines: where the person's input comes from.
        terminal_id: shown in the screen's title.
        cards: the test cards offered.
        wallet_rules: how a typed payment code is recognised.

    Attributes:
        screen: the lines the screen shows now.
    """

    def __init__(
        self,
        console: Console,
        lines: LineSource,
        *,
        terminal_id: str = "",
        cards: Sequence[TestCard] = TEST_CARDS,
        wallet_rules: Sequence[WalletRule] = DEFAULT_WALLET_RULES,
    ) -> None:
        self.console = console
        self.lines = lines
        self.terminal_id = terminal_id
        self.cards = tuple(cards)
        self.wallet_rules = tuple(wallet_rules)
        self.screen: tuple[str, ...] = ("欢迎使用",)
        self._amount: int | None = None
        self._last_progress: tuple[ProgressStage, str | None] | None = None

    # -- the screen ----------------------------------------------------------------------------

    def show(self, *lines: str, title: str = "", extra: str | None = None) -> None:
        """Draw the screen with ``lines`` (and ``extra``, e.g. a QR code, below them)."""
        self.screen = lines
        body: list[Text] = [Text(line, justify="center") for line in lines]
        if extra is not None:
            body.append(Text(extra, no_wrap=True, overflow="crop"))
        heading = f"电签POS {self.terminal_id}".strip() + (f" · {title}" if title else "")
        self.console.print(Panel(Group(*body), title=heading, width=44))

    def note(self, text: str) -> None:
        """A line below the screen (link events, notifications)."""
        self.console.print(Text(f"· {text}", style="dim"))

    def event(self, event: str, **fields: Any) -> None:
        """What the simulator reports (its ``emit``), told to the person."""
        if event == "serial":
            self.note(f"收银机请连接串口 cashier side: {fields.get('ecr_path')}")
        elif event == "listening":
            self.note(f"等待收银机连接 waiting for the cashier at {fields.get('address')}")
        elif event == "started":
            self.terminal_id = str(fields.get("terminal_id") or self.terminal_id)
            self.note(f"终端已启动 started, 批次 batch {fields.get('batch')}")
            self.show("欢迎使用", title="待机")
        elif event == "paired":
            self.note(f"配对成功 paired with {fields.get('peer')}")
        elif event == "logged_in":
            self.note(f"已签到 logged in: {fields.get('peer')}")
        elif event == "link_dead":
            self.note(f"链路中断 link down: {fields.get('reason')}")
        elif event == "error":
            self.console.print(Text(f"✗ {fields.get('message')}", style="red"))
        elif event not in ("request", "response"):
            detail = " ".join(f"{key}={value}" for key, value in fields.items())
            self.note(f"{event} {detail}".strip())

    def watch(self, message: MessageBase) -> None:
        """See a request arriving from the cashier system, or a message the terminal sends."""
        if isinstance(message, PaymentRequest):
            self._payment_arrived(message)
        elif isinstance(message, PaymentProgress):
            self._progress(message)
        elif isinstance(message, PaymentResponse):
            self._payment_result(message)
        elif isinstance(message, RefundRequest):
            self.show("退货 REFUND", format_fen(message.amount), "交易处理中", title="退货")
        elif isinstance(message, ReversalRequest):
            self.show("撤销/冲正", f"收银流水号 {message.ecr_ref}", title=message.reason.value)
        elif isinstance(message, ReconciliationRequest):
            self.show("结算中 SETTLEMENT", title="结算")
        elif isinstance(message, RefundResponse | ReversalResponse):
            self._after_sale_result(message)
        elif isinstance(message, ReconciliationResponse):
            lines = [f"批次 {message.batch or ''}"]
            for t in message.totals:
                name = t.kind.value + (f"/{t.wallet.value}" if t.wallet else "")
                lines.append(f"{name}: {t.count} 笔 {format_fen(t.amount)}")
            self.show(_outcome(message.result, "结算成功"), *lines, message.message or "")
        elif isinstance(message, DisplayRequest):
            self.show(*message.lines, title="收银机", extra=_maybe_qr(message.qr_payload))
        elif isinstance(message, EventNotification):
            self.note(f"事件 event: {message.event.value}")

    def _payment_arrived(self, request: PaymentRequest) -> None:
        self._amount = request.amount
        self._last_progress = None
        amount = format_fen(request.amount)
        if request.kind is PaymentKind.QR_CODE and request.auth_code is not None:
            wallet = recognise_wallet(request.auth_code, self.wallet_rules)
            name = WALLET_NAMES[wallet] if wallet is not None else "无法识别的付款码"
            self.show("付款码支付", amount, f"{name} {_mask_code(request.auth_code)}", title="消费")
        elif request.kind is PaymentKind.MERCHANT_QR:
            self.show("扫码付款", amount, "正在生成收款码…", title="消费")

    def _progress(self, progress: PaymentProgress) -> None:
        if progress.stage in _READER_STAGES:
            return  # the reader draws these screens itself
        key = (progress.stage, progress.message)
        if key == self._last_progress:
            return  # a reminder: nothing new to show
        self._last_progress = key
        amount = format_fen(self._amount) if self._amount is not None else ""
        if progress.stage is ProgressStage.SHOWING_QR and progress.message:
            self.show("请顾客扫码支付", amount, title="收款码", extra=qr_text(progress.message))
        else:
            self.show(progress.message or progress.stage.value, amount)

    def _payment_result(self, response: PaymentResponse) -> None:
        self._last_progress = None
        if response.result is not Result.SUCCESS:
            condition = response.error_condition.value if response.error_condition else ""
            self.show("交易失败", response.message or "", condition, title="结果")
            return
        lines = ["交易成功", format_fen(response.amount or 0)]
        data = response.acquirer
        if data is not None:
            if data.masked_pan:
                lines.append(f"卡号 {data.masked_pan}")
            if data.wallet:
                lines.append(WALLET_NAMES[data.wallet])
            lines.append(f"凭证号 {data.trace or ''}  参考号 {data.rrn or ''}")
            if data.auth_code:
                lines.append(f"授权码 {data.auth_code}")
        self.show(*lines, title="结果")

    def _after_sale_result(self, response: RefundResponse | ReversalResponse) -> None:
        done = "退货成功" if isinstance(response, RefundResponse) else "撤销/冲正成功"
        self.show(_outcome(response.result, done), response.message or "", title="结果")

    # -- the person ----------------------------------------------------------------------------

    async def _ask(self, question: str) -> str | None:
        self.console.print(Text(question, style="bold"), end="")
        line = await self.lines.readline()
        self.console.print()
        return None if line is None else line.strip()

    def _card_table(self) -> Table:
        table = Table("#", "卡 card", "卡号 number", "发卡行答复 behaviour", "验证 CVM", box=None)
        for number, card in enumerate(self.cards, start=1):
            table.add_row(
                str(number), card.name, card.masked_pan, card.behaviour.value, card.cvm.value
            )
        return table

    async def read_card(self, prompt: CardPrompt) -> CardData | None:
        """Show "请刷卡/插卡/挥卡" with the amount and wait for the person to choose a card.

        An empty line presents the first card (approve), inserted; ``n`` presents none (the
        payment then fails as "no card"), as does the end of input.
        """
        self._amount = prompt.amount
        self.show("请刷卡/插卡/挥卡", format_fen(prompt.amount), f"收银流水号 {prompt.ecr_ref}")
        self.console.print(self._card_table())
        while True:
            line = await self._ask("选择卡片 card (编号或名称 [chip|tap|swipe], n=不刷卡): ")
            if line is None or line.lower() in _NO_CARD:
                self.show("未检测到卡片", format_fen(prompt.amount))
                return None
            choice = (
                parse_card_choice(line, self.cards) if line else (self.cards[0], CardEntry.CHIP)
            )
            if choice is not None:
                card = read_test_card(choice[0].name, choice[1])
                self.show("读卡中", format_fen(prompt.amount), f"{card.masked_pan} {card.brand}")
                return card
            wallet = recognise_wallet(line, self.wallet_rules) if line.isdigit() else None
            if wallet is not None:
                self.note(
                    f"这是{WALLET_NAMES[wallet]}付款码：请收银员扫码发起扫码支付 "
                    "(a payment code: the cashier scans it and starts a QR payment)"
                )
            else:
                self.note("没有这张卡 no such card; 例如 e.g. 'pin', '3', 'visa tap'")

    async def enter_pin(self, card: CardData, prompt: CardPrompt) -> PinEntry:
        """Show "请输入密码" and read the PIN: an empty line types the card's right PIN,
        ``x`` cancels (so does the end of input)."""
        self.show("请输入密码", format_fen(prompt.amount), card.masked_pan)
        while True:
            line = await self._ask("密码 PIN (回车=正确密码 right PIN, x=取消 cancel): ")
            if line is None or line.lower() in _REFUSE:
                self.show("持卡人取消", format_fen(prompt.amount))
                return PinEntry(None)
            if not line:
                test_card = card_by_pan(card.pan)
                line = test_card.pin if test_card is not None else "123456"
            if line.isdigit() and 4 <= len(line) <= 12:
                self.show("请输入密码", format_fen(prompt.amount), "*" * len(line))
                return PinEntry(line)
            self.note("密码为 4-12 位数字 a PIN is 4-12 digits")

    async def capture_signature(self, card: CardData, prompt: CardPrompt) -> Signature | None:
        """Show "请持卡人签名"; an empty line signs, ``n`` refuses (so does the end of input)."""
        self.show("请持卡人签名", format_fen(prompt.amount), card.masked_pan)
        line = await self._ask("签名 sign (回车=签名 sign, n=拒绝 refuse): ")
        if line is None or line.lower() in _REFUSE:
            return None
        return scribble(prompt.ecr_ref)


def _outcome(result: Result, success: str) -> str:
    return {Result.SUCCESS: success, Result.PARTIAL: "部分完成"}.get(result, "失败")


def _maybe_qr(payload: str | None) -> str | None:
    return qr_text(payload) if payload else None
