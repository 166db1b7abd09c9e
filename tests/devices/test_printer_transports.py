"""Printer URLs map onto python-escpos's transports; a serial printer prints over a pty."""

from __future__ import annotations

import os
import pty
import select
import time
import tty
from pathlib import Path

import pytest
from escpos.printer import Dummy, Network, Serial, Usb

from shouyin.config import Settings
from shouyin.devices.errors import PrinterError, PrinterErrorKind
from shouyin.devices.escpos_model import PrinterEncoding
from shouyin.devices.escpos_parser import PrintedLine, parse
from shouyin.devices.lane import LaneDevices
from shouyin.devices.printer import PrinterConfig, PrinterLink, PrinterState
from tests.devices.sales import card_only_sale


def test_urls_make_the_matching_python_escpos_printer() -> None:
    net = PrinterConfig("tcp://192.0.2.7").make_printer()
    assert isinstance(net, Network)
    assert (net.host, net.port) == ("192.0.2.7", 9100)
    serial = PrinterConfig("serial:///dev/ttyUSB0?baud=19200").make_printer()
    assert isinstance(serial, Serial)
    assert (serial.devfile, serial.baudrate) == ("/dev/ttyUSB0", 19200)
    usb = PrinterConfig("usb://0416:5011").make_printer()
    assert isinstance(usb, Usb)
    assert isinstance(PrinterConfig("dummy://").make_printer(), Dummy)


@pytest.mark.parametrize("url", ["lpt://1", "http://printer", ""])
def test_unsupported_printer_urls_are_refused(url: str) -> None:
    with pytest.raises(PrinterError) as raised:
        PrinterConfig(url)
    assert raised.value.kind is PrinterErrorKind.CONFIG


def test_dummy_printer_keeps_the_bytes_and_has_no_status() -> None:
    with PrinterLink(PrinterConfig("dummy://")) as link:
        link.send(b"\x1b@ok\n")
        assert link.status().state is PrinterState.UNKNOWN
        assert link.printer.output.startswith(b"\x1b@ok\n")


def _drain(fd: int, until: bytes, timeout: float = 5.0) -> bytes:
    received = b""
    deadline = time.monotonic() + timeout
    while until not in received and (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], min(left, 0.2))
        if ready:
            received += os.read(fd, 65536)
    return received


def test_serial_printer_prints_a_receipt_over_a_pty() -> None:
    master, slave = pty.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    try:
        config = PrinterConfig(f"serial://{os.ttyname(slave)}?baud=115200", timeout=0.2)
        devices = LaneDevices(printer=config)
        # Nobody answers status on this line: unknown after the timeout, and it prints anyway.
        assert devices.printer_status().state is PrinterState.UNKNOWN
        devices.print_receipt(card_only_sale())
        received = _drain(master, b"\x1dV\x01")
    finally:
        os.close(master)
        os.close(slave)
    lines = [e.text for e in parse(received) if isinstance(e, PrintedLine)]
    assert "单号：L01-000002" in lines


def test_absent_usb_printer_is_offline() -> None:
    devices = LaneDevices(printer=PrinterConfig("usb://dead:beef", timeout=0.2))
    assert devices.printer_status().state is PrinterState.OFFLINE


def test_lane_devices_are_built_from_the_lane_settings(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        printer_url="tcp://127.0.0.1:9100",
        printer_encoding="gbk",
        printer_columns=48,
        display_port="/dev/ttyUSB1",
        display_protocol="led",
        receipt_qr_url="https://member.example/join",
    )
    devices = LaneDevices.from_settings(settings)
    assert devices.printer == PrinterConfig("tcp://127.0.0.1:9100", PrinterEncoding.GBK, columns=48)
    assert (devices.display_port, devices.display_protocol) == ("/dev/ttyUSB1", "led")
    assert devices.qr_url == "https://member.example/join"
    assert devices.header.store_name == settings.store_name


def test_lane_without_device_settings_has_no_devices(tmp_path: Path) -> None:
    devices = LaneDevices.from_settings(Settings(data_dir=tmp_path))
    assert (devices.printer, devices.display_port) == (None, None)
