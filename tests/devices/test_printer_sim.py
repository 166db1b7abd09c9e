"""A full sale printed to the virtual printer over real TCP, read back as the printer read it."""

from __future__ import annotations

import json
import re
import socket
import time
from pathlib import Path

import pytest
from escpos.printer import Network

from shouyin.devices.errors import PrinterError, PrinterErrorKind
from shouyin.devices.escpos_model import (
    DRAWER_KICK_PULSE,
    DRAWER_KICK_REALTIME,
    DrawerKick,
    PrinterEncoding,
    QrCode,
)
from shouyin.devices.lane import DrawerAudit, DrawerOpened, DrawerReason, LaneDevices
from shouyin.devices.printer import PrinterConfig, PrinterState
from shouyin.devices.printer_render import printed_columns
from shouyin.devices.printer_sim import ThreadedPrinter, VirtualPrinter
from shouyin.devices.receipt import (
    PAPER_58MM,
    PAPER_80MM,
    ReceiptHeader,
    display_width,
    render_sale,
)
from tests.devices.sales import MASKED_PAN, NOW, card_and_cash_sale, card_only_sale

HEADER = ReceiptHeader("示范超市", address="北京市海淀区中关村大街1号", phone="010-12345678")
QR_URL = "https://fapiao.example/i/L01-000001"
AMOUNT_AT_END = re.compile(r"￥\d+\.\d\d$")


def lane(
    sim: VirtualPrinter, *, columns: int = PAPER_58MM, audit: DrawerAudit | None = None
) -> LaneDevices:
    config = PrinterConfig(f"tcp://127.0.0.1:{sim.port}", columns=columns, timeout=1.0)
    return LaneDevices(printer=config, header=HEADER, qr_url=QR_URL, audit=audit)


@pytest.mark.parametrize("columns", [PAPER_58MM, PAPER_80MM])
def test_full_sale_prints_exactly_the_laid_out_lines(tmp_path: Path, columns: int) -> None:
    sim = VirtualPrinter(tmp_path, columns=columns, png=False)
    with ThreadedPrinter(sim):
        sent = lane(sim, columns=columns).print_receipt(card_and_cash_sale(), cashier_name="李收银")
        [job] = sim.wait_for_jobs(1)
    expected = render_sale(card_and_cash_sale(), HEADER, cashier_name="李收银", width=columns)
    assert job.lines[: len(expected)] == expected
    assert len(job.raw) == sent + 3 * 3  # the job plus three DLE EOT status queries


@pytest.mark.parametrize("columns", [PAPER_58MM, PAPER_80MM])
def test_amounts_end_exactly_at_the_paper_edge(printer: VirtualPrinter, columns: int) -> None:
    printer.columns = columns
    lane(printer, columns=columns).print_receipt(card_and_cash_sale(), cashier_name="李收银")
    [job] = printer.wait_for_jobs(1)
    totals = {line[:2]: line for line in job.lines if line[:2] in ("合计", "应付", "找零")}
    assert totals["合计"].endswith("￥83.29")
    assert totals["应付"].endswith("￥82.04")
    assert totals["找零"].endswith("￥17.96")
    assert {display_width(line) for line in totals.values()} == {columns}
    assert max(display_width(line) for line in job.lines) <= columns


def test_receipt_carries_chinese_promotion_card_references_and_qr(
    printer: VirtualPrinter,
) -> None:
    lane(printer).print_receipt(card_and_cash_sale(), cashier_name="李收银")
    [job] = printer.wait_for_jobs(1)
    text = "\n".join(job.lines)
    for expected in ("示范超市", "优惠 第二件半价", f"卡号：{MASKED_PAN}", "参考号：123456789012"):
        assert expected in text
    assert "凭证号：000123" in text
    assert QrCode(QR_URL) in job.events


def test_cash_sale_kicks_the_drawer_before_printing_and_audits_it(
    printer: VirtualPrinter,
) -> None:
    records: list[DrawerOpened] = []
    lane(printer, audit=records.append).print_receipt(card_and_cash_sale(), user_id="u1")
    [job] = printer.wait_for_jobs(1)
    assert job.events[0] == DrawerKick(pin=2, on_ms=100, off_ms=500)
    assert printer.drawer_kicks == [DRAWER_KICK_PULSE]
    [record] = records
    assert (record.reason, record.user_id, record.receipt_no, record.success) == (
        DrawerReason.CASH_SALE,
        "u1",
        "L01-000001",
        True,
    )


def test_card_only_sale_and_reprints_never_open_the_drawer(printer: VirtualPrinter) -> None:
    records: list[DrawerOpened] = []
    devices = lane(printer, audit=records.append)
    devices.print_receipt(card_only_sale())
    devices.print_receipt(card_and_cash_sale(), reprint=True)
    devices.print_receipt(card_and_cash_sale(), copy=True)
    jobs = printer.wait_for_jobs(3)
    assert not any(isinstance(e, DrawerKick) for job in jobs for e in job.events)
    assert records == []
    assert "*** 重印 ***" in jobs[1].text
    assert "*** 副本 ***" in jobs[2].text


def test_supervised_no_sale_opens_the_drawer_and_audits_who_approved(
    printer: VirtualPrinter,
) -> None:
    records: list[DrawerOpened] = []
    lane(printer, audit=records.append).open_drawer(
        DrawerReason.NO_SALE, user_id="u1", approved_by="sup1"
    )
    [job] = printer.wait_for_jobs(1)
    assert job.events == (DrawerKick(pin=2, on_ms=100, off_ms=500),)
    assert [(r.reason, r.approved_by, r.success) for r in records] == [
        (DrawerReason.NO_SALE, "sup1", True)
    ]


def test_python_escpos_network_printer_round_trips(printer: VirtualPrinter) -> None:
    net = Network("127.0.0.1", printer.port, timeout=2)
    net.open()
    try:
        net.set(bold=True)
        net._raw("收银测试 ￥1.00\n".encode("gb18030"))
        net.qr("https://member.example/join", native=True)
        net.cashdraw(2)
        net.cut()
        assert net.is_online()
        assert net.paper_status() == 2
        printer.set_state(paper="near_end")
        assert net.paper_status() == 1
    finally:
        net.close()
    [job] = printer.wait_for_jobs(1)
    assert job.lines[0] == "收银测试 ￥1.00"
    assert QrCode("https://member.example/join", size=3, ec="L") in job.events
    assert any(isinstance(e, DrawerKick) for e in job.events)


def test_paper_out_is_reported_and_nothing_is_printed(printer: VirtualPrinter) -> None:
    devices = lane(printer)
    printer.set_state(paper="out")
    assert devices.printer_status().state is PrinterState.PAPER_OUT
    with pytest.raises(PrinterError) as raised:
        devices.print_receipt(card_and_cash_sale())
    assert raised.value.kind is PrinterErrorKind.PAPER_OUT
    assert "缺纸" in raised.value.user_message()
    # The simulator never stores a job while the paper is out; what proves the lane held the
    # receipt back is that the printer refused nothing: the lane sent only status queries.
    printer.wait_for_connections(2)  # printer_status(), then the print attempt
    assert (printer.refused, printer.jobs) == (0, [])


def test_cover_open_is_reported(printer: VirtualPrinter) -> None:
    printer.set_state(cover_open=True)
    assert lane(printer).printer_status().state is PrinterState.COVER_OPEN


def test_near_end_is_reported_and_still_prints(printer: VirtualPrinter) -> None:
    printer.set_state(paper="near_end")
    devices = lane(printer)
    assert devices.printer_status().state is PrinterState.NEAR_END
    devices.print_receipt(card_only_sale())
    assert len(printer.wait_for_jobs(1)) == 1


def test_a_printer_that_never_answers_is_unknown_after_the_timeout_and_still_prints(
    printer: VirtualPrinter,
) -> None:
    printer.set_state(answers_status=False)
    config = PrinterConfig(f"tcp://127.0.0.1:{printer.port}", timeout=0.3)
    devices = LaneDevices(printer=config, header=HEADER)
    started = time.monotonic()
    assert devices.printer_status().state is PrinterState.UNKNOWN
    assert time.monotonic() - started < 2
    devices.print_receipt(card_only_sale())
    devices.print_receipt(card_only_sale())
    assert len(printer.wait_for_jobs(2)) == 2


def test_unreachable_printer_is_offline_and_printing_raises_a_typed_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound but not listening: connection refused
        devices = LaneDevices(printer=PrinterConfig(f"tcp://127.0.0.1:{port}", timeout=0.5))
        assert devices.printer_status().state is PrinterState.OFFLINE
        with pytest.raises(PrinterError) as raised:
            devices.print_receipt(card_only_sale())
    assert raised.value.kind is PrinterErrorKind.OFFLINE


def test_failed_drawer_kick_is_audited_as_a_failure() -> None:
    records: list[DrawerOpened] = []
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        config = PrinterConfig(f"tcp://127.0.0.1:{probe.getsockname()[1]}", timeout=0.5)
        devices = LaneDevices(printer=config, audit=records.append)
        with pytest.raises(PrinterError):
            devices.open_drawer("no_sale", approved_by="sup1")
    assert [(r.success, r.detail) for r in records] == [(False, "offline")]


def test_no_sale_opens_the_drawer_in_real_time_while_the_cover_is_open(
    printer: VirtualPrinter,
) -> None:
    records: list[DrawerOpened] = []
    printer.set_state(cover_open=True)
    lane(printer, audit=records.append).open_drawer("no_sale", approved_by="sup1")
    assert printer.wait_for_kicks(1) == [DRAWER_KICK_REALTIME]
    assert [(r.reason, r.success) for r in records] == [(DrawerReason.NO_SALE, True)]


def test_cash_sale_without_paper_still_opens_the_drawer_and_asks_for_a_reprint(
    printer: VirtualPrinter,
) -> None:
    records: list[DrawerOpened] = []
    printer.set_state(paper="out")
    with pytest.raises(PrinterError) as raised:
        lane(printer, audit=records.append).print_receipt(card_and_cash_sale(), user_id="u1")
    assert raised.value.kind is PrinterErrorKind.PAPER_OUT
    assert raised.value.drawer_opened
    assert printer.wait_for_kicks(1) == [DRAWER_KICK_REALTIME]
    assert [(r.reason, r.success) for r in records] == [(DrawerReason.CASH_SALE, True)]
    printer.wait_for_connections(1)
    assert (printer.refused, printer.jobs) == (0, [])  # the receipt itself was never sent


def test_lane_without_a_printer_says_so() -> None:
    with pytest.raises(PrinterError) as raised:
        LaneDevices().print_receipt(card_only_sale())
    assert raised.value.kind is PrinterErrorKind.NOT_CONFIGURED


def test_control_port_switches_paper_out_with_a_json_line(printer: VirtualPrinter) -> None:
    assert printer.control_port is not None
    with socket.create_connection(("127.0.0.1", printer.control_port), timeout=2) as sock:
        sock.sendall(b'{"paper": "out"}\n{"paper": "sideways"}\n')
        lines = sock.makefile("rb")
        first, second = json.loads(lines.readline()), json.loads(lines.readline())
    assert first["ok"] and first["paper"] == "out"
    assert not second["ok"]
    assert lane(printer).printer_status().state is PrinterState.PAPER_OUT


@pytest.mark.parametrize("encoding", [PrinterEncoding.GBK, PrinterEncoding.UTF8])
def test_printer_encoding_setting_is_honoured(tmp_path: Path, encoding: PrinterEncoding) -> None:
    sim = VirtualPrinter(encoding=encoding, png=False)
    with ThreadedPrinter(sim):
        config = PrinterConfig(f"tcp://127.0.0.1:{sim.port}", encoding=encoding)
        LaneDevices(printer=config, header=HEADER).print_receipt(card_only_sale())
        [job] = sim.wait_for_jobs(1)
    assert job.lines[0].strip() == "示范超市"
    assert "北京市海淀区中关村大街1号".encode(encoding.value) in job.raw


def test_job_is_written_as_bin_text_and_png(tmp_path: Path) -> None:
    from PIL import Image

    sim = VirtualPrinter(tmp_path, columns=PAPER_80MM)
    with ThreadedPrinter(sim):
        lane(sim, columns=PAPER_80MM).print_receipt(
            card_and_cash_sale(), cashier_name="李收银", printed_at=NOW
        )
        [job] = sim.wait_for_jobs(1)
    bin_path, txt_path, png_path = job.files
    assert bin_path.read_bytes() == job.raw
    assert "应付" in txt_path.read_text(encoding="utf-8")
    with Image.open(png_path) as image:
        assert image.width == 48 * 12 + 16  # 80 mm: 576 dots and the margins
        assert image.height > 40 * 24


def test_job_sent_while_paper_is_out_is_not_printed(printer: VirtualPrinter) -> None:
    printer.set_state(paper="out")
    net = Network("127.0.0.1", printer.port, timeout=2)
    net.open()
    try:
        net._raw(b"lost\n")
        assert net.paper_status() == 0  # python-escpos: no paper
    finally:
        net.close()
    assert printer.wait_for_refused(1) == 1
    assert printer.jobs == []


@pytest.mark.parametrize("columns", [PAPER_58MM, PAPER_80MM])
def test_names_with_times_and_middle_dot_never_push_a_price_past_the_paper_edge(
    tmp_path: Path, columns: int
) -> None:
    # `×` and `·` are two bytes in GB18030, so the printer draws them two columns wide; a layout
    # counting them as one column would end these lines one column past the edge (the price
    # wraps). The check counts columns the printer's way (printed_columns, from the bytes).
    name = "农夫山泉·天然矿泉水 550ml×24瓶·整箱×2·家庭装·特惠"
    sim = VirtualPrinter(columns=columns, png=False)
    with ThreadedPrinter(sim):
        lane(sim, columns=columns).print_receipt(
            card_and_cash_sale(product_name=name), cashier_name="李收银"
        )
        [job] = sim.wait_for_jobs(1)
    assert any("×" in line for line in job.lines)
    widths = [printed_columns(line, PrinterEncoding.GB18030) for line in job.lines]
    assert max(widths) <= columns
    priced = [w for line, w in zip(job.lines, widths, strict=True) if AMOUNT_AT_END.search(line)]
    assert priced and set(priced) == {columns}
