"""Hardware discovery (DESIGN.md section 7): serial and USB-serial ports and what is on them.

:func:`list_ports` asks pyserial's ``list_ports`` and names the device from :data:`KNOWN_DEVICES`
by USB vendor:product id (or by vendor alone): USB-serial bridge chips tell only that a serial
device is there, printer and scanner makers' ids tell more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["KNOWN_DEVICES", "KNOWN_VENDORS", "PortInfo", "identify", "list_ports"]

KNOWN_DEVICES: Final[dict[tuple[int, int], str]] = {
    (0x0416, 0x5011): "POS receipt printer (Winbond chip: Xprinter, Gprinter and others)",
    (0x0483, 0x5720): "POS receipt printer (STM32 virtual COM)",
    (0x04B8, 0x0202): "Epson TM receipt printer (TM-T88 and others)",
    (0x04B8, 0x0E15): "Epson TM-T20II receipt printer",
    (0x1A86, 0x7523): "CH340 USB-serial adapter (printers, scanners, customer displays)",
    (0x1A86, 0x55D4): "CH9102 USB-serial adapter",
    (0x067B, 0x2303): "Prolific PL2303 USB-serial adapter",
    (0x0403, 0x6001): "FTDI FT232R USB-serial adapter",
    (0x10C4, 0xEA60): "Silicon Labs CP210x USB-serial adapter",
}
KNOWN_VENDORS: Final[dict[int, str]] = {
    0x04B8: "Epson (printer or customer display)",
    0x0C2E: "Honeywell / Metrologic barcode scanner",
    0x05E0: "Zebra (Symbol) barcode scanner",
    0x1EAB: "Newland barcode scanner",
    0x0B00: "Ingenico payment terminal",
    0x11CA: "Verifone payment terminal",
}


@dataclass(frozen=True, slots=True)
class PortInfo:
    """A serial port and what it seems to be."""

    device: str
    description: str
    vid: int | None
    pid: int | None
    serial_number: str | None
    model: str | None

    @property
    def usb_id(self) -> str:
        """``VID:PID`` in hex, or an empty string for a non-USB port."""
        if self.vid is None or self.pid is None:
            return ""
        return f"{self.vid:04x}:{self.pid:04x}"


def identify(vid: int | None, pid: int | None) -> str | None:
    """The known model (or vendor) for a USB id, or None."""
    if vid is None:
        return None
    if pid is not None and (vid, pid) in KNOWN_DEVICES:
        return KNOWN_DEVICES[(vid, pid)]
    return KNOWN_VENDORS.get(vid)


def list_ports() -> list[PortInfo]:
    """The machine's serial ports, USB ones with their ids and known model, sorted by device."""
    from serial.tools import list_ports as serial_list_ports

    found = []
    for port in serial_list_ports.comports():
        found.append(
            PortInfo(
                device=port.device,
                description=port.description or "",
                vid=port.vid,
                pid=port.pid,
                serial_number=port.serial_number,
                model=identify(port.vid, port.pid),
            )
        )
    return sorted(found, key=lambda p: p.device)
