"""Pairing codes and SPAKE2 pairing, alone and over a connection pair."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from shouyin.link import (
    CodeState,
    ConnectionState,
    ErrorCondition,
    LoggedIn,
    LongTermKey,
    Paired,
    PairingAborted,
    PairingClient,
    PairingCode,
    PairingCodeRejected,
    PairingComplete,
    PairingFailed,
    PairingServer,
    Result,
)

from .helpers import ECR_ID, TERMINAL_ID, Framing, entropy, make_pair, of_type

NOW = 5_000.0
CSR = "-----BEGIN CERTIFICATE REQUEST-----\nMIIB...\n-----END CERTIFICATE REQUEST-----\n"


def issuer(terminal_id: str, csr: str | None) -> tuple[str | None, str | None]:
    return f"CERT for {terminal_id} from {len(csr or '')}-byte CSR", "STORE CA"


# -- codes -------------------------------------------------------------------------------------


def test_code_from_random_bytes_is_eight_digits() -> None:
    code = PairingCode.from_random(bytes(range(8)), NOW)
    assert code.digits == f"{int.from_bytes(bytes(range(8)), 'big') % 10**8:08d}"
    assert len(PairingCode.generate(NOW).digits) == 8
    with pytest.raises(ValueError, match="8 random bytes"):
        PairingCode.from_random(b"short", NOW)


def test_code_expires_after_ten_minutes() -> None:
    code = PairingCode("12345678", created_at=NOW)
    assert code.state(NOW + 599.9) is CodeState.VALID
    assert code.state(NOW + 600) is CodeState.EXPIRED
    with pytest.raises(PairingCodeRejected, match="expired"):
        code.begin_attempt(NOW + 600)


def test_code_is_single_use() -> None:
    code = PairingCode("12345678", created_at=NOW)
    code.begin_attempt(NOW)
    code.record_success()
    assert code.state(NOW) is CodeState.USED
    with pytest.raises(PairingCodeRejected, match="used"):
        code.begin_attempt(NOW)


def test_code_is_burnt_after_three_failed_attempts() -> None:
    code = PairingCode("12345678", created_at=NOW)
    for _ in range(3):
        code.begin_attempt(NOW)  # never confirmed: counts as failed
    assert code.state(NOW) is CodeState.BURNT
    with pytest.raises(PairingCodeRejected, match="burnt"):
        code.begin_attempt(NOW)


def test_code_repr_hides_the_digits() -> None:
    code = PairingCode("12345678", created_at=NOW)
    assert "12345678" not in repr(code)
    assert "12345678" not in str(code)


# -- the exchange on its own -------------------------------------------------------------------


@dataclass
class Exchange:
    server: PairingServer
    client: PairingClient
    complete: PairingComplete
    server_key: LongTermKey | None


def run_exchange(server_code: str, client_code: str, *, csr: str | None = None) -> Exchange:
    code = PairingCode(server_code, created_at=NOW)
    server = PairingServer(ECR_ID, code, entropy=entropy(1), issuer=issuer)
    client = PairingClient(TERMINAL_ID, client_code, csr=csr, entropy=entropy(2))
    challenge = server.receive_request(client.start(), NOW)
    confirm = client.receive_challenge(challenge)
    try:
        key: LongTermKey | None = server.receive_confirm(confirm)
        complete = server.complete()
    except PairingFailed:
        key = None
        complete = PairingServer.refusal(confirm.service_id, ErrorCondition.REFUSAL)
    return Exchange(server, client, complete, key)


def test_right_code_agrees_the_same_long_term_key_and_delivers_certificates() -> None:
    run = run_exchange("24681357", "24681357", csr=CSR)
    outcome = run.client.receive_complete(run.complete)
    assert run.server_key is not None
    assert outcome.key.secret_bytes() == run.server_key.secret_bytes()
    assert outcome.key.key_id == run.complete.key_id == run.server_key.key_id
    assert (outcome.key.ecr_id, outcome.key.terminal_id) == (ECR_ID, TERMINAL_ID)
    assert outcome.certificate == f"CERT for {TERMINAL_ID} from {len(CSR)}-byte CSR"
    assert outcome.ca_certificate == "STORE CA"
    assert run.server.code.state(NOW) is CodeState.USED


def test_wrong_code_fails_confirmation_on_both_sides() -> None:
    run = run_exchange("24681357", "24681358")
    assert run.client.error is not None
    assert run.server_key is None
    assert run.complete.result is Result.FAILURE
    with pytest.raises(PairingFailed):
        run.client.receive_complete(run.complete)
    assert run.server.code.failures == 1
    assert run.server.code.state(NOW) is CodeState.VALID


def test_wrong_code_reveals_nothing_but_failure() -> None:
    run = run_exchange("24681357", "24681358")
    complete = run.complete
    assert complete.key_id is None and complete.mac is None and complete.certificate is None
    assert run.client.error is not None
    assert "24681357" not in str(run.client.error)


def test_swapped_csr_fails_confirmation() -> None:
    code = PairingCode("11112222", created_at=NOW)
    server = PairingServer(ECR_ID, code, entropy=entropy(1))
    client = PairingClient(TERMINAL_ID, "11112222", csr=CSR, entropy=entropy(2))
    request = client.start().model_copy(update={"csr": CSR.replace("MIIB", "EVIL")})
    confirm = client.receive_challenge(server.receive_request(request, NOW))
    assert client.error is not None
    with pytest.raises(PairingFailed):
        server.receive_confirm(confirm)


def test_swapped_certificate_fails_the_final_mac() -> None:
    run = run_exchange("24681357", "24681357")
    forged = run.complete.model_copy(update={"certificate": "MALLORY CERT"})
    with pytest.raises(PairingFailed, match="MAC"):
        run.client.receive_complete(forged)


def test_malformed_pake_message_is_a_pairing_failure() -> None:
    code = PairingCode("11112222", created_at=NOW)
    server = PairingServer(ECR_ID, code, entropy=entropy(1))
    request = PairingClient(TERMINAL_ID, "11112222", entropy=entropy(2)).start()
    with pytest.raises(PairingFailed):
        server.receive_request(request.model_copy(update={"pake": "42" + "ff" * 32}), NOW)
    assert code.failures == 1


# -- over a connection pair --------------------------------------------------------------------


@pytest.mark.parametrize("framing", ["stream", "serial"])
def test_pairing_over_the_link_then_login_with_the_new_key(framing: Framing) -> None:
    pair = make_pair(framing, paired=False)
    code = PairingCode("31415926", created_at=pair.now)
    pair.cashier.allow_pairing(code, issuer)
    pair.terminal.start_pairing("31415926", pair.now, csr=CSR)
    pair.pump()  # its speed is measured in bench/link.py, not here
    [ecr_paired] = of_type(pair.cashier_events, Paired)
    [poi_paired] = of_type(pair.terminal_events, Paired)
    assert ecr_paired.key == poi_paired.key
    assert (ecr_paired.peer_id, poi_paired.peer_id) == (TERMINAL_ID, ECR_ID)
    assert poi_paired.ca_certificate == "STORE CA"
    assert pair.cashier.state is pair.terminal.state is ConnectionState.CONNECTED
    pair.cashier.login(pair.now)
    pair.pump()
    assert of_type(pair.cashier_events, LoggedIn)
    assert of_type(pair.terminal_events, LoggedIn)


def test_wrong_code_over_the_link_aborts_both_sides_and_counts_an_attempt() -> None:
    pair = make_pair(paired=False)
    code = PairingCode("31415926", created_at=pair.now)
    pair.cashier.allow_pairing(code)
    pair.terminal.start_pairing("31415927", pair.now)
    pair.pump()
    assert of_type(pair.cashier_events, PairingAborted)
    assert of_type(pair.terminal_events, PairingAborted)
    assert not of_type(pair.cashier_events + pair.terminal_events, Paired)
    assert pair.cashier.long_term_key is None and pair.terminal.long_term_key is None
    assert pair.cashier.state is pair.terminal.state is ConnectionState.CONNECTED
    assert code.failures == 1


def test_code_burnt_after_three_wrong_tries_refuses_even_the_right_code() -> None:
    pair = make_pair(paired=False)
    code = PairingCode("31415926", created_at=pair.now)
    pair.cashier.allow_pairing(code)
    for guess in ("00000000", "11111111", "22222222", "31415926"):
        pair.terminal.start_pairing(guess, pair.now)
        pair.pump()
    assert code.state(pair.now) is CodeState.BURNT
    assert len(of_type(pair.terminal_events, PairingAborted)) == 4
    assert not of_type(pair.terminal_events, Paired)
    last = of_type(pair.cashier_events, PairingAborted)[-1].error
    assert isinstance(last, PairingCodeRejected)


def test_pairing_is_refused_when_not_open() -> None:
    pair = make_pair(paired=False)
    pair.terminal.start_pairing("31415926", pair.now)
    pair.pump()
    assert of_type(pair.terminal_events, PairingAborted)
    assert pair.terminal.state is ConnectionState.CONNECTED


def test_pairing_times_out_when_the_cashier_never_answers() -> None:
    pair = make_pair(paired=False)
    pair.to_cashier = lambda data: b""
    pair.terminal.start_pairing("31415926", pair.now)
    pair.pump()
    pair.advance(pair.terminal.config.pairing_timeout + 0.1)
    assert of_type(pair.terminal_events, PairingAborted)
    assert pair.terminal.state is ConnectionState.CONNECTED
