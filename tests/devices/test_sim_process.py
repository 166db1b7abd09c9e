"""``shouyin printer sim`` as its own process; the PNG rendering with a CJK font."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from shouyin.devices.lane import LaneDevices
from shouyin.devices.printer import PrinterConfig, PrinterState
from shouyin.devices.printer_render import find_cjk_font
from tests.devices.sales import card_and_cash_sale


def _read_until(proc: subprocess.Popen[bytes], pattern: str, timeout: float) -> re.Match[str]:
    assert proc.stdout is not None
    text = ""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([proc.stdout], [], [], min(left, 0.5))
        if ready:
            chunk = os.read(proc.stdout.fileno(), 4096).decode(errors="replace")
            if not chunk:
                break
            text += chunk
            if found := re.search(pattern, text):
                return found
    raise AssertionError(f"no {pattern!r} in the simulator's output: {text!r}")


def _wait_for_file(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # polling a file written by another process, bounded by the deadline
    assert path.exists(), path


@pytest.mark.slow  # a whole `shouyin` process: seconds of imports on a loaded machine
def test_printer_sim_process_prints_and_reports_near_end(tmp_path: Path) -> None:
    out = tmp_path / "receipts"
    env = {**os.environ, "SHOUYIN_LANGUAGE": "en", "PYTHONUNBUFFERED": "1", "COLUMNS": "300"}
    args = ["printer", "sim", "--port", "0", "--control-port", "0", "--out", str(out)]
    args += ["--paper", "near_end"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "shouyin.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        found = _read_until(proc, r"127\.0\.0\.1:(\d+) \(control port (\d+)\)", timeout=30)
        devices = LaneDevices(printer=PrinterConfig(f"tcp://127.0.0.1:{found.group(1)}"))
        assert devices.printer_status().state is PrinterState.NEAR_END
        devices.print_receipt(card_and_cash_sale(), cashier_name="李收银")
        _wait_for_file(out / "job-0001.png", timeout=20)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert "应付" in (out / "job-0001.txt").read_text(encoding="utf-8")
    with Image.open(out / "job-0001.png") as image:
        assert image.width == 32 * 12 + 16


@pytest.mark.skipif(
    find_cjk_font() is None, reason="no CJK font (apt-get install fonts-wqy-microhei)"
)
def test_png_draws_distinct_hanzi_with_the_cjk_font(tmp_path: Path) -> None:
    from shouyin.devices.escpos_model import TextLine, encode
    from shouyin.devices.escpos_parser import parse
    from shouyin.devices.printer_render import render_png

    crops = []
    for index, text in enumerate(("合", "计")):
        path = tmp_path / f"{index}.png"
        render_png(parse(encode([TextLine(text)])), 32, path)
        with Image.open(path) as image:
            crops.append(image.crop((8, 8, 8 + 24, 8 + 24)).tobytes())
    assert crops[0] != crops[1]  # a font without Hanzi draws the same box for both
    assert any(v < 128 for v in crops[0])  # and something is drawn
