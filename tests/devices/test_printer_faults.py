"""Faults between the lane and the printer: missed status answers, concurrent jobs, bad jobs."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from shouyin.devices import printer_sim
from shouyin.devices.errors import PrinterError, PrinterErrorKind
from shouyin.devices.escpos_model import (
    DRAWER_KICK_PULSE,
    DRAWER_KICK_REALTIME,
    MAX_QR_BYTES,
    QrCode,
    TextLine,
    encode,
)
from shouyin.devices.escpos_parser import UnknownCommand
from shouyin.devices.lane import STATUS_MISSES_BEFORE_SKIP, DrawerOpened, LaneDevices
from shouyin.devices.printer import PrinterConfig
from shouyin.devices.printer_sim import ThreadedPrinter, VirtualPrinter
from tests.devices.sales import card_and_cash_sale, card_only_sale


def _lane(sim: VirtualPrinter, records: list[DrawerOpened] | None = None) -> LaneDevices:
    config = PrinterConfig(f"tcp://127.0.0.1:{sim.port}", timeout=0.3)
    return LaneDevices(printer=config, audit=None if records is None else records.append)


# -- a missed status answer --------------------------------------------------------------------


def test_one_missed_status_answer_does_not_stop_paper_out_detection(
    printer: VirtualPrinter,
) -> None:
    records: list[DrawerOpened] = []
    devices = _lane(printer, records)
    printer.set_state(answers_status=False)  # one slow or lost answer
    devices.print_receipt(card_and_cash_sale(), user_id="u1")
    printer.wait_for_jobs(1)
    printer.set_state(answers_status=True, paper="out")
    with pytest.raises(PrinterError) as raised:
        devices.print_receipt(card_and_cash_sale(), user_id="u1")
    assert raised.value.kind is PrinterErrorKind.PAPER_OUT
    printer.wait_for_connections(2)
    assert printer.refused == 0  # the receipt was held back, not sent into a stopped printer
    # Every "opened" in the audit is a pulse the drawer really got: the first receipt's ESC p,
    # then the real-time pulse for the paper-out sale (an ESC p queued behind a receipt the
    # stopped printer never prints would not open it).
    assert printer.drawer_kicks == [DRAWER_KICK_PULSE, DRAWER_KICK_REALTIME]
    assert [r.success for r in records] == [True, True]


def test_a_printer_that_keeps_not_answering_is_printed_to_without_asking_then_asked_again(
    printer: VirtualPrinter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("shouyin.devices.lane.STATUS_RETRY_EVERY", 2)
    devices = _lane(printer)
    printer.set_state(answers_status=False)
    for _ in range(STATUS_MISSES_BEFORE_SKIP):
        devices.print_receipt(card_only_sale())  # each asks, and waits out the timeout
    printer.wait_for_jobs(STATUS_MISSES_BEFORE_SKIP)
    printer.set_state(answers_status=True, paper="out")
    devices.print_receipt(card_only_sale())  # blind: sent without asking, refused by the printer
    assert printer.wait_for_refused(1) == 1
    with pytest.raises(PrinterError) as raised:  # the retry asks again and sees the paper out
        devices.print_receipt(card_only_sale())
    assert raised.value.kind is PrinterErrorKind.PAPER_OUT


# -- concurrent jobs ---------------------------------------------------------------------------


def test_concurrent_jobs_get_distinct_numbers_and_files(tmp_path: Path) -> None:
    async def run() -> VirtualPrinter:
        sim = VirtualPrinter(tmp_path, png=False)
        await sim.start()

        async def send(i: int) -> None:
            _, writer = await asyncio.open_connection("127.0.0.1", sim.port)
            writer.write(encode([TextLine(f"job {i}")]))
            await writer.drain()
            writer.close()
            await writer.wait_closed()

        await asyncio.gather(*(send(i) for i in range(5)))
        async with asyncio.timeout(5):
            while sim.connections < 5:
                await asyncio.sleep(0.01)
        await sim.stop()
        return sim

    sim = asyncio.run(run())
    assert sorted(job.number for job in sim.jobs) == [1, 2, 3, 4, 5]
    texts = sorted(path.read_text(encoding="utf-8") for path in tmp_path.glob("job-*.txt"))
    assert texts == [f"job {i}\n" for i in range(5)]


# -- QR codes too large to print --------------------------------------------------------------


@pytest.mark.parametrize(("ec", "capacity"), [("L", 2953), ("M", 2331), ("Q", 1663), ("H", 1273)])
def test_qr_content_is_limited_to_the_byte_mode_capacity_of_its_level(
    ec: str, capacity: int
) -> None:
    assert MAX_QR_BYTES[ec] == capacity
    QrCode("x" * capacity, ec=ec)
    with pytest.raises(ValueError, match=f"is {capacity + 1} bytes.*1 to {capacity} bytes"):
        QrCode("x" * (capacity + 1), ec=ec)


@pytest.mark.parametrize("ec", ["L", "M", "Q", "H"])
def test_the_qr_limits_are_exactly_what_a_version_40_code_holds_in_byte_mode(ec: str) -> None:
    import segno

    largest = segno.make_qr("x" * MAX_QR_BYTES[ec], error=ec.lower(), boost_error=False)
    assert largest.version == 40
    with pytest.raises(segno.DataOverflowError):
        segno.make_qr("x" * (MAX_QR_BYTES[ec] + 1), error=ec.lower(), boost_error=False)


def test_lane_refuses_a_receipt_qr_url_too_long_to_print_before_sending_anything(
    printer: VirtualPrinter,
) -> None:
    config = PrinterConfig(f"tcp://127.0.0.1:{printer.port}")
    too_long = "https://fapiao.example/i/" + "x" * 2331  # over level M's 2331 bytes
    with pytest.raises(PrinterError) as raised:
        LaneDevices(printer=config, qr_url=too_long)
    assert raised.value.kind is PrinterErrorKind.CONFIG
    assert "QR" in str(raised.value)
    assert printer.connections == 0


# -- a job the printer cannot render ------------------------------------------------------------


def _send_raw(port: int, data: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(data)


def test_a_qr_code_too_large_to_print_does_not_lose_the_job_or_stop_the_printer(
    tmp_path: Path,
) -> None:
    content = b"x" * 3000  # more than level M holds in byte mode: a real printer prints nothing
    size = len(content) + 3
    qr = (
        b"\x1d(k\x03\x001C\x06"  # module size
        + b"\x1d(k\x03\x001E1"  # level M
        + b"\x1d(k"
        + bytes([size & 0xFF, size >> 8])
        + b"1P0"
        + content
        + b"\x1d(k\x03\x001Q0"
    )
    with ThreadedPrinter(VirtualPrinter(tmp_path, png=True)) as sim:
        _send_raw(sim.port, encode([TextLine("before")]) + qr + b"after\n")
        sim.wait_for_jobs(1)
        _send_raw(sim.port, encode([TextLine("next job")]))
        first, second = sim.wait_for_jobs(2)
    assert first.lines == ["before", "after"]
    assert any(isinstance(e, UnknownCommand) for e in first.events)
    assert first.files[0].read_bytes() == first.raw
    assert second.lines == ["next job"]


def test_a_render_failure_keeps_the_raw_bytes_and_the_printer_serving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("renderer bug")

    monkeypatch.setattr(printer_sim, "render_png", broken)
    monkeypatch.setattr(printer_sim, "render_text", broken)
    with ThreadedPrinter(VirtualPrinter(tmp_path, png=True)) as sim:
        _send_raw(sim.port, encode([TextLine("收银测试")]))
        sim.wait_for_jobs(1)
        _send_raw(sim.port, encode([TextLine("second")]))
        first, second = sim.wait_for_jobs(2)
    bin_path, txt_path = first.files
    assert bin_path.read_bytes() == first.raw
    assert "render error" in txt_path.read_text(encoding="utf-8")
    assert first.lines == ["收银测试"]
    assert second.lines == ["second"]
