"""Login (签到): handshake bytes, version and capability negotiation, refusals, re-login."""

from __future__ import annotations

import pytest

from shouyin.link import (
    ConnectionState,
    FrameRefused,
    IncompatiblePeer,
    LinkConfig,
    LinkTimeout,
    LocalProtocolError,
    LoggedIn,
    LoginFailed,
    LongTermKey,
    MessageReceived,
    PaymentKind,
    PaymentRequest,
    Refusal,
    SecurityError,
    SessionReset,
    crc16_ccitt_false,
    decode,
    encode,
)

from .helpers import ECR_ID, TERMINAL_ID, Framing, make_pair, of_type, refusals
from .samples import TYPICAL_PAYMENT_REQUEST

LOGIN_REQUEST_JSON = (
    b'{"type":"login_request","service_id":"E1","ecr_id":"lane-01","key_id":"e076ecf5",'
    b'"protocol_versions":[1],"capabilities":{"payment_kinds":[],"wallets":[],"printer":true,'
    b'"display":true,"max_frame_size":8192,"firmware":"shouyin 0.1.0"},'
    b'"nonce":"f5b165224a58b791df6af1d8303e61cdc4bb86c3d1c427103c344c4189eb2f1e"}'
)


def test_login_request_frame_exact_bytes() -> None:
    pair = make_pair("serial", login=False)
    pair.cashier.login(pair.now)
    inner = len(LOGIN_REQUEST_JSON).to_bytes(2, "big") + LOGIN_REQUEST_JSON + b"\x03"
    expected = b"\x02" + inner + crc16_ccitt_false(inner).to_bytes(2, "big")
    assert pair.cashier.data_to_send() == expected
    assert expected[:3] == bytes.fromhex("020134") and expected[-3:] == bytes.fromhex("03c677")


@pytest.mark.parametrize("framing", ["stream", "serial"])
def test_login_reaches_ready_on_both_sides_with_peer_info(framing: Framing) -> None:
    pair = make_pair(framing, login=False)
    states = [pair.cashier.state]
    pair.cashier.login(pair.now)
    states.append(pair.cashier.state)
    assert states == [ConnectionState.CONNECTED, ConnectionState.LOGGING_IN]
    pair.pump()
    [ecr_login] = of_type(pair.cashier_events, LoggedIn)
    [poi_login] = of_type(pair.terminal_events, LoggedIn)
    assert pair.cashier.state is pair.terminal.state is ConnectionState.READY
    assert ecr_login.peer.peer_id == TERMINAL_ID and poi_login.peer.peer_id == ECR_ID
    assert ecr_login.peer.key_id == poi_login.peer.key_id
    assert ecr_login.peer.protocol_version == 1
    assert PaymentKind.QR_CODE in ecr_login.peer.capabilities.payment_kinds


def test_login_wire_is_two_plain_hellos_then_two_sealed_confirms() -> None:
    pair = make_pair("stream", login=False)
    pair.cashier.login(pair.now)
    pair.pump()
    bodies = []
    for direction, chunk in pair.wire:
        rest = chunk
        while rest:
            size = int.from_bytes(rest[:4], "big")
            bodies.append((direction, rest[4 : 4 + size]))
            rest = rest[4 + size :]
    assert [(d, b[:1]) for d, b in bodies] == [
        ("ecr->poi", b"{"),
        ("poi->ecr", b"{"),
        ("poi->ecr", b"\x01"),
        ("ecr->poi", b"\x01"),
    ]
    assert decode(bodies[1][1]).type == "login_response"


def test_each_login_derives_fresh_session_keys() -> None:
    pair = make_pair()
    first = pair.cashier.peer
    pair.cashier.login(pair.now)
    pair.pump()
    assert first is not None and pair.cashier.peer is not None
    assert pair.cashier.peer.key_id != first.key_id


def test_no_common_version_is_refused_clearly_on_both_sides() -> None:
    pair = make_pair(
        login=False,
        config=LinkConfig(protocol_versions=(2, 3)),
        terminal_config=LinkConfig(protocol_versions=(1,)),
    )
    pair.cashier.login(pair.now)
    pair.pump()
    [ecr_failed] = of_type(pair.cashier_events, LoginFailed)
    [poi_failed] = of_type(pair.terminal_events, LoginFailed)
    assert isinstance(ecr_failed.error, IncompatiblePeer)
    assert isinstance(poi_failed.error, IncompatiblePeer)
    assert ecr_failed.error.theirs == (1,)
    assert "protocol version" in str(ecr_failed.error)
    assert pair.cashier.state is pair.terminal.state is ConnectionState.CONNECTED


def test_terminal_without_a_required_payment_kind_is_incompatible() -> None:
    pair = make_pair(
        login=False,
        config=LinkConfig(required_payment_kinds=(PaymentKind.CARD, PaymentKind.MERCHANT_QR)),
        terminal_config=LinkConfig(),
    )
    pair.cashier.login(pair.now)
    pair.pump()
    [failed] = of_type(pair.cashier_events, LoginFailed)
    assert isinstance(failed.error, IncompatiblePeer)
    assert "payment kinds" in str(failed.error)
    assert pair.cashier.state is ConnectionState.CONNECTED
    pair.advance(pair.terminal.config.login_timeout)
    assert isinstance(of_type(pair.terminal_events, LoginFailed)[0].error, LinkTimeout)
    assert pair.terminal.state is ConnectionState.CONNECTED


def test_unknown_pairing_key_is_refused() -> None:
    pair = make_pair(login=False)
    pair.cashier.long_term_key = LongTermKey(b"\x55" * 32, ecr_id=ECR_ID, terminal_id=TERMINAL_ID)
    pair.cashier.login(pair.now)
    pair.pump()
    [failed] = of_type(pair.cashier_events, LoginFailed)
    assert isinstance(failed.error, SecurityError)
    assert of_type(pair.terminal_events, LoginFailed)


def test_tampered_login_response_makes_the_confirmation_fail() -> None:
    """A relay that rewrites the hello (here: the capabilities) changes the transcript."""
    pair = make_pair(login=False)

    def tamper(data: bytes) -> bytes:
        return data.replace(b'"model":"SIM-POS"', b'"model":"SIM-POZ"')

    pair.to_cashier = tamper
    pair.cashier.login(pair.now)
    pair.pump()
    # the keys (and with them the key id) differ, so the confirm is refused before decryption
    assert refusals(pair.cashier_events) == [Refusal.WRONG_KEY]
    assert not of_type(pair.cashier_events, LoggedIn)
    pair.advance(pair.cashier.config.login_timeout)
    assert isinstance(of_type(pair.cashier_events, LoginFailed)[0].error, LinkTimeout)


def test_login_times_out_when_the_terminal_is_silent() -> None:
    pair = make_pair(login=False)
    pair.to_terminal = lambda data: b""
    pair.cashier.login(pair.now)
    pair.advance(5.0)
    [failed] = of_type(pair.cashier_events, LoginFailed)
    assert isinstance(failed.error, LinkTimeout)
    assert pair.cashier.state is ConnectionState.CONNECTED


def test_login_without_pairing_key_is_a_local_error() -> None:
    pair = make_pair(paired=False)
    with pytest.raises(LocalProtocolError, match="not paired"):
        pair.cashier.login(pair.now)


def test_terminal_cannot_log_in_and_nobody_sends_before_login() -> None:
    pair = make_pair(login=False)
    with pytest.raises(LocalProtocolError):
        pair.terminal.login(pair.now)
    with pytest.raises(LocalProtocolError):
        pair.cashier.send(TYPICAL_PAYMENT_REQUEST, pair.now)


def test_cashier_restart_on_serial_logs_in_again_without_a_connection_event() -> None:
    pair = make_pair("serial")
    restarted = make_pair("serial", connect=False, seed=77).cashier
    restarted.connection_made(pair.now)
    pair.cashier = restarted
    pair.cashier.login(pair.now)
    pair.pump()
    assert of_type(pair.cashier_events, LoggedIn)
    assert of_type(pair.terminal_events, LoggedIn)
    assert pair.terminal.state is ConnectionState.READY


def test_relogin_while_the_terminal_is_busy_reports_the_abandoned_payment() -> None:
    pair = make_pair()
    pair.cashier.send(TYPICAL_PAYMENT_REQUEST, pair.now)
    pair.pump()
    assert pair.terminal.in_flight == TYPICAL_PAYMENT_REQUEST.service_id
    restarted = make_pair(connect=False, seed=78).cashier
    restarted.connection_made(pair.now)
    pair.cashier = restarted
    pair.cashier.login(pair.now)
    pair.pump()
    [reset] = of_type(pair.terminal_events, SessionReset)
    assert reset.abandoned == (TYPICAL_PAYMENT_REQUEST,)
    assert pair.terminal.state is ConnectionState.READY
    pair.cashier.send(
        PaymentRequest(
            service_id=pair.cashier.new_service_id(),
            ecr_ref="L01-2",
            amount=1,
            kind=PaymentKind.CARD,
        ),
        pair.now,
    )
    pair.pump()
    assert of_type(pair.terminal_events, MessageReceived)[-1].message.type == "payment_request"


def test_plain_login_request_to_the_cashier_is_refused_as_unsealed() -> None:
    pair = make_pair()
    body = encode(
        decode(LOGIN_REQUEST_JSON)  # a valid message, but the cashier never takes one
    )
    pair.cashier.receive_data(len(body).to_bytes(4, "big") + body, pair.now)
    pair.pump()
    [refused] = of_type(pair.cashier_events, FrameRefused)
    assert isinstance(refused.error, SecurityError)
    assert refused.error.refusal is Refusal.UNSEALED


def test_login_request_for_an_unknown_key_does_not_disturb_a_live_session() -> None:
    pair = make_pair()
    pair.cashier.send(TYPICAL_PAYMENT_REQUEST, pair.now)
    pair.pump()
    forged = decode(LOGIN_REQUEST_JSON).model_copy(update={"key_id": "00000000"})
    body = encode(forged)
    pair.terminal.receive_data(len(body).to_bytes(4, "big") + body, pair.now)
    pair.pump()
    assert refusals(pair.terminal_events) == [Refusal.WRONG_KEY]
    assert not of_type(pair.terminal_events, SessionReset)
    assert pair.terminal.state is ConnectionState.BUSY
    assert pair.terminal.in_flight == TYPICAL_PAYMENT_REQUEST.service_id
