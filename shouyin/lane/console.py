"""The interactive lane console (``shouyin sell``): a keyboard checkout in a terminal.

A barcode scanner in keyboard-wedge mode types digits and Enter, so a scan is simply a line of
digits. Everything else is a short command. The console is a thin loop over the lane services:
it parses a line, calls one service, and shows the result or the typed error in plain words.
Input comes from an iterator, so tests drive it line by line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from rich.console import Console
from rich.table import Table

from shouyin.devices.receipt import ReceiptHeader, render_sale
from shouyin.devices.report_layout import render_report
from shouyin.domain.errors import DomainError
from shouyin.domain.money import Money
from shouyin.domain.sale import Sale
from shouyin.domain.sale_states import SaleState
from shouyin.domain.users import User
from shouyin.lane import services
from shouyin.store.uow import AbstractUnitOfWork

HELP = """\
条码            扫码（扫码枪输入数字加回车）/ scan a barcode
*N              把最后一行数量改为 N / set the last line's quantity
del N           删除第 N 行 / remove line N
hold            挂单 / hold this sale      recall   取单 / recall the oldest held sale
pay 金额        现金收款，如 pay 100 / cash tendered
x               中间报表 / X report
close 金额      交班，输入实点现金 / close the shift with the counted cash
help            帮助 / help            quit     退出 / quit"""


class LaneConsole:
    """One cashier's session at a lane.

    Args:
        new_uow: makes a fresh unit of work per command.
        ctx: the lane context (lane id, clock, promotions).
        cashier: the logged-in cashier.
        header: store header for receipts.
        console: where to write.
    """

    def __init__(
        self,
        new_uow: Callable[[], AbstractUnitOfWork],
        ctx: services.Context,
        cashier: User,
        header: ReceiptHeader,
        console: Console,
    ) -> None:
        self._uow = new_uow
        self._ctx = ctx
        self._cashier = cashier
        self._header = header
        self._out = console
        self._sale: Sale | None = None

    def run(self, lines: Iterator[str]) -> None:
        """Process input lines until ``quit`` or the end of input."""
        self._out.print(HELP)
        for raw in lines:
            line = raw.strip()
            if not line:
                continue
            if line in ("quit", "exit", "q"):
                break
            try:
                self.handle(line)
            except DomainError as error:
                self._out.print(f"[red]✗ {error}[/red]")

    def handle(self, line: str) -> None:
        """Carry out one input line (raises typed domain errors for the caller to show)."""
        command, _, arg = line.partition(" ")
        if line.isdigit():
            self._scan(line)
        elif line.startswith("*") and line[1:].isdigit():
            sale = self._need_sale()
            last = sale.active_lines[-1].line_no if sale.active_lines else 0
            self._sale = services.set_quantity(self._uow(), sale.sale_id, last, int(line[1:]))
            self._show()
        elif command == "del" and arg.isdigit():
            sale = self._need_sale()
            self._sale = services.remove_line(self._uow(), sale.sale_id, int(arg))
            self._show()
        elif command == "hold":
            services.hold_sale(self._uow(), self._need_sale().sale_id)
            self._out.print("已挂单 / held")
            self._sale = None
        elif command == "recall":
            held = services.held_sales(self._uow(), self._ctx)
            if not held:
                self._out.print("没有挂单 / nothing held")
                return
            self._sale = services.recall_sale(self._uow(), held[0].sale_id)
            self._show()
        elif command == "pay":
            self._pay(Money.parse(arg))
        elif command == "x":
            report = services.build_x_report(self._uow(), self._ctx)
            names = {self._cashier.user_id: self._cashier.display_name}
            self._print_lines(render_report(report, self._header.store_name, cashier_names=names))
        elif command == "close":
            shift = services.close_shift(self._uow(), self._ctx, Money.parse(arg))
            closing = shift.closing
            if closing is not None:
                self._out.print(
                    f"交班完成：应有 {closing.expected}，实点 {closing.counted}，"
                    f"长短款 {closing.variance}"
                )
        elif command == "help":
            self._out.print(HELP)
        else:
            self._out.print(f"[yellow]不认识的命令 / unknown command: {line}[/yellow]")

    def _need_sale(self) -> Sale:
        if self._sale is None:
            raise services.UnknownSale("没有进行中的交易 / no sale in progress")
        return self._sale

    def _scan(self, code: str) -> None:
        if self._sale is None or self._sale.state is not SaleState.OPEN:
            self._sale = services.start_sale(self._uow(), self._ctx, self._cashier)
        services.scan(self._uow(), self._ctx, self._sale.sale_id, code)
        with self._uow() as uow:
            self._sale = services.get_sale(uow, self._sale.sale_id)
        self._show()

    def _pay(self, tendered: Money) -> None:
        sale = services.pay_cash(self._uow(), self._ctx, self._need_sale().sale_id, tendered)
        if sale.state is SaleState.COMPLETED:
            self._print_lines(
                render_sale(sale, self._header, cashier_name=self._cashier.display_name)
            )
            self._out.print(f"[bold green]找零 {sale.change}[/bold green]")
            self._sale = None
        else:
            self._sale = sale
            self._out.print(f"还需支付 / still due: {sale.remaining}")

    def _show(self) -> None:
        sale = self._need_sale()
        table = Table("#", "商品", "数量", "金额", title=f"小票 {sale.receipt_no}")
        priced = {p.line_no: p for p in sale.priced.lines}
        for line in sale.active_lines:
            qty = f"{line.grams} g" if line.grams is not None else str(line.quantity)
            table.add_row(str(line.line_no), line.name, qty, str(priced[line.line_no].net))
        self._out.print(table)
        for promo in sale.applied_promotions:
            self._out.print(f"  优惠 {promo.name}: -{promo.amount}")
        self._out.print(f"[bold]应付 / due: {sale.total_due}[/bold]")

    def _print_lines(self, lines: list[str]) -> None:
        self._out.print("\n".join(lines), markup=False, highlight=False)
