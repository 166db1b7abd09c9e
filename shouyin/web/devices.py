"""The lane's peripherals as the cashier API sees them: :class:`PeripheralHook`, and
:class:`DevicesHook`, which drives :class:`shouyin.devices.lane.LaneDevices` (receipt printer,
cash drawer through the printer, customer display).

The API calls the hook after the sale changed (the display shows the last item and the total),
after a sale completed (the receipt prints, the drawer opens for cash, the display shows the
change) and for a reprint. Calls run in a worker thread (devices block for up to their timeout);
a failure never undoes the sale: it comes back to the cashier as a warning, in both languages
(e.g. "打印机缺纸" when the printer is out of paper), and as a ``device.warning`` event.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

from shouyin.config import Settings
from shouyin.domain.sale_view import SaleView

if TYPE_CHECKING:
    from shouyin.devices.lane import LaneDevices

__all__ = ["DevicesHook", "PeripheralHook", "hook_from_settings", "warning_of"]

logger = logging.getLogger(__name__)


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


class DevicesHook:
    """:class:`PeripheralHook` over :class:`~shouyin.devices.lane.LaneDevices`.

    Args:
        devices: the lane's devices (each optional: no printer means no printing).
    """

    def __init__(self, devices: LaneDevices) -> None:
        self.devices = devices

    def sale_changed(self, sale: SaleView) -> None:
        """Show the last live item and the total (no display: nothing)."""
        if not self.devices.display_port:
            return
        live = sale.active_lines
        if live:
            last = live[-1]
            priced = {p.line_no: p.net for p in sale.priced.lines}
            self.devices.show_item(
                last.name, priced.get(last.line_no, last.unit_price), last.quantity
            )
        self.devices.show_total(sale.total_due)

    def sale_completed(self, sale: SaleView, *, cashier_name: str, user_id: str) -> None:
        """Print the receipt (drawer kick for cash) and show the change."""
        try:
            if self.devices.printer is not None:
                self.devices.print_receipt(sale, cashier_name=cashier_name, user_id=user_id)
        finally:
            if self.devices.display_port:
                self.devices.show_change(sale.paid, sale.change)

    def reprint(self, sale: SaleView, *, cashier_name: str, user_id: str) -> None:
        """Print a copy marked 重印."""
        if self.devices.printer is not None:
            self.devices.print_receipt(
                sale, reprint=True, cashier_name=cashier_name, user_id=user_id
            )


def hook_from_settings(settings: Settings) -> DevicesHook | None:
    """The hook for the devices the settings configure, or ``None`` when there are none."""
    from shouyin.devices.lane import LaneDevices

    devices = LaneDevices.from_settings(settings)
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
