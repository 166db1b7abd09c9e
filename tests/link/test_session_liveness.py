"""Heartbeats, dead-link detection, retransmission exhaustion, reconnection and re-login."""

from __future__ import annotations

import pytest

from shouyin.link import (
    ConnectionClosed,
    ConnectionState,
    ErrorCondition,
    HealthReported,
    LinkDead,
    LoggedIn,
    PaperState,
    Result,
    TerminalHealth,
    TransactionStatusRequest,
    TransactionStatusResponse,
)

from .helpers import Framing, make_pair, of_type
from .samples import TYPICAL_PAYMENT_REQUEST


def heartbeat_requests(wire: list[tuple[str, bytes]]) -> int:
    return sum(data.count(b"heartbeat_request") for _, data in wire)


def test_idle_link_is_kept_alive_by_heartbeats_with_health() -> None:
    pair = make_pair()
    pair.terminal.health = TerminalHealth(paper=PaperState.LOW, battery_percent=80)
    pair.advance(60.0)
    health = of_type(pair.cashier_events, HealthReported)
    assert len(health) == 30  # one every heartbeat_interval (2 s)
    assert health[0].health.paper is PaperState.LOW
    assert health[0].health.link is not None
    assert pair.cashier.state is pair.terminal.state is ConnectionState.READY
    assert not of_type(pair.cashier_events + pair.terminal_events, LinkDead)


def test_heartbeat_is_sealed_on_the_wire() -> None:
    pair = make_pair()
    pair.advance(2.0)
    assert pair.wire and heartbeat_requests(pair.wire) == 0  # sealed: no plaintext visible
    assert all(data[4] == 0x01 for _, data in pair.wire)  # stream LEN(4) then version byte


def test_traffic_from_the_cashier_makes_heartbeats_unnecessary() -> None:
    pair = make_pair()
    for _ in range(10):
        query = TransactionStatusRequest(service_id=pair.cashier.new_service_id(), ecr_ref="L01-1")
        pair.cashier.send(query, pair.now)
        pair.pump()
        pair.terminal.send(
            TransactionStatusResponse(
                service_id=query.service_id,
                ecr_ref="L01-1",
                result=Result.FAILURE,
                error_condition=ErrorCondition.NOT_FOUND,
            ),
            pair.now,
        )
        pair.advance(1.5)
    assert not of_type(pair.cashier_events, HealthReported)


@pytest.mark.parametrize("framing", ["stream", "serial"])
def test_silent_terminal_is_declared_dead_within_seconds(framing: Framing) -> None:
    pair = make_pair(framing)
    pair.cashier.send(TYPICAL_PAYMENT_REQUEST, pair.now)
    pair.pump()
    pair.to_cashier = lambda data: b""  # the terminal went to sleep / the cable is out
    pair.to_terminal = lambda data: b""
    pair.advance(10.0)
    [dead] = of_type(pair.cashier_events, LinkDead)
    assert dead.pending == (TYPICAL_PAYMENT_REQUEST,)
    assert pair.cashier.state is ConnectionState.DISCONNECTED
    [poi_dead] = of_type(pair.terminal_events, LinkDead)
    assert poi_dead.pending == (TYPICAL_PAYMENT_REQUEST,)


def test_dead_link_is_detected_no_later_than_dead_after() -> None:
    pair = make_pair()
    pair.to_cashier = lambda data: b""
    start = pair.now
    while not of_type(pair.cashier_events, LinkDead):
        pair.advance(0.5)
    assert pair.now - start <= pair.cashier.config.dead_after + 0.5


def test_serial_retransmissions_exhausted_bring_the_link_down_with_the_payment_pending() -> None:
    pair = make_pair("serial")
    pair.to_terminal = lambda data: b""  # nothing reaches the terminal: no ACK ever
    pair.cashier.send(TYPICAL_PAYMENT_REQUEST, pair.now)
    pair.pump()
    pair.advance(3.0)  # 4 transmissions x 0.5 s ACK timeout
    [dead] = of_type(pair.cashier_events, LinkDead)
    assert "retransmissions" in dead.reason
    assert dead.pending == (TYPICAL_PAYMENT_REQUEST,)
    assert pair.cashier.framing_stats.retransmissions == 3
    frames = [data for direction, data in pair.wire if direction == "ecr->poi"]
    assert len(frames) == 4 and len(set(frames)) == 1  # the same frame, 1 + 3 times


def test_serial_nak_then_retransmission_delivers_the_payment() -> None:
    pair = make_pair("serial")
    corrupted: list[bytes] = []

    def corrupt_first(data: bytes) -> bytes:
        if not corrupted and len(data) > 10:
            corrupted.append(data)
            return data[:10] + bytes([data[10] ^ 0xFF]) + data[11:]
        return data

    pair.to_terminal = corrupt_first
    pair.cashier.send(TYPICAL_PAYMENT_REQUEST, pair.now)
    pair.pump()
    assert pair.terminal.in_flight == TYPICAL_PAYMENT_REQUEST.service_id
    assert pair.cashier.framing_stats.retransmissions == 1
    assert pair.terminal.framing_stats.crc_errors == 1


def test_connection_lost_reports_pending_and_a_new_connection_logs_in_again() -> None:
    pair = make_pair()
    pair.cashier.send(TYPICAL_PAYMENT_REQUEST, pair.now)
    pair.pump()
    pair.cashier.connection_lost(pair.now)
    pair.terminal.connection_lost(pair.now)
    pair.pump()
    [dead] = of_type(pair.cashier_events, LinkDead)
    assert dead.pending == (TYPICAL_PAYMENT_REQUEST,)
    pair.clear()
    pair.connect()
    pair.cashier.login(pair.now)
    pair.pump()
    assert of_type(pair.cashier_events, LoggedIn) and of_type(pair.terminal_events, LoggedIn)
    assert pair.cashier.state is ConnectionState.READY


def test_close_is_final_and_reports_pending() -> None:
    pair = make_pair()
    pair.cashier.send(TYPICAL_PAYMENT_REQUEST, pair.now)
    pair.cashier.close(pair.now)
    assert pair.cashier.state is ConnectionState.CLOSED
    assert pair.cashier.events() == [ConnectionClosed((TYPICAL_PAYMENT_REQUEST,))]
    assert pair.cashier.data_to_send() == b""
    assert pair.cashier.next_timer() is None
