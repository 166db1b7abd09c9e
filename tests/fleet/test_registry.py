"""The terminal registry: validation, the state table, and round trips on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import StatementError

from shouyin.fleet.registry import (
    TRANSITIONS,
    InvalidTerminal,
    InvalidTransition,
    Terminal,
    TerminalAction,
    TerminalExists,
    TerminalState,
    UnknownTerminal,
    get_terminal,
    list_terminals,
    normalise_link_url,
    register_terminal,
    validate_terminal_id,
)
from shouyin.store.terminal_repo import SqlTerminalUnitOfWork
from shouyin.store.uow import make_session_factory

NOW = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def uow(engine: Engine) -> Iterator[SqlTerminalUnitOfWork]:
    yield SqlTerminalUnitOfWork(make_session_factory(engine))


def fully_paired(terminal_id: str = "10000001", lane: str = "L01") -> Terminal:
    """A terminal with every optional field set (to check each column round trips)."""
    registered = Terminal.register(
        terminal_id,
        lane,
        now=NOW,
        display_name="一号机",
        link_url="serial:///dev/ttyUSB0?baud=115200",
    )
    paired = registered.paired(
        at=NOW + timedelta(minutes=5),
        key_id="9e71dbae",
        certificate_serial="1d34e52d87254365f25792efc9efcdfb3965d407",
        certificate_expires_at=NOW + timedelta(days=825),
    )
    return paired.seen(at=NOW + timedelta(hours=1), firmware_version="V2.3.1")


# -- validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize("terminal_id", ["10000001", "T0000001", "abcdEF12"])
def test_an_eight_character_alphanumeric_terminal_id_is_accepted(terminal_id: str) -> None:
    assert validate_terminal_id(terminal_id) == terminal_id


@pytest.mark.parametrize(
    "terminal_id", ["", "1000001", "100000011", "1000-001", "１0000001", "../etc/p"]
)
def test_any_other_terminal_id_is_refused(terminal_id: str) -> None:
    with pytest.raises(InvalidTerminal) as refused:
        validate_terminal_id(terminal_id)
    assert refused.value.field == "terminal_id"


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("serial:///dev/ttyUSB0?baud=115200", "serial:///dev/ttyUSB0?baud=115200"),
        ("serial:///dev/ttyS1", "serial:///dev/ttyS1?baud=9600"),
        ("serial://COM3?baud=9600", "serial://COM3?baud=9600"),
        (None, None),
        ("  ", None),
    ],
)
def test_serial_urls_are_stored_in_canonical_form(url: str | None, canonical: str | None) -> None:
    assert normalise_link_url(url) == canonical


@pytest.mark.parametrize(
    "url", ["tcp://192.168.1.20:8583", "tls://pos.local:8583", "serial://", "serial:///dev/x?b=1"]
)
def test_a_network_or_malformed_link_url_is_refused(url: str) -> None:
    with pytest.raises(InvalidTerminal) as refused:
        normalise_link_url(url)
    assert refused.value.field == "link_url"


def test_lane_id_must_be_a_valid_link_identity() -> None:
    with pytest.raises(InvalidTerminal) as refused:
        Terminal.register("10000001", "收银台一", now=NOW)
    assert refused.value.field == "lane_id"


def test_display_name_defaults_to_the_id_and_a_typed_card_number_is_masked() -> None:
    assert Terminal.register("10000001", "L01", now=NOW).display_name == "10000001"
    named = Terminal.register("10000001", "L01", now=NOW, display_name="卡 6228480012345671 \n机")
    assert "6228480012345671" not in named.display_name
    assert "\n" not in named.display_name
    with pytest.raises(InvalidTerminal):
        Terminal.register("10000001", "L01", now=NOW, display_name="x" * 101)


def test_naive_timestamps_are_refused_by_the_store(uow: SqlTerminalUnitOfWork) -> None:
    naive = Terminal.register("10000001", "L01", now=NOW.replace(tzinfo=None))
    with pytest.raises(StatementError, match="naive"), uow:
        uow.terminals.add(naive)


# -- the state table -------------------------------------------------------------------------------


def test_every_state_can_be_paired_and_only_a_revoked_one_cannot_be_revoked() -> None:
    for state in TerminalState:
        assert TRANSITIONS[state][TerminalAction.PAIR] is TerminalState.PAIRED
    assert TerminalAction.REVOKE not in TRANSITIONS[TerminalState.REVOKED]
    revoked = fully_paired().revoked(at=NOW)
    assert revoked.state is TerminalState.REVOKED and revoked.key_id is None
    with pytest.raises(InvalidTransition):
        revoked.revoked(at=NOW)


def test_a_revoked_terminal_can_be_paired_again() -> None:
    again = (
        fully_paired()
        .revoked(at=NOW)
        .paired(at=NOW, key_id="0badcafe", certificate_serial=None, certificate_expires_at=None)
    )
    assert again.state is TerminalState.PAIRED and again.key_id == "0badcafe"


# -- storage ---------------------------------------------------------------------------------------


def test_every_field_round_trips(uow: SqlTerminalUnitOfWork) -> None:
    terminal = fully_paired()
    with uow:
        uow.terminals.add(terminal)
        uow.commit()
    with uow:
        assert uow.terminals.get("10000001") == terminal


def test_a_network_terminal_without_optional_fields_round_trips(uow: SqlTerminalUnitOfWork) -> None:
    terminal = Terminal.register("T0000009", "L02", now=NOW)
    with uow:
        uow.terminals.add(terminal)
        uow.commit()
    with uow:
        loaded = uow.terminals.get("T0000009")
    assert loaded == terminal and loaded.link_url is None and not loaded.is_serial


def test_save_writes_back_a_changed_terminal(uow: SqlTerminalUnitOfWork) -> None:
    terminal = fully_paired()
    with uow:
        uow.terminals.add(terminal)
        uow.commit()
    revoked = terminal.revoked(at=NOW + timedelta(days=1))
    with uow:
        uow.terminals.save(revoked)
        uow.commit()
    with uow:
        assert uow.terminals.get("10000001") == revoked


def test_saving_an_unknown_terminal_fails(uow: SqlTerminalUnitOfWork) -> None:
    with pytest.raises(UnknownTerminal), uow:
        uow.terminals.save(fully_paired())


def test_nothing_is_kept_without_commit(uow: SqlTerminalUnitOfWork) -> None:
    with uow:
        uow.terminals.add(fully_paired())
    with uow:
        assert uow.terminals.get("10000001") is None


def test_a_second_registration_of_the_same_id_is_refused(uow: SqlTerminalUnitOfWork) -> None:
    register_terminal(uow, "10000001", lane_id="L01", now=NOW)
    with pytest.raises(TerminalExists):
        register_terminal(uow, "10000001", lane_id="L02", now=NOW)
    assert get_terminal(uow, "10000001").lane_id == "L01"


def test_list_orders_by_lane_then_id_and_filters_by_lane(uow: SqlTerminalUnitOfWork) -> None:
    for terminal_id, lane in [("20000002", "L02"), ("10000002", "L01"), ("10000001", "L01")]:
        register_terminal(uow, terminal_id, lane_id=lane, now=NOW)
    assert [t.terminal_id for t in list_terminals(uow)] == ["10000001", "10000002", "20000002"]
    assert [t.terminal_id for t in list_terminals(uow, "L02")] == ["20000002"]


def test_get_terminal_names_the_missing_id(uow: SqlTerminalUnitOfWork) -> None:
    with pytest.raises(UnknownTerminal) as missing:
        get_terminal(uow, "99999999")
    assert missing.value.terminal_id == "99999999"


def test_units_of_work_do_not_nest(uow: SqlTerminalUnitOfWork) -> None:
    with uow, pytest.raises(RuntimeError), uow:
        pass
