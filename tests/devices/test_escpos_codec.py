"""The ESC/POS encoder and parser: what the lane sends is what the printer reads."""

from __future__ import annotations

import tracemalloc

import pytest
from escpos.printer import Dummy
from hypothesis import given, settings
from hypothesis import strategies as st

from shouyin.devices.escpos_model import (
    DRAWER_KICK_PULSE,
    Align,
    Block,
    Cut,
    DrawerKick,
    Feed,
    PrinterEncoding,
    QrCode,
    RasterImage,
    Style,
    TextLine,
    encode,
)
from shouyin.devices.escpos_parser import (
    MAX_LINE_BYTES,
    MAX_RUNS,
    Barcode,
    EscPosParser,
    Event,
    PrintedLine,
    StatusQuery,
    TextRun,
    UnknownCommand,
    parse,
)

DOC: list[Block] = [
    TextLine("示范超市", Style(bold=True, height=2), Align.CENTER),
    TextLine("合计                     ￥83.29"),
    QrCode("https://fapiao.example/i/L01-000001"),
    RasterImage(1, 2, b"\xf0\x0f"),
    Feed(4),
    Cut(partial=True),
    DRAWER_KICK_PULSE,
]
EXPECTED: list[Event] = [
    PrintedLine((TextRun("示范超市", Style(bold=True, height=2)),), Align.CENTER),
    PrintedLine((TextRun("合计                     ￥83.29"),)),
    QrCode("https://fapiao.example/i/L01-000001"),
    RasterImage(1, 2, b"\xf0\x0f"),
    Feed(4),
    Cut(partial=True),
    DRAWER_KICK_PULSE,
]


@pytest.mark.parametrize("encoding", list(PrinterEncoding))
def test_document_round_trips_through_bytes_in_every_printer_encoding(
    encoding: PrinterEncoding,
) -> None:
    assert parse(encode(DOC, encoding), encoding) == EXPECTED


def test_job_starts_with_init_and_hanzi_mode_for_gb_printers() -> None:
    assert encode([], PrinterEncoding.GB18030) == b"\x1b@\x1c&"
    assert encode([], PrinterEncoding.UTF8) == b"\x1b@\x1c."


def test_hanzi_and_fullwidth_yuan_are_sent_in_gb18030() -> None:
    data = encode([TextLine("合计￥1")], PrinterEncoding.GB18030)
    assert data.endswith("合计￥1".encode("gb18030") + b"\n")
    assert b"\xba\xcf\xbc\xc6\xa3\xa41\n" in data


def test_drawer_kick_is_esc_p_with_pin_and_pulse_in_two_ms_units() -> None:
    assert encode([DrawerKick(pin=5, on_ms=100, off_ms=500)])[4:] == b"\x1bp\x01\x32\xfa"


def test_real_time_drawer_pulse_is_dle_dc4_in_100_ms_units() -> None:
    data = encode([DrawerKick(pin=2, on_ms=200, off_ms=200, realtime=True)])[4:]
    assert data == b"\x10\x14\x01\x00\x02"
    assert parse(data) == [DrawerKick(pin=2, on_ms=200, off_ms=200, realtime=True)]


def test_parser_reassembles_a_job_split_at_every_byte() -> None:
    data = encode(DOC)
    for cut in range(1, len(data)):
        parser = EscPosParser()
        events = parser.feed(data[:cut]) + parser.feed(data[cut:]) + parser.close()
        assert events == EXPECTED, cut


def test_status_query_is_reported_at_once_even_mid_line() -> None:
    parser = EscPosParser()
    assert parser.feed("半行".encode("gb18030") + b"\x10\x04\x04") == [StatusQuery(4)]
    assert parser.feed(b"\n") == [PrintedLine((TextRun("半行"),))]


def test_mixed_styles_in_one_line_become_runs() -> None:
    [line] = parse(b"\x1b@a\x1bE\x01B\x1bE\x00c\n")
    assert line == PrintedLine(
        (TextRun("a"), TextRun("B", Style(bold=True)), TextRun("c")), Align.LEFT
    )


def test_python_escpos_output_is_understood() -> None:
    printer = Dummy()
    printer.set(bold=True, align="center", double_height=True)
    printer._raw("你好".encode("gb18030") + b"\n")
    printer.cashdraw(2)
    printer.cut()
    printer.qr("https://x.example", native=True)
    printer.barcode("4006381333931", "EAN13")
    events = parse(printer.output)
    assert events[0] == PrintedLine((TextRun("你好", Style(bold=True, height=2)),), Align.CENTER)
    assert DrawerKick(pin=2, on_ms=100, off_ms=100) in events
    assert Cut(partial=False) in events
    assert QrCode("https://x.example", size=3, ec="L") in events
    assert Barcode(2, "4006381333931") in events


def test_python_escpos_image_qr_is_a_raster_image() -> None:
    printer = Dummy()
    printer.qr("hello")  # rendered by python-escpos as a GS v 0 raster image
    images = [e for e in parse(printer.output) if isinstance(e, RasterImage)]
    assert len(images) == 1
    assert images[0].height > 20


def test_unknown_commands_are_skipped_not_printed() -> None:
    events = parse(b"\x1bZ" + b"ok\n")
    assert events == [UnknownCommand(b"\x1bZ"), PrintedLine((TextRun("ok"),))]


def test_oversize_raster_image_is_skipped_across_chunks() -> None:
    parser = EscPosParser()
    head = b"\x1dv0\x00\xff\xff\xff\x00"  # 65535 x 255 bytes: over the limit
    events = parser.feed(head + b"\x00" * 1000)
    events += parser.feed(b"\x00" * (65535 * 255 - 1000))
    events += parser.feed(b"after\n")
    assert events[-1] == PrintedLine((TextRun("after"),))


def test_text_with_control_characters_cannot_inject_commands() -> None:
    events = parse(encode([TextLine("a\x1bp\x00\x32\x32b")]))
    assert not any(isinstance(e, DrawerKick) for e in events)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_parser_never_raises_on_arbitrary_bytes(data: bytes) -> None:
    parser = EscPosParser()
    parser.feed(data)
    parser.close()


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x9FFF), max_size=40))
def test_any_text_line_round_trips_in_gb18030(text: str) -> None:
    [line] = parse(encode([TextLine(text)]))
    assert isinstance(line, PrintedLine)
    assert line.text == text


def test_style_toggles_between_characters_do_not_grow_memory_without_bound() -> None:
    parser = EscPosParser()
    toggles = b"\x1bE\x01a\x1bE\x00b" * 2_500  # 20 kB, a style change per character, no LF
    tracemalloc.start()
    try:
        for _ in range(5):  # 100 kB: unbounded, the runs held would take about 3 MB
            lines = [e for e in parser.feed(toggles) if isinstance(e, PrintedLine)]
            assert all(len(line.runs) <= MAX_RUNS for line in lines)
            assert all(len(line.text.encode()) <= MAX_LINE_BYTES for line in lines)
            del lines
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held < 200_000  # what the parser keeps between chunks: one bounded line


def test_a_line_longer_than_the_limit_counts_its_styled_runs_too() -> None:
    half = MAX_LINE_BYTES // 2 + 1
    events = parse(b"a" * half + b"\x1bE\x01" + b"b" * half + b"\n")
    lines = [e for e in events if isinstance(e, PrintedLine)]
    assert [len(line.text) for line in lines] == [2 * half, 0]  # cut at the limit, then the LF


def test_after_the_run_limit_the_rest_of_the_line_keeps_one_style() -> None:
    data = b"".join(b"\x1bE" + bytes([i % 2]) + b"x" for i in range(MAX_RUNS + 10)) + b"\n"
    [line] = parse(data)
    assert isinstance(line, PrintedLine)
    assert len(line.runs) == MAX_RUNS
    assert line.text == "x" * (MAX_RUNS + 10)  # nothing is lost
