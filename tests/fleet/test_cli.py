"""``shouyin fleet add | list | revoke`` in-process, and the messages typed errors become.

``pair`` runs end to end in ``tests/e2e/test_pairing_cli.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from shouyin.config import Settings
from shouyin.fleet.cli import big_digits, fleet_app, fleet_error_message, main
from shouyin.fleet.keys import CorruptKeyFile, PassphraseMismatch, UnsafeKeyFile, WrongPassphrase
from shouyin.fleet.pairing import (
    ListenFailed,
    PairingFailure,
    PairingNotCompleted,
    StoreNotInitialised,
    WrongLane,
)
from shouyin.fleet.registry import (
    FleetError,
    InvalidTerminal,
    InvalidTransition,
    TerminalExists,
    UnknownTerminal,
)
from shouyin.i18n import MESSAGES
from shouyin.link.errors import LinkError

from . import TERMINAL_ID, make_settings, settings_env

runner = CliRunner()


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    settings = make_settings(tmp_path)
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SHOUYIN_DATABASE_URL", raising=False)
    monkeypatch.delenv("SHOUYIN_KEY_PASSPHRASE", raising=False)
    return settings


def test_add_registers_a_network_terminal_on_this_lane(settings: Settings) -> None:
    result = runner.invoke(fleet_app, ["add", TERMINAL_ID, "--name", "一号机"])
    assert result.exit_code == 0, result.output
    assert f"Terminal {TERMINAL_ID} registered (一号机, lane L01, network TLS)" in result.output


def test_add_registers_a_serial_terminal_with_its_canonical_url(settings: Settings) -> None:
    result = runner.invoke(
        fleet_app, ["add", "T0000002", "--lane", "L02", "--url", "serial:///dev/ttyUSB0"]
    )
    assert result.exit_code == 0, result.output
    assert "serial:///dev/ttyUSB0?baud=9600" in result.output


def test_list_shows_the_terminals_and_their_state(settings: Settings) -> None:
    assert runner.invoke(fleet_app, ["list"]).output.strip() == "No terminals registered"
    runner.invoke(fleet_app, ["add", TERMINAL_ID])
    runner.invoke(fleet_app, ["add", "20000001", "--lane", "L02"])
    listed = runner.invoke(fleet_app, ["list"], env={"COLUMNS": "160"})
    assert listed.exit_code == 0, listed.output
    assert TERMINAL_ID in listed.output and "20000001" in listed.output
    assert "registered" in listed.output
    only = runner.invoke(fleet_app, ["list", "--lane", "L02"], env={"COLUMNS": "160"})
    assert "20000001" in only.output and TERMINAL_ID not in only.output


def test_list_speaks_chinese_by_default(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOUYIN_LANGUAGE", "zh")
    runner.invoke(fleet_app, ["add", TERMINAL_ID])
    listed = runner.invoke(fleet_app, ["list"], env={"COLUMNS": "160"})
    assert "终端号" in listed.output and "已登记" in listed.output


def test_main_turns_a_typed_error_into_a_message_and_status_1(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["add", TERMINAL_ID]) == 0
    assert main(["add", TERMINAL_ID]) == 1
    assert f"Error: Terminal {TERMINAL_ID} is already registered" in capsys.readouterr().err
    assert main(["add", "123"]) == 1
    assert "Invalid terminal_id" in capsys.readouterr().err
    assert main(["add", "10000009", "--url", "tcp://10.0.0.2:8583"]) == 1
    assert "Invalid link_url" in capsys.readouterr().err


def test_pair_refuses_an_unregistered_terminal(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["pair", TERMINAL_ID, "--timeout", "1"]) == 1
    assert f"No terminal {TERMINAL_ID} is registered" in capsys.readouterr().err


def test_pair_needs_shouyin_init_first(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["add", TERMINAL_ID])
    assert main(["pair", TERMINAL_ID, "--timeout", "1"]) == 1
    assert "run shouyin init first" in capsys.readouterr().err


def test_usage_errors_keep_their_exit_status(settings: Settings) -> None:
    assert main(["pair"]) == 2
    assert main(["pair", TERMINAL_ID, "--timeout", "0"]) == 2


def test_revoke_of_an_unknown_terminal_is_an_error(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["revoke", TERMINAL_ID]) == 1
    assert f"No terminal {TERMINAL_ID} is registered" in capsys.readouterr().err


def test_revoke_marks_a_registered_terminal_revoked_once(settings: Settings) -> None:
    runner.invoke(fleet_app, ["add", TERMINAL_ID])
    first = runner.invoke(fleet_app, ["revoke", TERMINAL_ID])
    assert first.exit_code == 0, first.output
    assert f"Terminal {TERMINAL_ID} revoked: certificate none, key none" in first.output
    second = runner.invoke(fleet_app, ["revoke", TERMINAL_ID])
    assert "was already revoked" in second.output
    assert "revoked" in runner.invoke(fleet_app, ["list"], env={"COLUMNS": "160"}).output


def test_the_pairing_code_is_drawn_big_in_two_groups_of_four() -> None:
    drawn = big_digits("12345678").splitlines()
    assert len(drawn) == 5
    assert set("".join(drawn)) <= {"█", " "}
    assert all(len(line) <= 64 for line in drawn)


ERRORS: list[tuple[BaseException, str]] = [
    (PairingNotCompleted(TERMINAL_ID, PairingFailure.BURNT), "Three wrong codes"),
    (InvalidTerminal("lane_id", "too long"), "Invalid lane_id: too long"),
    (TerminalExists(TERMINAL_ID), "already registered"),
    (UnknownTerminal(TERMINAL_ID), "is registered"),
    (InvalidTransition("cannot revoke"), "Not allowed: cannot revoke"),
    (WrongLane(TERMINAL_ID, "L02", "L01"), "belongs to lane L02 and this is lane L01"),
    (StoreNotInitialised("/k"), "run shouyin init first"),
    (ListenFailed("tls://127.0.0.1:8583", "Address in use"), "Address in use"),
    (WrongPassphrase("wrong", Path("/k")), "SHOUYIN_KEY_PASSPHRASE"),
    (PassphraseMismatch("no", Path("/k")), "unset SHOUYIN_KEY_PASSPHRASE"),
    (UnsafeKeyFile("open", Path("/k/x.key")), "chmod 600"),
    (CorruptKeyFile("altered", Path("/k/x.key")), "altered"),
    (LinkError("no route"), "Terminal link: no route"),
    (FleetError("other"), "other"),
]


@pytest.mark.parametrize(("error", "expected"), ERRORS)
def test_every_typed_error_has_a_message(
    error: BaseException, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOUYIN_LANGUAGE", "en")
    message = fleet_error_message(error)
    assert message is not None and expected in message


def test_other_errors_are_not_ours() -> None:
    assert fleet_error_message(ValueError("x")) is None


@pytest.mark.parametrize("reason", list(PairingFailure))
def test_every_pairing_failure_is_translated(reason: PairingFailure) -> None:
    assert set(MESSAGES[f"fleet.pair.failed.{reason.value}"]) == {"zh", "en"}


def test_every_fleet_message_has_chinese_and_english() -> None:
    fleet = {key: text for key, text in MESSAGES.items() if key.startswith("fleet.")}
    assert fleet and all(set(text) == {"zh", "en"} for text in fleet.values())
