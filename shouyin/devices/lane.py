"""One facade for a lane's peripherals: receipt printer, cash drawer, customer display.

:class:`LaneDevices` is what the web server (in a worker thread) and the CLI call. Every device
is optional; every method is synchronous and bounded by the device's timeout; failures raise a
:class:`~shouyin.devices.errors.DeviceError` whose ``user_message()`` is for the cashier.

Usage::

    devices = LaneDevices.from_settings(Settings(), audit=record_drawer_open)
    devices.show_item("可口可乐 330ml", Money(250))
    devices.show_total(sale.total_due)
    devices.print_receipt(sale, cashier_name="李四", user_id="u1")  # kicks the drawer on cash
    devices.show_change(sale.paid, sale.change)
    state = devices.printer_status().state                       # ok, near_end, paper_out...

The drawer opens through the printer (``ESC p``): with the receipt of a sale paid (partly) in
cash, or alone for a supervised no-sale (:meth:`LaneDevices.open_drawer`). Each opening, and each
failed attempt, is reported to the ``audit`` callback as a :class:`DrawerOpened`; the lane wires
it to the audit log (PCI DSS 10.2.2: who, what, when, success or failure).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from shouyin.devices.display import (
    Screen,
    change_screen,
    encode_screen,
    init_bytes,
    item_screen,
    total_screen,
)
from shouyin.devices.display_led import LedLamp, encode_led
from shouyin.devices.errors import DisplayError, PrinterError, PrinterErrorKind
from shouyin.devices.escpos_model import (
    DRAWER_KICK_PULSE,
    DRAWER_KICK_REALTIME,
    PrinterEncoding,
    QrCode,
    encode,
    encode_block,
)
from shouyin.devices.printer import PrinterConfig, PrinterLink, PrinterState, PrinterStatus
from shouyin.devices.receipt import ReceiptHeader
from shouyin.devices.receipt_print import ReceiptOptions, copy_mark, has_cash, receipt_document
from shouyin.domain.money import Money
from shouyin.domain.sale_view import SaleView

if TYPE_CHECKING:
    import serial

    from shouyin.config import Settings

__all__ = ["DrawerAudit", "DrawerOpened", "DrawerReason", "LaneDevices"]

logger = logging.getLogger(__name__)

DISPLAY_WRITE_TIMEOUT = 1.0
STATUS_MISSES_BEFORE_SKIP = 3  # consecutive unanswered status queries before printing blind
STATUS_RETRY_EVERY = 10  # while printing blind, ask again every this many jobs
_STOPPED = {
    PrinterState.PAPER_OUT: PrinterErrorKind.PAPER_OUT,
    PrinterState.COVER_OPEN: PrinterErrorKind.COVER_OPEN,
}


class DrawerReason(StrEnum):
    """Why the drawer was opened."""

    CASH_SALE = "cash_sale"
    NO_SALE = "no_sale"  # 无销售开钱箱: needs a supervisor's approval (shouyin.lane.services)
    REFUND = "refund"


@dataclass(frozen=True, slots=True)
class DrawerOpened:
    """An audit record of a drawer opening (or a failed attempt).

    Attributes:
        reason: why.
        user_id: the cashier who asked.
        approved_by: the supervisor who approved a no-sale, if any.
        receipt_no: the sale's receipt number, for a cash sale.
        at: when (UTC).
        success: whether the kick reached the printer.
        detail: the failure, if any.
    """

    reason: DrawerReason
    user_id: str
    approved_by: str | None
    receipt_no: str | None
    at: datetime
    success: bool
    detail: str = ""


DrawerAudit = Callable[[DrawerOpened], None]


class LaneDevices:
    """The lane's printer, drawer and customer display (each optional).

    Args:
        printer: the receipt printer, or None.
        header: what every receipt starts with.
        qr_url: a QR code printed under every receipt (empty: none).
        display_port: the customer display's serial port, or None.
        display_encoding: ``gb18030`` for Chinese displays, ``ascii`` for others.
        display_protocol: ``vfd`` (2x20 text, :mod:`~shouyin.devices.display`) or ``led``
            (8-digit price display with lamps, :mod:`~shouyin.devices.display_led`).
        audit: called with every drawer opening or failed attempt.
        clock: the time source for audit records and receipts.
    """

    def __init__(
        self,
        *,
        printer: PrinterConfig | None = None,
        header: ReceiptHeader | None = None,
        qr_url: str = "",
        display_port: str | None = None,
        display_encoding: str = "gb18030",
        display_protocol: str = "vfd",
        audit: DrawerAudit | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.printer = printer
        self.header = header or ReceiptHeader("shouyin 示范超市")
        if qr_url:
            try:
                QrCode(qr_url)  # refused now, with the reason, rather than at every receipt
            except ValueError as error:
                raise PrinterError(PrinterErrorKind.CONFIG, f"receipt QR URL: {error}") from error
        self.qr_url = qr_url
        self.display_port = display_port or None
        self.display_encoding = display_encoding
        if display_protocol not in ("vfd", "led"):
            raise DisplayError(f"unknown display protocol {display_protocol!r} (vfd or led)")
        self.display_protocol = display_protocol
        self.audit = audit
        self.clock = clock
        self._printer_lock = threading.Lock()
        self._display_lock = threading.Lock()
        self._display: serial.Serial | None = None
        self._status_misses = 0  # consecutive status queries the printer did not answer
        self._blind_jobs = 0  # jobs sent without asking since the last query

    @classmethod
    def from_settings(cls, settings: Settings, *, audit: DrawerAudit | None = None) -> LaneDevices:
        """Build from the lane settings (``SHOUYIN_PRINTER_URL`` etc.; empty means no device)."""
        printer = None
        if settings.printer_url:
            printer = PrinterConfig(
                settings.printer_url,
                PrinterEncoding(settings.printer_encoding),
                settings.printer_columns,
            )
        return cls(
            printer=printer,
            header=ReceiptHeader(settings.store_name),
            qr_url=settings.receipt_qr_url,
            display_port=settings.display_port or None,
            display_encoding=settings.display_encoding,
            display_protocol=settings.display_protocol,
            audit=audit,
        )

    # -- printer and drawer ------------------------------------------------------------------

    def _require_printer(self) -> PrinterConfig:
        if self.printer is None:
            raise PrinterError(PrinterErrorKind.NOT_CONFIGURED)
        return self.printer

    def _send(self, data: bytes, *, stopped_kick: bool = False) -> int:
        """Open, check status, send, close; refuse to send to a printer that cannot print.

        With ``stopped_kick``, a printer stopped by paper end or an open cover still gets a
        real-time drawer pulse before the refusal (the cash drawer must open for a cash sale
        even when its receipt cannot print); the raised error then has ``drawer_opened`` set.
        """
        config = self._require_printer()
        with self._printer_lock, PrinterLink(config) as link:
            state = self._job_status(link)
            if state.can_print:
                return link.send(data)
            kind = _STOPPED.get(state, PrinterErrorKind.OFFLINE)
            error = PrinterError(kind, f"printer reports {state.value}")
            if stopped_kick and kind is not PrinterErrorKind.OFFLINE:
                link.send(encode_block(DRAWER_KICK_REALTIME, config.encoding))
                error.drawer_opened = True
            raise error

    def _job_status(self, link: PrinterLink) -> PrinterState:
        """The printer's state before a job, or ``UNKNOWN`` without asking.

        A printer that never answers status would cost a timeout per print, so after
        :data:`STATUS_MISSES_BEFORE_SKIP` consecutive unanswered queries the lane prints without
        asking. One missed answer (a busy printer, a lost packet) is not enough: skipping then
        would also stop paper-out detection, and a cash sale's drawer kick (``ESC p``) sent to a
        printer stopped at paper end is never executed. While printing blind the lane asks
        again every :data:`STATUS_RETRY_EVERY` jobs, so a printer that starts answering (or a
        replaced one) is noticed; :meth:`printer_status` always asks.
        """
        blind = self._status_misses >= STATUS_MISSES_BEFORE_SKIP
        if blind and self._blind_jobs < STATUS_RETRY_EVERY - 1:
            self._blind_jobs += 1
            return PrinterState.UNKNOWN
        self._blind_jobs = 0
        status = link.status()
        self._status_misses = 0 if status.answered else self._status_misses + 1
        return status.state

    def print_receipt(
        self,
        sale: SaleView,
        *,
        reprint: bool = False,
        copy: bool = False,
        cashier_name: str = "",
        user_id: str = "",
        printed_at: datetime | None = None,
    ) -> int:
        """Print a sale's receipt; on the original print of a cash sale, open the drawer too.

        Args:
            sale: the sale (normally completed).
            reprint: mark it ``重印`` (a reprint never opens the drawer).
            copy: mark it ``副本`` (a copy never opens the drawer).
            cashier_name: printed as the operator (defaults to the sale's cashier id).
            user_id: who printed it, for the drawer's audit record.
            printed_at: the time printed (defaults to the sale's completion time).

        Returns:
            The number of bytes sent to the printer.

        Raises:
            PrinterError: no printer, offline, paper out or cover open (nothing printed).
        """
        config = self._require_printer()
        kick = has_cash(sale) and not reprint and not copy
        options = ReceiptOptions(
            width=config.columns, qr_url=self.qr_url, kick_drawer=kick, encoding=config.encoding
        )
        blocks = receipt_document(
            sale,
            self.header,
            options,
            cashier_name=cashier_name or sale.cashier_id,
            mark=copy_mark(reprint=reprint, copy=copy),
            printed_at=printed_at,
        )
        data = encode(blocks, config.encoding)
        try:
            sent = self._send(data, stopped_kick=kick)
        except PrinterError as error:
            if kick:
                failed = None if error.drawer_opened else error
                self._audit(DrawerReason.CASH_SALE, user_id, None, sale.receipt_no, failed)
            raise
        if kick:
            self._audit(DrawerReason.CASH_SALE, user_id, None, sale.receipt_no, None)
        logger.info("receipt %s printed (%d bytes)", sale.receipt_no, sent)
        return sent

    def open_drawer(
        self,
        reason: DrawerReason | str,
        *,
        user_id: str = "",
        approved_by: str | None = None,
        receipt_no: str | None = None,
    ) -> None:
        """Kick the cash drawer open through the printer and record it.

        The caller has already checked the permission (a no-sale needs a supervisor's approval:
        ``approved_by``); this method only opens and records. A printer stopped by paper end or
        an open cover still opens the drawer (real-time pulse).

        Raises:
            PrinterError: no printer or it cannot be reached (the failure is recorded too).
        """
        reason = DrawerReason(reason)
        try:
            self._send(
                encode([DRAWER_KICK_PULSE], self._require_printer().encoding), stopped_kick=True
            )
        except PrinterError as error:
            if not error.drawer_opened:
                self._audit(reason, user_id, approved_by, receipt_no, error)
                raise
        self._audit(reason, user_id, approved_by, receipt_no, None)

    def _audit(
        self,
        reason: DrawerReason,
        user_id: str,
        approved_by: str | None,
        receipt_no: str | None,
        error: PrinterError | None,
    ) -> None:
        record = DrawerOpened(
            reason,
            user_id,
            approved_by,
            receipt_no,
            self.clock(),
            error is None,
            "" if error is None else error.kind.value,
        )
        logger.info("drawer %s: %s", "opened" if error is None else "not opened", record)
        if self.audit is not None:
            self.audit(record)

    def printer_status(self) -> PrinterStatus:
        """The printer's condition; ``OFFLINE`` when it cannot be reached (never raises for that).

        Raises:
            PrinterError: kind ``NOT_CONFIGURED`` when the lane has no printer.
        """
        config = self._require_printer()
        try:
            with self._printer_lock, PrinterLink(config) as link:
                status = link.status()
                self._status_misses = 0 if status.answered else self._status_misses + 1
                return status
        except PrinterError as error:
            if error.kind is not PrinterErrorKind.OFFLINE:
                raise
            return PrinterStatus(PrinterState.OFFLINE, answered=False, online=False)

    # -- customer display --------------------------------------------------------------------

    def show_item(self, name: str, price: Money, quantity: int = 1) -> None:
        """Show a scanned item's name and price (no-op without a display).

        Raises:
            DisplayError: the display port cannot be opened or written.
        """
        if self.display_protocol == "led":  # digits only: the price under the 单价 lamp
            self._write_display(encode_led(LedLamp.PRICE, price))
        else:
            self._show(item_screen(name, price, quantity, self.display_encoding))

    def show_total(self, total: Money) -> None:
        """Show the amount due."""
        if self.display_protocol == "led":
            self._write_display(encode_led(LedLamp.TOTAL, total))
        else:
            self._show(total_screen(total, self.display_encoding))

    def show_change(self, paid: Money, change: Money) -> None:
        """Show what the customer paid and the change (an LED display shows the change)."""
        if self.display_protocol == "led":
            self._write_display(encode_led(LedLamp.CHANGE, change))
        else:
            self._show(change_screen(paid, change, self.display_encoding))

    def clear_display(self) -> None:
        """Blank the display."""
        if self.display_protocol == "led":
            self._write_display(encode_led(LedLamp.OFF, None))
        else:
            self._write_display(b"\x0c")

    def _show(self, screen: Screen) -> None:
        self._write_display(encode_screen(screen, self.display_encoding))

    def _write_display(self, data: bytes) -> None:
        if self.display_port is None:
            return
        import serial

        with self._display_lock:
            try:
                if self._display is None:
                    self._display = serial.Serial(
                        self.display_port, 9600, write_timeout=DISPLAY_WRITE_TIMEOUT
                    )
                    led = self.display_protocol == "led"
                    self._display.write(b"\x1b@" if led else init_bytes(self.display_encoding))
                self._display.write(data)
                self._display.flush()
            except (serial.SerialException, OSError) as error:
                self._close_display()  # reopen on the next call: the cable may be back
                raise DisplayError(f"{self.display_port}: {error}") from error

    def _close_display(self) -> None:
        if self._display is not None:
            try:
                self._display.close()
            except (OSError, ValueError):
                logger.debug("display close failed", exc_info=True)
            self._display = None

    def close(self) -> None:
        """Release the display port (the printer is connected per job)."""
        with self._display_lock:
            self._close_display()
