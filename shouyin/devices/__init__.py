"""Lane peripherals: receipt printer (ESC/POS), cash drawer, customer display, serial scanner.

Pure cores (receipt layout, ESC/POS encoder and parser, display protocol, scan framing) with thin
adapters (python-escpos transports, pyserial, asyncio servers). :class:`LaneDevices` is the one
facade the web server and the CLI use; the simulators (virtual printer, virtual display) are the
same protocol code on the device side.
"""

from __future__ import annotations

from shouyin.devices.errors import (
    DeviceError,
    DisplayError,
    PrinterError,
    PrinterErrorKind,
    ScannerError,
)
from shouyin.devices.escpos_model import PrinterEncoding
from shouyin.devices.lane import DrawerOpened, DrawerReason, LaneDevices
from shouyin.devices.printer import PrinterConfig, PrinterState, PrinterStatus

__all__ = [
    "DeviceError",
    "DisplayError",
    "DrawerOpened",
    "DrawerReason",
    "LaneDevices",
    "PrinterConfig",
    "PrinterEncoding",
    "PrinterError",
    "PrinterErrorKind",
    "PrinterState",
    "PrinterStatus",
    "ScannerError",
]
