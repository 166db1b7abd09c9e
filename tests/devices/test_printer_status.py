"""Real-time printer status: DLE EOT replies decoded into what the cashier page shows."""

from __future__ import annotations

import pytest

from shouyin.devices.printer import PrinterState, status_from_replies
from shouyin.devices.printer_sim import PaperState, SimState, status_byte


@pytest.mark.parametrize(
    ("online", "cause", "paper", "state"),
    [
        (0x12, 0x12, 0x12, PrinterState.OK),
        (0x12, 0x12, 0x1E, PrinterState.NEAR_END),
        (0x1A, 0x32, 0x7E, PrinterState.PAPER_OUT),
        (0x1A, 0x16, 0x12, PrinterState.COVER_OPEN),
        (0x1A, 0x12, 0x12, PrinterState.OFFLINE),
        (None, None, None, PrinterState.UNKNOWN),
    ],
)
def test_status_bytes_decode_to_the_cashier_state(
    online: int | None, cause: int | None, paper: int | None, state: PrinterState
) -> None:
    assert status_from_replies(online, cause, paper).state is state


def test_a_byte_that_is_not_a_status_reply_counts_as_no_answer() -> None:
    status = status_from_replies(0xFF, 0x00, None)
    assert status.state is PrinterState.UNKNOWN
    assert not status.answered


@pytest.mark.parametrize(
    ("sim", "state"),
    [
        (SimState(), PrinterState.OK),
        (SimState(paper=PaperState.NEAR_END), PrinterState.NEAR_END),
        (SimState(paper=PaperState.OUT), PrinterState.PAPER_OUT),
        (SimState(cover_open=True), PrinterState.COVER_OPEN),
    ],
)
def test_simulator_replies_decode_to_its_own_condition(sim: SimState, state: PrinterState) -> None:
    replies = (status_byte(sim, 1), status_byte(sim, 2), status_byte(sim, 4))
    assert status_from_replies(*replies).state is state


def test_simulator_paper_reply_matches_python_escpos_masks() -> None:
    # python-escpos's paper_status(): 0 no paper (mask 114), 1 near end (mask 30), 2 adequate.
    assert status_byte(SimState(paper=PaperState.OUT), 4) & 114 == 114
    assert status_byte(SimState(paper=PaperState.NEAR_END), 4) & 30 == 30
    assert status_byte(SimState(), 4) == 18


def test_only_ok_near_end_and_unknown_can_print() -> None:
    assert {s for s in PrinterState if s.can_print} == {
        PrinterState.OK,
        PrinterState.NEAR_END,
        PrinterState.UNKNOWN,
    }
