"""Serial barcode scanners: codes framed by CR/LF reach the lane like keyboard-wedge input."""

from __future__ import annotations

import asyncio
import os
import pty
import tty
from pathlib import Path

import pytest

from shouyin.config import Settings
from shouyin.devices.errors import ScannerError
from shouyin.devices.scanner import ScanFramer, SerialScanner, open_scanner
from shouyin.domain.barcodes import Nomenclature, ScaleScan, parse_scan
from shouyin.domain.money import Money


def test_cr_lf_and_crlf_all_end_a_code_and_partial_codes_wait() -> None:
    framer = ScanFramer()
    assert framer.feed(b"6901234567892\r69012") == ["6901234567892"]
    assert framer.feed(b"34567892\r\n2012345012349\n") == ["6901234567892", "2012345012349"]


def test_configured_suffix_tab_ends_a_code() -> None:
    assert ScanFramer("tab").feed(b"123\t456\t") == ["123", "456"]


def test_garbage_and_overlong_codes_are_dropped_and_counted() -> None:
    framer = ScanFramer()
    assert framer.feed(b"\xff\xfe\r" + b"9" * 500 + b"\rok\r") == ["ok"]
    assert framer.dropped == 2


def test_unknown_suffix_is_refused() -> None:
    with pytest.raises(ScannerError):
        ScanFramer("semicolon")


def test_scale_barcode_from_the_scanner_is_parsed_by_the_domain() -> None:
    [code] = ScanFramer().feed(b"2012345012349\r")
    scan = parse_scan(code, Nomenclature.default())
    assert isinstance(scan, ScaleScan)
    assert (scan.plu, scan.amount) == ("12345", Money(1234))


def test_scanner_on_a_pty_yields_codes() -> None:
    master, slave = pty.openpty()
    tty.setraw(master)
    tty.setraw(slave)

    async def scan() -> tuple[str, str]:
        settings = Settings(scanner_port=os.ttyname(slave), scanner_suffix="cr")
        scanner = await SerialScanner.from_settings(settings)
        assert scanner is not None
        codes = scanner.codes()
        try:
            os.write(master, b"6901234567892\r69012")
            first = await asyncio.wait_for(anext(codes), 5)
            os.write(master, b"34567892\r")
            second = await asyncio.wait_for(anext(codes), 5)
        finally:
            scanner.close()
        return first, second

    try:
        assert asyncio.run(scan()) == ("6901234567892", "6901234567892")
    finally:
        os.close(master)
        os.close(slave)


def test_missing_scanner_port_raises_a_typed_error() -> None:
    async def first() -> str:
        return await anext(open_scanner("/dev/shouyin-no-such-scanner"))

    with pytest.raises(ScannerError):
        asyncio.run(first())


def test_lane_without_a_serial_scanner_opens_none(tmp_path: Path) -> None:
    assert asyncio.run(SerialScanner.from_settings(Settings(data_dir=tmp_path))) is None
