"""The terminal's small parts: fault decisions, status events, the faulty transport, counters,
slip images and the control channel's commands."""

from __future__ import annotations

import asyncio
import os
import stat
import struct
import zlib
from pathlib import Path

import pytest

from shouyin.link import NotificationKind, PaperState, PowerSource
from shouyin.link.transport import Scheme, memory_pipe
from shouyin.terminal.app import TerminalApp
from shouyin.terminal.cards import ReaderRule, RulesReader, scribble
from shouyin.terminal.control import ControlHandler
from shouyin.terminal.faults import AcquirerFault, FaultPlan, Faults, Step, WriteKind
from shouyin.terminal.faulty import FaultyTransport
from shouyin.terminal.memory_host import MemoryAcquirer
from shouyin.terminal.ports import mask_pan
from shouyin.terminal.slips import format_fen, signature_png
from shouyin.terminal.state import DB_NAME, TerminalState, next_number
from shouyin.terminal.status import TerminalStatus


@pytest.mark.parametrize(
    ("plan", "expected"),
    [
        (FaultPlan(drop=frozenset({2})), WriteKind.DROP),
        (FaultPlan(corrupt=frozenset({2})), WriteKind.CORRUPT),
        (FaultPlan(disconnect=frozenset({2})), WriteKind.CUT),
        (FaultPlan(delay={2: 1.5}), WriteKind.DELAY),
    ],
)
def test_only_the_nth_write_is_hit(plan: FaultPlan, expected: WriteKind) -> None:
    faults = Faults(plan)
    kinds = [faults.on_write(b"abcdef").kind for _ in range(3)]
    assert kinds == [WriteKind.DELIVER, expected, WriteKind.DELIVER]


def test_corruption_flips_one_byte_and_a_cut_keeps_half() -> None:
    corrupt = Faults(FaultPlan(corrupt=frozenset({1}))).on_write(b"abcdef")
    changed = sum(a != b for a, b in zip(corrupt.data, b"abcdef", strict=True))
    assert len(corrupt.data) == 6 and changed == 1
    assert Faults(FaultPlan(disconnect=frozenset({1}))).on_write(b"abcdef").data == b"abc"


def test_power_loss_fires_once_at_its_step() -> None:
    faults = Faults(FaultPlan(power_loss_at=Step.BEFORE_RESPONSE))
    assert not faults.power_lost_at(Step.CARD_READ)
    assert faults.power_lost_at(Step.BEFORE_RESPONSE)
    assert not faults.power_lost_at(Step.BEFORE_RESPONSE)


def test_acquirer_fault_is_limited_by_operation_and_count() -> None:
    plan = FaultPlan(
        acquirer=AcquirerFault.LOSE_REPLY, acquirer_operations=frozenset({"sale"}), acquirer_count=1
    )
    faults = Faults(plan)
    assert faults.acquirer_fault("echo") is AcquirerFault.NONE
    assert faults.acquirer_fault("sale") is AcquirerFault.LOSE_REPLY
    assert faults.acquirer_fault("sale") is AcquirerFault.NONE


def test_status_changes_produce_events_only_on_transitions() -> None:
    status = TerminalStatus()
    assert status.update(paper=PaperState.OK) == []
    kinds = [e.event for e in status.update(paper="low", power="battery", battery_percent=50)]
    assert kinds == [NotificationKind.ON_BATTERY, NotificationKind.PAPER_LOW]
    assert [e.event for e in status.update(battery_percent=10)] == [NotificationKind.LOW_BATTERY]
    assert status.update(battery_percent=5) == []
    assert [e.event for e in status.update(temperature_c=80)] == [
        NotificationKind.MAINTENANCE_REQUIRED
    ]
    assert status.health().power is PowerSource.BATTERY
    with pytest.raises(ValueError, match="PaperState"):
        status.update(paper="soggy")


def test_faulty_transport_keeps_order_behind_a_delayed_write() -> None:
    async def main() -> None:
        ours, theirs = memory_pipe(Scheme.TCP)
        faults = Faults(FaultPlan(delay={1: 0.05}, drop=frozenset({3})))
        faulty = FaultyTransport(ours, faults, hang_up_on_cut=True)
        for chunk in (b"one", b"two", b"three", b"four"):
            faulty.write(chunk)
        received = b""
        async with asyncio.timeout(2):
            while received != b"onetwofour":
                received += await theirs.read()

    asyncio.run(main())


def test_trace_and_batch_numbers_are_six_digits_wrap_and_persist(tmp_path: Path) -> None:
    assert next_number(999_999) == 1
    state = TerminalState(tmp_path / "t")
    assert [state.next_trace() for _ in range(2)] == ["000001", "000002"]
    assert state.close_batch() == "000002"
    state.close()
    again = TerminalState(tmp_path / "t")
    assert (again.last_trace, again.batch, again.next_trace()) == ("000002", "000002", "000003")


def test_state_directory_and_database_are_private(tmp_path: Path) -> None:
    TerminalState(tmp_path / "t").close()
    assert stat.S_IMODE(os.stat(tmp_path / "t").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tmp_path / "t" / DB_NAME).st_mode) == 0o600


def test_signature_png_is_a_valid_deterministic_image() -> None:
    png = signature_png(scribble("R1"))
    assert png == signature_png(scribble("R1")) != signature_png(scribble("R2"))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (240, 80)
    idat_length = struct.unpack(">I", png[33:37])[0]
    raw = zlib.decompress(png[41 : 41 + idat_length])
    assert len(raw) == height * (width + 1) and b"\x00" in raw[1:]  # some ink


def test_masking_and_money_formatting() -> None:
    assert mask_pan("6228480000000000018") == "622848*********0018"
    assert format_fen(12345) == "￥123.45" and format_fen(-5) == "-￥0.05"
    with pytest.raises(ValueError, match="card number"):
        mask_pan("1234")


def test_control_commands_change_faults_status_and_reader(tmp_path: Path) -> None:
    reader = RulesReader()
    app = TerminalApp(TerminalState(tmp_path / "t"), MemoryAcquirer(), reader)
    stopped: list[bool] = []
    control = ControlHandler(app, reader, lambda: stopped.append(True))
    assert control.handle({"cmd": "faults", "plan": {"drop": [3]}})["ok"]
    assert app.faults.plan.drop == frozenset({3})
    answer = control.handle({"cmd": "set_status", "paper": "out"})
    assert answer == {"ok": True, "events": ["paper_out"]}
    answer = control.handle({"cmd": "reader", "rules": [{"card": "pin", "pin": "wrong"}]})
    assert answer == {"ok": True, "rules": 1}
    assert reader.rules == (ReaderRule(card="pin", pin=reader.rules[0].pin),)
    assert control.handle({"cmd": "status"})["status"]["paper"] == "out"
    assert not control.handle({"cmd": "reader", "rules": [{"card": "nope"}]})["ok"]
    assert not control.handle({"cmd": "faults", "plan": {"power_loss_at": "lunch"}})["ok"]
    assert not control.handle({"cmd": "dance"})["ok"]
    assert control.handle({"cmd": "stop"})["ok"] and stopped == [True]
