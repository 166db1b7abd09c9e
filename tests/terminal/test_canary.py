"""Card-data canary (DESIGN.md section 7): push full card numbers, track-2 data and PINs through
the terminal, then scan its state directory and the logs: nothing beyond first 6 + last 4."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from shouyin.acquirer.testcards import card_by_name
from shouyin.link import (
    CardEntry,
    PaymentKind,
    PaymentRequest,
    RefundRequest,
    ReversalReason,
    ReversalRequest,
)
from shouyin.terminal.cards import PinBehaviour, ReaderRule, luhn_valid, read_test_card
from shouyin.terminal.errors import StateError
from shouyin.terminal.state import TerminalState
from tests.terminal import Harness, run_virtual

CARDS = ("approve", "pin", "decline", "insufficient", "no_answer", "visa", "mc_pin", "debit")
_RUN = re.compile(rb"(?<![0-9])[0-9]{13,19}(?![0-9])")


def _leaks(data: bytes, pans: list[str], pins: list[str]) -> list[str]:
    found = [f"PAN {p[:6]}..." for p in pans if p.encode() in data]
    found += [f"track2 {p[:6]}..." for p in pans if f"{p}=".encode() in data]
    found += [f"last 13 digits of {p[:6]}..." for p in pans if p[6:].encode() in data]
    found += ["PIN" for pin in pins if f'"{pin}"'.encode() in data or f"pin={pin}".encode() in data]
    found += [
        f"Luhn-valid run {m.group()[:6].decode()}..."
        for m in _RUN.finditer(data)
        if m.group()[:1] in b"23456" and luhn_valid(m.group().decode())
    ]
    return found


def test_no_full_card_number_track_data_or_pin_is_stored_or_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    pans = [card_by_name(name).pan for name in CARDS]
    pins = sorted({card_by_name(name).pin for name in CARDS})

    async def main() -> None:
        rules = (
            *(ReaderRule(card=n, ecr_ref=f"{n}-.*", entry=CardEntry.SWIPE) for n in CARDS),
            ReaderRule(card="pin", ecr_ref="wrongpin-.*", pin=PinBehaviour.WRONG),
        )
        async with Harness(tmp_path, rules=rules) as h:
            for index, name in enumerate(CARDS):
                track2 = read_test_card(name).track2()
                await h.ask(
                    PaymentRequest(
                        service_id=h.sid(),
                        ecr_ref=f"{name}-1",
                        amount=1000 + index,
                        kind=PaymentKind.CARD,
                        description=f"card {track2} cvv 123",
                    )
                )
            await h.ask(
                PaymentRequest(
                    service_id=h.sid(), ecr_ref="wrongpin-1", amount=999, kind=PaymentKind.CARD
                )
            )
            await h.ask(
                RefundRequest(
                    service_id=h.sid(), ecr_ref="F1", amount=500, original_ecr_ref="approve-1"
                )
            )
            await h.ask(
                ReversalRequest(service_id=h.sid(), ecr_ref="visa-1", reason=ReversalReason.VOID)
            )
            await h.settle(5)
        h.app.state.close()

    run_virtual(main)
    files = [p for p in (tmp_path / "terminal").rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert _leaks(path.read_bytes(), pans, pins) == [], path.name
    logs = "\n".join(record.getMessage() for record in caplog.records).encode()
    assert "622848*********0018" in logs.decode()  # the masked form is what gets logged
    assert _leaks(logs, pans, pins) == []


def test_state_refuses_text_that_holds_a_full_card_number(tmp_path: Path) -> None:
    state = TerminalState(tmp_path / "t")
    with pytest.raises(StateError):
        state.add_printout("receipt", ("card 6228480000000000018",))
    state.add_printout("receipt", ("card 622848*********0018", "order 10000001000001000001"))
