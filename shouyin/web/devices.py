"""The lane's peripherals as the cashier API sees them: :class:`PeripheralHook`, and
:class:`DevicesHook`, which drives :class:`shouyin.devices.lane.LaneDevices` (receipt printer,
cash drawer through the printer, customer display).

The API calls the hook after the sale changed (the display shows the last item and the total),
after a sale completed (the receipt prints, the drawer opens for cash, the display shows the
change), for a reprint and for a supervised no-sale drawer opening. Calls run in a worker thread
(devices block for up to their timeout); a failure never undoes the sale: it comes back to the
cashier as a warning, in both languages (e.g. "打印机缺纸" when the printer is out of paper), and
as a ``device.warning`` event.

Printer status (issue 8: paper out is reported to the cashier page and to printer health):
:meth:`DevicesHook.printer_status` is the last status read, never a device call, so that pages
can show it without waiting on a printer. :meth:`DevicesHook.refresh_printer_status` reads it,
which the runtime calls in the background every ~30 s and the hook calls itself after each print
and drawer kick; each refresh is reported to the hook's ``on_printer_status`` callback, which
the runtime's :class:`PrinterWatch` sets: each change becomes a ``printer.status`` event and, with
:func:`sync_printer_alerts`, alerts: paper out, paper near end and cover open are alerts in
the terminals' alert store (:mod:`shouyin.fleet.health_store`), under the printer's device id
:func:`printer_device_id` (``PRN-L01``), cleared when they end.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Protocol

from shouyin.config import Settings
from shouyin.devices.printer import PrinterState, PrinterStatus
from shouyin.domain.sale_view import SaleView
from shouyin.fleet.health import AlertKind, Condition, Severity, changes
from shouyin.fleet.health_store import AlertRecord, SqlHealthUnitOfWork
from shouyin.web.events import STAFF, WebEvent

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from shouyin.devices.lane import LaneDevices

__all__ = [
    "PRINTER_ALERTS",
    "DevicesHook",
    "PeripheralHook",
    "PrinterListener",
    "PrinterWatch",
    "alert_data",
    "hook_from_settings",
    "printer_device_id",
    "sync_printer_alerts",
    "warning_of",
]

logger = logging.getLogger(__name__)

PrinterListener = Callable[[PrinterStatus], None]
"""Told every printer status read (from the thread that read it)."""

PRINTER_ALERTS: Final[dict[PrinterState, Condition]] = {
    PrinterState.PAPER_OUT: Condition(
        AlertKind.PAPER_OUT, Severity.CRITICAL, "收银打印机缺纸 / receipt printer out of paper"
    ),
    PrinterState.NEAR_END: Condition(
        AlertKind.PAPER_LOW, Severity.WARNING, "收银打印机纸将用完 / receipt paper near end"
    ),
    PrinterState.COVER_OPEN: Condition(
        AlertKind.COVER_OPEN, Severity.CRITICAL, "收银打印机盖未关 / receipt printer cover open"
    ),
}
"""The alert raised while the printer is in each state (other states raise none)."""
_PRINTER_KINDS: Final = frozenset(c.kind for c in PRINTER_ALERTS.values())


class PeripheralHook(Protocol):
    """What the cashier API asks of a lane's peripherals (every method may raise)."""

    def sale_changed(self, sale: SaleView) -> None:
        """Show the sale's last item and total on the customer display."""
        ...

    def sale_completed(self, sale: SaleView, *, cashier_name: str, user_id: str) -> None:
        """Print the receipt (opening the drawer for cash) and show the change."""
        ...

    def reprint(self, sale: SaleView, *, cashier_name: str, user_id: str) -> None:
        """Print a copy of the receipt marked 重印 (never opens the drawer)."""
        ...

    def no_sale(self, *, user_id: str, approved_by: str) -> None:
        """Kick the cash drawer open for an approved no-sale (无销售开钱箱)."""
        ...

    def printer_status(self) -> PrinterStatus | None:
        """The last printer status read (``None``: no printer, or not read yet); no I/O."""
        ...


class DevicesHook:
    """:class:`PeripheralHook` over :class:`~shouyin.devices.lane.LaneDevices`.

    Args:
        devices: the lane's devices (each optional: no printer means no printing).
        on_printer_status: told each printer status read (see the module docstring); the
            runtime sets it when it starts.
    """

    def __init__(
        self, devices: LaneDevices, *, on_printer_status: PrinterListener | None = None
    ) -> None:
        self.devices = devices
        self.on_printer_status = on_printer_status
        self._status: PrinterStatus | None = None
        self._status_lock = threading.Lock()
        # The customer display shows only the newest state: while one thread writes to it,
        # later changes replace each other here instead of queueing (a slow or hung display
        # must not pile up worker threads that printing and logins also need).
        self._display_lock = threading.Lock()
        self._display_next: SaleView | None = None
        self._display_busy = False

    @property
    def has_printer(self) -> bool:
        """Whether the lane has a receipt printer (and so a drawer)."""
        return self.devices.printer is not None

    def sale_changed(self, sale: SaleView) -> None:
        """Show the last live item (its unit price and quantity) and the total; when the display
        is busy with an earlier change, leave this one for that thread and return at once."""
        if not self.devices.display_port:
            return
        with self._display_lock:
            self._display_next = sale
            if self._display_busy:
                return
            self._display_busy = True
        try:
            while True:
                with self._display_lock:
                    latest, self._display_next = self._display_next, None
                    if latest is None:
                        self._display_busy = False
                        return
                self._show_sale(latest)
        except BaseException:
            with self._display_lock:
                self._display_busy = False
            raise

    def _show_sale(self, sale: SaleView) -> None:
        live = sale.active_lines
        if live:
            last = live[-1]
            if last.grams is None and last.fixed_amount is None:
                self.devices.show_item(last.name, last.unit_price, last.quantity)
            else:  # weighed or price-embedded: one item, its price is the line's amount
                priced = {p.line_no: p.net for p in sale.priced.lines}
                self.devices.show_item(last.name, priced.get(last.line_no, last.unit_price), 1)
        self.devices.show_total(sale.total_due)

    def sale_completed(self, sale: SaleView, *, cashier_name: str, user_id: str) -> None:
        """Print the receipt (drawer kick for cash) and show the change."""
        try:
            if self.devices.printer is not None:
                try:
                    self.devices.print_receipt(sale, cashier_name=cashier_name, user_id=user_id)
                finally:
                    self._refresh_quietly()
        finally:
            if self.devices.display_port:
                self.devices.show_change(sale.paid, sale.change)

    def reprint(self, sale: SaleView, *, cashier_name: str, user_id: str) -> None:
        """Print a copy marked 重印."""
        if self.devices.printer is not None:
            try:
                self.devices.print_receipt(
                    sale, reprint=True, cashier_name=cashier_name, user_id=user_id
                )
            finally:
                self._refresh_quietly()

    def no_sale(self, *, user_id: str, approved_by: str) -> None:
        """Kick the drawer for an approved no-sale (recorded in the audit log by the devices'
        ``audit`` callback, success or failure).

        Raises:
            PrinterError: no printer (so no drawer), or it cannot be reached.
        """
        from shouyin.devices.lane import DrawerReason

        try:
            self.devices.open_drawer(DrawerReason.NO_SALE, user_id=user_id, approved_by=approved_by)
        finally:
            if self.devices.printer is not None:
                self._refresh_quietly()

    # -- printer status ------------------------------------------------------------------------
    def printer_status(self) -> PrinterStatus | None:
        """The last status read (``None``: no printer, or not read yet). Never asks the
        printer: see :meth:`refresh_printer_status`."""
        with self._status_lock:
            return self._status

    def refresh_printer_status(self) -> PrinterStatus | None:
        """Ask the printer (blocking, bounded by its timeout), keep the answer and tell
        ``on_printer_status``; ``OFFLINE`` when it cannot be reached, ``None`` without one."""
        if self.devices.printer is None:
            return None
        status = self.devices.printer_status()
        with self._status_lock:
            self._status = status
        listener = self.on_printer_status
        if listener is not None:
            listener(status)
        return status

    def _refresh_quietly(self) -> None:
        """Refresh after a print: a failure here must not hide the print's own outcome."""
        try:
            self.refresh_printer_status()
        except Exception:
            logger.warning("printer status after printing unavailable", exc_info=True)


def printer_device_id(lane_id: str) -> str:
    """The device id of a lane's receipt printer in the alert store (8 characters at most,
    like a terminal id, which it can never be: terminal ids are digits)."""
    return f"PRN-{lane_id}"[:8]


def sync_printer_alerts(
    engine: Engine, lane_id: str, state: PrinterState, now: datetime
) -> list[AlertRecord]:
    """Raise the alert of ``state`` (:data:`PRINTER_ALERTS`) for the lane's printer and clear
    those that no longer hold; returns the alerts raised or cleared.

    ``OFFLINE`` and ``UNKNOWN`` leave the alerts as they are: a printer that cannot be asked
    has not been refilled.
    """
    if state in (PrinterState.OFFLINE, PrinterState.UNKNOWN):
        return []
    device_id = printer_device_id(lane_id)
    wanted = {c.kind: c for s, c in PRINTER_ALERTS.items() if s is state}
    done: list[AlertRecord] = []
    with SqlHealthUnitOfWork(engine) as uow:
        active = {
            k: a for k, a in uow.health.active_alerts(device_id).items() if k in _PRINTER_KINDS
        }
        to_raise, to_clear = changes(active, wanted)
        for condition in to_raise:
            done.append(uow.health.raise_alert(device_id, condition, now))
            logger.warning("lane %s printer: alert %s", lane_id, condition.kind.value)
        for kind in to_clear:
            uow.health.clear_alert(active[kind].alert_id, now)
            logger.info("lane %s printer: alert %s cleared", lane_id, kind.value)
            done.append(dataclasses.replace(active[kind], cleared_at=now))
        uow.commit()
    return done


def alert_data(alert: AlertRecord) -> dict[str, Any]:
    """An alert raised or cleared, as the pages get it (``terminal.alert``)."""
    return {
        "terminal_id": alert.terminal_id,
        "kind": alert.kind.value,
        "severity": alert.severity.value,
        "message": alert.message,
        "active": alert.active,
    }


class PrinterWatch:
    """Reads the lane printers' status in the background and reports each change: a
    ``printer.status`` event for the lane's pages (the cashier's paper-out warning) and the
    printer's alerts (:func:`sync_printer_alerts`), each published as ``terminal.alert`` to the
    lane's supervisors and admins.

    Args:
        hooks: lane -> its peripherals (with a printer); their ``on_printer_status`` is set.
        engine: the database of the alert store.
        publish: puts an event on the bus (from any thread).
        clock: aware current time.
    """

    def __init__(
        self,
        hooks: Mapping[str, DevicesHook],
        engine: Engine,
        publish: Callable[[WebEvent], None],
        *,
        clock: Callable[[], datetime],
    ) -> None:
        self.hooks = dict(hooks)
        self._engine = engine
        self._publish = publish
        self._clock = clock
        self._states: dict[str, PrinterState] = {}
        self._lock = threading.Lock()
        for lane_id, hook in self.hooks.items():
            hook.on_printer_status = self._listener(lane_id)

    async def run(
        self,
        stop: asyncio.Event,
        interval: float,
        run_blocking: Callable[[Callable[[], Any]], Awaitable[Any]],
    ) -> None:
        """Read every printer now and then every ``interval`` seconds until ``stop`` is set;
        each read runs through ``run_blocking`` (a worker thread) and is bounded by the
        printer's timeout; a failed read is logged and tried again next time."""
        while not stop.is_set():
            for lane_id, hook in self.hooks.items():
                try:
                    await run_blocking(hook.refresh_printer_status)
                except Exception:
                    logger.warning("lane %s: printer status failed", lane_id, exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    def close(self) -> None:
        """Stop listening to the hooks."""
        for hook in self.hooks.values():
            hook.on_printer_status = None

    def _listener(self, lane_id: str) -> PrinterListener:
        def changed(status: PrinterStatus) -> None:  # any thread: the bus is thread-safe
            with self._lock:  # a background read and a print may report at the same time
                if self._states.get(lane_id) is status.state:
                    return
                self._states[lane_id] = status.state
                data = {"state": status.state.value, "can_print": status.state.can_print}
                self._publish(WebEvent("printer.status", data, lane_id=lane_id))
                now = self._clock()
                for alert in sync_printer_alerts(self._engine, lane_id, status.state, now):
                    event = {**alert_data(alert), "lane_id": lane_id}
                    self._publish(WebEvent("terminal.alert", event, lane_id, STAFF))

        return changed


def hook_from_settings(settings: Settings, engine: Engine | None = None) -> DevicesHook | None:
    """The hook for the devices the settings configure, or ``None`` when there are none.

    With ``engine``, every drawer opening (and failed attempt) is appended to the lane's
    hash-chained audit log, its head checkpointed in ``settings.keys_dir``.
    """
    from shouyin.devices.drawer_audit import sql_drawer_audit
    from shouyin.devices.lane import LaneDevices
    from shouyin.store.audit_repo import CheckpointStore

    audit = None
    if engine is not None:
        audit = sql_drawer_audit(engine, settings.lane_id, CheckpointStore(settings.keys_dir))
    devices = LaneDevices.from_settings(settings, audit=audit)
    if devices.printer is None and not devices.display_port:
        return None
    return DevicesHook(devices)


def warning_of(error: Exception) -> tuple[str, str]:
    """The cashier's warning for a device failure, in Chinese and English."""
    user_message = getattr(error, "user_message", None)
    if callable(user_message):
        return str(user_message("zh")), str(user_message("en"))
    text = str(error)[:200] or type(error).__name__
    return f"设备故障：{text}", f"Device problem: {text}"
