"""Card-data canary for the receipt path: a full PAN never reaches the printer's bytes.

The sale holds only a masked PAN (``PaymentRef`` refuses a full one); the receipt path also
scrubs the free text around it. Full PANs and track 2 are pushed through every text the receipt
prints (store header, cashier name, product name, QR content), then the bytes the printer
received, its decoded text and the job files are scanned.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from shouyin.devices.lane import LaneDevices
from shouyin.devices.printer import PrinterConfig
from shouyin.devices.printer_sim import ThreadedPrinter, VirtualPrinter
from shouyin.devices.receipt import ReceiptHeader
from shouyin.domain.carddata import luhn_valid
from shouyin.domain.errors import CardDataError
from shouyin.domain.sale_lines import PaymentRef
from tests.devices.sales import MASKED_PAN, card_and_cash_sale

PANS = ("6228480012345678903", "4111111111111111", "6212 3456 7890 1232")
TRACK2 = "6228480012345678903=28121010000000000"


def _leaks(blob: str) -> list[str]:
    return [pan for pan in PANS if pan.replace(" ", "") in blob.replace(" ", "")] + (
        [TRACK2] if TRACK2 in blob else []
    )


def test_canary_pans_are_luhn_valid() -> None:
    assert all(luhn_valid(pan.replace(" ", "")) for pan in PANS)


def test_a_full_pan_cannot_become_a_payment_reference() -> None:
    with pytest.raises(CardDataError):
        PaymentRef(ecr_ref="E9", masked_pan=PANS[0])


def test_full_pans_in_receipt_texts_never_reach_the_printer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    header = ReceiptHeader(
        f"示范超市 {PANS[0]}", address=f"地址 {TRACK2}", phone=PANS[2], footer=f"会员 {PANS[1]}"
    )
    sim = VirtualPrinter(tmp_path, png=False)
    with ThreadedPrinter(sim):
        devices = LaneDevices(
            printer=PrinterConfig(f"tcp://127.0.0.1:{sim.port}"),
            header=header,
            qr_url=f"https://fapiao.example/?card={PANS[1]}",
        )
        devices.print_receipt(card_and_cash_sale(f"礼品卡 {PANS[0]}"), cashier_name=PANS[1])
        [job] = sim.wait_for_jobs(1)
    printed = job.raw.decode("gb18030", errors="replace")
    assert MASKED_PAN in printed  # the masked card number is still printed
    assert "622848*********8903" in printed  # the PAN in the header was masked, not dropped
    for blob in (printed, job.raw.decode("latin-1"), job.text, caplog.text):
        assert _leaks(blob) == []
    for path in tmp_path.iterdir():
        assert _leaks(path.read_bytes().decode("gb18030", errors="replace")) == []
