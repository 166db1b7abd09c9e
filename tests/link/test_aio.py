"""The asyncio driver over in-memory pipes, a pty cable, TCP and TLS: correlation, timers,
reconnection, pairing, every message category, and attacks refused by the server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import ssl
import time
import tty
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from shouyin.link import (
    Connection,
    DiagnosisRequest,
    DisplayRequest,
    DocumentKind,
    ErrorCondition,
    Event,
    EventNotification,
    FrameRefused,
    HeartbeatRequest,
    HeartbeatResponse,
    LinkConfig,
    LinkDead,
    LinkError,
    LinkTimeout,
    LongTermKey,
    MessageBase,
    MessageReceived,
    NotificationKind,
    PairingFailed,
    PaymentKind,
    PaymentRequest,
    PeerRejected,
    PrintRequest,
    ReconciliationRequest,
    ReconciliationResponse,
    Refusal,
    Request,
    Result,
    Role,
    SecurityError,
    TransactionStatusRequest,
    TransactionStatusResponse,
)
from shouyin.link.aio import LinkEndpoint, LinkLost
from shouyin.link.firewall import FirewallPolicy, RefusalReason
from shouyin.link.keystore import TerminalKeyStore
from shouyin.link.peer import Responder, peer_capabilities, serve
from shouyin.link.server import LinkServer, pair_terminal
from shouyin.link.transport import (
    AddressError,
    LinkAddress,
    MemoryTransport,
    PtyCable,
    Scheme,
    Transport,
    TransportInfo,
    connect_tcp,
    connect_tls,
    listen,
    memory_pipe,
    open_serial,
    pairing_ssl_context,
)
from tests.link.aio_helpers import (
    ECR_ID,
    FAST,
    QUICK_BACKOFF,
    TERMINAL_ID,
    TIMEOUT,
    Trust,
    ecr_capabilities,
    exchange_every_category,
    fresh_code,
    make_trust,
    now,
    wait_for_notification,
    wrong_digits,
)

T = TypeVar("T")
HANDSHAKE_REFUSED = "TLS handshake failed (PEER_DID_NOT_RETURN_A_CERTIFICATE)"
KEY = LongTermKey(bytes(range(32)), ecr_id=ECR_ID, terminal_id=TERMINAL_ID)


def run(coroutine: Coroutine[Any, Any, T], limit: float = 20.0) -> T:
    """Run a test coroutine with a hard time limit."""
    return asyncio.run(asyncio.wait_for(coroutine, limit))


def ecr_connection(
    key: LongTermKey | None = KEY, config: LinkConfig = FAST, **kw: Any
) -> Connection:
    return Connection(Role.ECR, ECR_ID, ecr_capabilities(), config=config, long_term_key=key, **kw)


def poi_connection(
    key: LongTermKey | None = KEY, config: LinkConfig = FAST, **kw: Any
) -> Connection:
    return Connection(
        Role.POI, TERMINAL_ID, peer_capabilities(), config=config, long_term_key=key, **kw
    )


def recorder(store: list[bytes]) -> Callable[[bytes], bytes]:
    """A transport tap that records what passes."""

    def tap(data: bytes) -> bytes:
        store.append(data)
        return data

    return tap


class Pair:
    """A cashier endpoint and a serving terminal endpoint over one memory pipe."""

    def __init__(
        self,
        *,
        config: LinkConfig = FAST,
        progress: bool = False,
        serve_requests: bool = True,
    ) -> None:
        self.a, self.b = memory_pipe()
        self.ecr = LinkEndpoint(ecr_connection(config=config))
        self.poi = LinkEndpoint(poi_connection(config=config))
        self.responder = Responder(progress=progress)
        self.answered: list[str] = []
        self._serving: asyncio.Task[None] | None = None
        self._serve = serve_requests

    async def __aenter__(self) -> Pair:
        self.poi.attach(self.b)
        self.ecr.attach(self.a)
        if self._serve:
            self._serving = asyncio.create_task(serve(self.poi, self.responder, self._report))
        await self.ecr.wait_ready(TIMEOUT)
        return self

    def _report(self, event: Event) -> None:
        self.answered.append(type(event).__name__)

    async def __aexit__(self, *exc: object) -> None:
        if self._serving is not None:
            self._serving.cancel()
        await self.ecr.close()
        await self.poi.close()


# -- correlation, timers, liveness (in memory) -----------------------------------------------------


def test_concurrent_requests_each_get_their_own_response() -> None:
    async def scenario() -> None:
        async with Pair() as pair:
            new = pair.ecr.new_service_id
            requests = [
                PrintRequest(service_id=new(), document=DocumentKind.RECEIPT, lines=("a",)),
                DisplayRequest(service_id=new(), lines=("b",)),
                DiagnosisRequest(service_id=new()),
            ]
            answers = await asyncio.gather(
                *(pair.ecr.request(r, timeout=TIMEOUT) for r in requests)
            )
            assert [a.service_id for a in answers] == [r.service_id for r in requests]
            assert [a.type for a in answers] == [
                "print_response",
                "display_response",
                "diagnosis_response",
            ]

    run(scenario())


def test_payment_progress_reaches_the_callback_before_the_response() -> None:
    async def scenario() -> None:
        async with Pair(progress=True) as pair:
            seen: list[str] = []
            request = PaymentRequest(
                service_id=pair.ecr.new_service_id(),
                ecr_ref="R1",
                amount=100,
                kind=PaymentKind.CARD,
            )
            response = await pair.ecr.request(
                request, on_progress=lambda p: seen.append(p.stage.value), timeout=TIMEOUT
            )
            seen.append(response.type)
            assert seen == ["insert_card", "pin_entry", "contacting_acquirer", "payment_response"]
            await wait_for_notification(pair.ecr, NotificationKind.CARD_REMOVED)

    run(scenario())


def test_unanswered_request_fails_with_link_timeout_at_the_connection_deadline() -> None:
    config = LinkConfig(request_timeout=0.3, heartbeat_interval=5, dead_after=10)

    async def scenario() -> None:
        async with Pair(config=config, serve_requests=False) as pair:
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(LinkTimeout, match="no_response"):
                await pair.ecr.request(DiagnosisRequest(service_id=pair.ecr.new_service_id()))
            assert 0.25 <= loop.time() - started < TIMEOUT  # not early; speed is a bench matter

    run(scenario())


def test_pending_request_fails_with_link_lost_when_the_transport_closes() -> None:
    async def scenario() -> None:
        async with Pair(serve_requests=False) as pair:
            request = PaymentRequest(
                service_id=pair.ecr.new_service_id(), ecr_ref="R9", amount=1, kind=PaymentKind.CARD
            )
            pending = asyncio.create_task(pair.ecr.request(request))
            await asyncio.sleep(0.05)
            pair.b.close()
            with pytest.raises(LinkLost) as lost:
                await pending
            assert lost.value.request == request

    run(scenario())


def test_silent_peer_is_declared_dead_within_dead_after() -> None:
    async def scenario() -> None:
        async with Pair() as pair:
            loop = asyncio.get_running_loop()
            pair.b.tap = lambda data: b""  # the terminal goes quiet (a pulled cable)
            started = loop.time()
            while True:
                event = await pair.ecr.next_event(TIMEOUT)
                if isinstance(event, LinkDead):
                    break
            elapsed = loop.time() - started
            assert FAST.dead_after - 0.1 <= elapsed < TIMEOUT
            assert "nothing received" in event.reason

    run(scenario())


def test_explicit_heartbeat_returns_the_terminal_health() -> None:
    async def scenario() -> None:
        async with Pair() as pair:
            pair.poi.connection.health = None
            answer = await pair.ecr.request(
                HeartbeatRequest(service_id=pair.ecr.new_service_id()), timeout=TIMEOUT
            )
            assert isinstance(answer, HeartbeatResponse)
            assert answer.health is not None and answer.health.link is not None

    run(scenario())


def test_idle_link_stays_up_on_heartbeats() -> None:
    async def scenario() -> None:
        async with Pair() as pair:
            await asyncio.sleep(FAST.dead_after * 2)
            assert pair.ecr.is_ready and pair.poi.is_ready
            assert not any(isinstance(e, LinkDead) for e in pair.ecr.pending_events())

    run(scenario())


def test_event_queue_keeps_the_newest_events_when_nobody_reads() -> None:
    async def scenario() -> None:
        a, b = memory_pipe()
        ecr = LinkEndpoint(ecr_connection(), max_queued_events=2)
        poi = LinkEndpoint(poi_connection())
        poi.attach(b)
        ecr.attach(a)
        await ecr.wait_ready(TIMEOUT)
        received_before = ecr.connection.framing_stats.frames_received
        for kind in (
            NotificationKind.PAPER_LOW,
            NotificationKind.PAPER_OUT,
            NotificationKind.PAPER_OK,
        ):
            poi.send(EventNotification(event=kind))

        # Wait (bounded) until the last notification was queued, then read the queue once.
        deadline = asyncio.get_running_loop().time() + TIMEOUT
        while ecr.connection.framing_stats.frames_received < received_before + 3:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)
        kinds = [
            e.message.event
            for e in ecr.pending_events()
            if isinstance(e, MessageReceived) and isinstance(e.message, EventNotification)
        ]
        assert kinds == [NotificationKind.PAPER_OUT, NotificationKind.PAPER_OK]
        await ecr.close()
        await poi.close()

    run(scenario())


def test_replayed_frame_is_refused_and_the_request_is_not_served_twice() -> None:
    async def scenario() -> None:
        async with Pair() as pair:
            captured: list[bytes] = []
            pair.a.tap = recorder(captured)
            request = PaymentRequest(
                service_id=pair.ecr.new_service_id(), ecr_ref="R7", amount=9, kind=PaymentKind.CARD
            )
            await pair.ecr.request(request, timeout=TIMEOUT)
            frame = next(data for data in captured if len(data) > 100)
            pair.b.inject(frame)  # the attacker replays the captured payment frame
            async with asyncio.timeout(TIMEOUT):
                while True:
                    event = await pair.ecr.next_event()
                    if isinstance(event, PeerRejected):
                        break
            assert pair.answered.count("MessageReceived") == 1
            assert pair.poi.connection.refusals == 1
            assert pair.ecr.is_ready  # the session survives the attack

    run(scenario())


def test_refused_replay_is_reported_as_a_replay_on_the_terminal() -> None:
    async def scenario() -> None:
        async with Pair(serve_requests=False) as pair:
            captured: list[bytes] = []
            pair.a.tap = recorder(captured)
            pair.ecr.send(_display(pair.ecr))
            await asyncio.sleep(0.05)
            pair.b.inject(captured[-1])
            async with asyncio.timeout(TIMEOUT):
                while True:
                    event = await pair.poi.next_event()
                    if isinstance(event, FrameRefused):
                        break
            assert isinstance(event.error, SecurityError)
            assert event.error.refusal is Refusal.REPLAYED

    run(scenario())


def _display(ecr: LinkEndpoint) -> DisplayRequest:
    return DisplayRequest(service_id=ecr.new_service_id(), lines=("x",))


# -- reconnection ----------------------------------------------------------------------------------


def test_endpoint_redials_with_backoff_and_logs_in_again_by_itself() -> None:
    async def scenario() -> None:
        poi = LinkEndpoint(poi_connection())
        serving = asyncio.create_task(serve(poi, Responder()))
        dials: list[float] = []
        loop = asyncio.get_running_loop()
        ends: list[MemoryTransport] = []

        async def connector() -> Transport:
            dials.append(loop.time())
            if len(dials) <= 2:
                raise ConnectionRefusedError("terminal not there yet")
            a, b = memory_pipe()
            poi.attach(b)
            ends.append(b)
            return a

        ecr = LinkEndpoint(
            ecr_connection(),
            connector=connector,
            backoff=QUICK_BACKOFF,
            random=random.Random(1).random,
        )
        await ecr.start()
        await ecr.wait_ready(TIMEOUT)
        assert len(dials) == 3 and ecr.sessions == 1
        ends[-1].close()  # the terminal's side of the connection drops
        await asyncio.sleep(0.01)
        await ecr.wait_ready(TIMEOUT)
        assert len(dials) == 4 and ecr.sessions == 2
        response = await ecr.request(_display(ecr), timeout=TIMEOUT)
        assert response.result.value == "success"
        serving.cancel()
        await ecr.close()
        await poi.close()

    run(scenario())


# -- real transports: pty cable, TCP, TLS ----------------------------------------------------------


async def _serve(poi: LinkEndpoint, progress: bool = True) -> asyncio.Task[None]:
    return asyncio.create_task(serve(poi, Responder(progress=progress)))


def test_pty_cable_pairs_logs_in_and_exchanges_every_category() -> None:
    async def scenario() -> None:
        async with PtyCable() as cable:
            ecr_address = LinkAddress.parse(f"serial://{cable.paths[0]}?baud=115200")
            poi_address = LinkAddress.parse(f"serial://{cable.paths[1]}?baud=115200")
            code = fresh_code()
            ecr = LinkEndpoint(
                ecr_connection(key=None, framer_factory=ecr_address.framer_factory()),
                connector=lambda: open_serial(ecr_address),
                backoff=QUICK_BACKOFF,
            )
            ecr.allow_pairing(code)
            await ecr.start()
            poi = LinkEndpoint(
                poi_connection(key=None, framer_factory=poi_address.framer_factory()),
                connector=lambda: open_serial(poi_address),
                backoff=QUICK_BACKOFF,
            )
            serving = await _serve(poi)
            poi.attach(await open_serial(poi_address))
            paired = await poi.pair(code.digits, timeout=TIMEOUT)
            assert paired.peer_id == ECR_ID and paired.certificate is None
            await poi.start()
            peer = await ecr.wait_ready(TIMEOUT)
            assert peer.peer_id == TERMINAL_ID
            assert ecr.connection.long_term_key == paired.key
            info = ecr.transport_info
            assert info is not None and info.baud == 115200 and info.peer == cable.paths[0]
            await exchange_every_category(ecr, tag="pty")
            assert ecr.connection.framing_stats.crc_errors == 0
            serving.cancel()
            await ecr.close()
            await poi.close()

    run(scenario())


class MasterSide:
    """The master end of a pty pair as a transport (a test stand-in for the far device)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.chunks: asyncio.Queue[bytes] = asyncio.Queue()
        self._info = TransportInfo(Scheme.SERIAL, "pty master", "pty master", baud=115200)
        os.set_blocking(fd, False)
        asyncio.get_running_loop().add_reader(fd, self._readable)

    @property
    def info(self) -> TransportInfo:
        return self._info

    def _readable(self) -> None:
        with contextlib.suppress(BlockingIOError):
            self.chunks.put_nowait(os.read(self.fd, 4096))

    async def read(self) -> bytes:
        return await self.chunks.get()

    def write(self, data: bytes) -> None:
        while data:
            try:
                data = data[os.write(self.fd, data) :]
            except BlockingIOError:
                time.sleep(0.001)

    async def drain(self) -> None:
        pass

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.fd)
        self.chunks.put_nowait(b"")

    async def wait_closed(self) -> None:
        pass


def test_pty_pair_pairs_logs_in_and_exchanges_every_category() -> None:
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)

    async def scenario() -> None:
        address = LinkAddress.parse(f"serial://{os.ttyname(slave)}?baud=115200")
        code = fresh_code()
        ecr = LinkEndpoint(
            ecr_connection(key=None, framer_factory=address.framer_factory()),
            connector=lambda: open_serial(address),
        )
        ecr.allow_pairing(code)
        await ecr.start()
        poi = LinkEndpoint(poi_connection(key=None, framer_factory=address.framer_factory()))
        serving = await _serve(poi)
        far = MasterSide(master)
        poi.attach(far)
        paired = await poi.pair(code.digits, timeout=TIMEOUT)
        await ecr.wait_ready(TIMEOUT)
        assert ecr.connection.long_term_key == paired.key
        await exchange_every_category(ecr, tag="pty-pair")
        serving.cancel()
        await ecr.close()
        await poi.close()

    try:
        run(scenario())
    finally:
        os.close(master)
        os.close(slave)


def test_tcp_server_pairs_logs_in_and_exchanges_every_category(tmp_path: Path) -> None:
    async def scenario() -> None:
        trust = make_trust(tmp_path)
        server = LinkServer(
            ecr_id=ECR_ID,
            capabilities=ecr_capabilities(),
            firewall=trust.firewall,
            listen=["tcp://127.0.0.1:0"],
            keys=trust.keys.get,
            plain_terminal_id=TERMINAL_ID,
            config=FAST,
            on_paired=trust.remember,
        )
        async with server:
            code = fresh_code()
            server.allow_pairing(code)
            address = server.addresses[0]
            poi = LinkEndpoint(
                poi_connection(key=None),
                connector=lambda: connect_tcp(address),
                backoff=QUICK_BACKOFF,
            )
            serving = await _serve(poi)
            poi.attach(await connect_tcp(address))
            paired = await poi.pair(code.digits, timeout=TIMEOUT)
            assert trust.keys[TERMINAL_ID] == paired.key
            await poi.start()
            ecr = await server.wait_ready(TERMINAL_ID, TIMEOUT)
            await exchange_every_category(ecr, tag="tcp")
            serving.cancel()
            await poi.close()

    run(scenario())


def tls_server(trust: Trust, policy_listen: str = "tls://127.0.0.1:0") -> LinkServer:
    return LinkServer(
        ecr_id=ECR_ID,
        capabilities=ecr_capabilities(),
        firewall=trust.firewall,
        listen=[policy_listen],
        keys=trust.keys.get,
        keystore=trust.keystore,
        config=FAST,
        on_paired=trust.remember,
    )


async def pair_over_tls(
    server: LinkServer, trust: Trust, directory: Path, terminal_id: str = TERMINAL_ID
) -> tuple[TerminalKeyStore, LongTermKey]:
    """Pair a terminal through the server (SPAKE2 + certificate), as an admin would."""
    code = fresh_code()
    server.allow_pairing(code, trust.issuer())
    terminal = TerminalKeyStore(directory)
    transport = await connect_tls(server.addresses[0], pairing_ssl_context())
    assert transport.info.peer_certificate is not None  # the server's, unverified while pairing
    paired = await pair_terminal(
        transport,
        terminal_id=terminal_id,
        capabilities=peer_capabilities(),
        code=code.digits,
        csr=terminal.make_csr(terminal_id),
        timeout=TIMEOUT,
    )
    assert paired.certificate is not None and paired.ca_certificate is not None
    terminal.install(
        paired.certificate,
        paired.ca_certificate,
        now(),
        expected_ca_fingerprint=trust.keystore.ca_fingerprint(),
    )
    server.allow_pairing(None)
    return terminal, paired.key


def tls_terminal(server: LinkServer, terminal: TerminalKeyStore, key: LongTermKey) -> LinkEndpoint:
    address = server.addresses[0]
    context = terminal.ssl_client_context("127.0.0.1")
    return LinkEndpoint(
        poi_connection(key=key),
        connector=lambda: connect_tls(address, context),
        backoff=QUICK_BACKOFF,
    )


def test_tls_server_pairs_issues_a_certificate_logs_in_and_exchanges_every_category(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        trust = make_trust(tmp_path / "ecr")
        async with tls_server(trust) as server:
            terminal, key = await pair_over_tls(server, trust, tmp_path / "poi")
            assert trust.keystore.paired_terminal_ids() == {TERMINAL_ID}
            poi = tls_terminal(server, terminal, key)
            serving = await _serve(poi)
            await poi.start()
            ecr = await server.wait_ready(TERMINAL_ID, TIMEOUT)
            info = ecr.transport_info
            assert info is not None and info.tls_version == "TLSv1.3" and info.cipher
            assert info.peer_certificate is not None
            assert trust.keystore.authenticate_peer(info.peer_certificate, now()) == TERMINAL_ID
            await exchange_every_category(ecr, tag="tls")
            serving.cancel()
            await poi.close()

    run(scenario())


def test_ecr_redials_a_listening_terminal_that_comes_back() -> None:
    async def scenario() -> None:
        poi = LinkEndpoint(poi_connection())
        serving = await _serve(poi, progress=False)

        async def accepted(transport: Transport, _: LinkAddress) -> None:
            poi.attach(transport)

        listener = await listen([LinkAddress.parse("tcp://127.0.0.1:0")], accepted)
        address = listener.addresses[0]
        ecr = LinkEndpoint(
            ecr_connection(), connector=lambda: connect_tcp(address), backoff=QUICK_BACKOFF
        )
        await ecr.start()
        await ecr.wait_ready(TIMEOUT)
        await listener.close()
        poi.drop("terminal switched off")
        await asyncio.wait_for(ecr.wait_down(), TIMEOUT)
        await asyncio.sleep(0.3)  # a few failed redials
        assert not ecr.is_ready
        listener = await listen([address], accepted)
        await ecr.wait_ready(TIMEOUT)
        assert ecr.sessions == 2
        await ecr.request(_display(ecr), timeout=TIMEOUT)
        serving.cancel()
        await ecr.close()
        await poi.close()
        await listener.close()

    run(scenario())


# -- attacks refused over real sockets -------------------------------------------------------------


async def _refused(server: LinkServer, reason: str, before: int = 0) -> None:
    async with asyncio.timeout(TIMEOUT):
        while server.refusals[reason] <= before:
            await asyncio.sleep(0.01)


async def _is_closed(transport: Transport) -> bool:
    try:
        return await asyncio.wait_for(transport.read(), TIMEOUT) == b""
    except (OSError, ssl.SSLError):
        return True


def test_stranger_without_a_client_certificate_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        trust = make_trust(tmp_path)
        async with tls_server(trust) as server:
            try:
                transport = await connect_tls(server.addresses[0], pairing_ssl_context())
            except (OSError, ssl.SSLError):
                pass  # refused during the handshake
            else:
                assert await _is_closed(transport)
            await _refused(server, HANDSHAKE_REFUSED)
            assert not server.endpoints

    with caplog.at_level(logging.WARNING, logger="shouyin.link.server"):
        run(scenario())
    assert "refused 127.0.0.1: TLS handshake failed" in caplog.text


def test_certificate_from_another_store_is_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        trust = make_trust(tmp_path / "ours")
        other = make_trust(tmp_path / "theirs")
        async with tls_server(trust) as server, tls_server(other) as elsewhere:
            terminal, _ = await pair_over_tls(elsewhere, other, tmp_path / "poi")
            try:
                transport = await connect_tls(
                    server.addresses[0], terminal.ssl_client_context(None)
                )
            except (OSError, ssl.SSLError):
                pass  # the terminal pins its own store CA: it refuses our server first
            else:
                assert await _is_closed(transport)
            assert not server.endpoints

    run(scenario())


def test_revoked_terminal_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        trust = make_trust(tmp_path / "ecr")
        async with tls_server(trust) as server:
            terminal, _ = await pair_over_tls(server, trust, tmp_path / "poi")
            assert trust.keystore.revoke_terminal(TERMINAL_ID, now(), "stolen")
            transport = await connect_tls(server.addresses[0], terminal.ssl_client_context(None))
            assert await _is_closed(transport)
            await _refused(server, "certificate refused (revoked)")
            assert TERMINAL_ID not in server.endpoints

    with caplog.at_level(logging.WARNING):
        run(scenario())
    assert "certificate refused (revoked)" in caplog.text


def test_terminal_certificate_without_a_pairing_key_is_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        trust = make_trust(tmp_path / "ecr")
        async with tls_server(trust) as server:
            terminal, _ = await pair_over_tls(server, trust, tmp_path / "poi")
            trust.keys.clear()  # the key was lost: the certificate alone does not let it in
            transport = await connect_tls(server.addresses[0], terminal.ssl_client_context(None))
            assert await _is_closed(transport)
            await _refused(server, f"terminal {TERMINAL_ID!r} has no pairing key")

    run(scenario())


def test_source_outside_the_allowed_networks_is_refused_before_tls(tmp_path: Path) -> None:
    policy = FirewallPolicy(allowed_networks=("127.0.0.1/32",))

    async def scenario() -> None:
        trust = make_trust(tmp_path, policy)
        async with tls_server(trust) as server:
            address = LinkAddress.parse(f"tcp://127.0.0.1:{server.addresses[0].port}")
            transport = await connect_tcp(address, local_host="127.0.0.2")
            assert await _is_closed(transport)  # closed without a single handshake byte
            await _refused(server, "firewall: not_in_allowlist")
            assert trust.firewall.refusals[RefusalReason.NOT_IN_ALLOWLIST] == 1

    run(scenario())


def test_wrong_pairing_code_is_refused_and_the_code_burns_after_three_tries(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        trust = make_trust(tmp_path)
        async with tls_server(trust) as server:
            code = fresh_code()
            server.allow_pairing(code, trust.issuer())
            for attempt in range(3):
                transport = await connect_tls(server.addresses[0], pairing_ssl_context())
                with pytest.raises(PairingFailed):
                    await pair_terminal(
                        transport,
                        terminal_id=TERMINAL_ID,
                        capabilities=peer_capabilities(),
                        code=wrong_digits(code),
                        timeout=TIMEOUT,
                    )
                assert code.failures == attempt + 1
            # burnt: even the right code is refused, and certificate-less clients are again
            # refused during the TLS handshake
            with pytest.raises((LinkError, OSError)):
                transport = await connect_tls(server.addresses[0], pairing_ssl_context())
                await pair_terminal(
                    transport,
                    terminal_id=TERMINAL_ID,
                    capabilities=peer_capabilities(),
                    code=code.digits,
                    timeout=TIMEOUT,
                )
            await _refused(server, HANDSHAKE_REFUSED)
            assert code.state(asyncio.get_running_loop().time()).value == "burnt"
            assert not trust.keys and not trust.keystore.paired_terminal_ids()

    run(scenario())


def test_repeated_failures_lock_the_source_out(tmp_path: Path) -> None:
    policy = FirewallPolicy(max_failures=2)

    async def scenario() -> None:
        trust = make_trust(tmp_path, policy)
        async with tls_server(trust) as server:
            for _ in range(2):
                try:
                    transport = await connect_tls(server.addresses[0], pairing_ssl_context())
                    await _is_closed(transport)
                except (OSError, ssl.SSLError):
                    pass
            await _refused(server, HANDSHAKE_REFUSED, 1)
            address = LinkAddress.parse(f"tcp://127.0.0.1:{server.addresses[0].port}")
            transport = await connect_tcp(address)
            assert await _is_closed(transport)
            await _refused(server, "firewall: locked_out")

    run(scenario())


def test_pairing_over_a_link_that_dies_fails_cleanly() -> None:
    async def scenario() -> None:
        a, b = memory_pipe()
        ecr = LinkEndpoint(ecr_connection(key=None))
        ecr.allow_pairing(fresh_code())
        ecr.attach(a)
        a.tap = lambda data: b""  # the cashier side never answers
        b.close()
        with pytest.raises(LinkError):
            await pair_terminal(
                b, terminal_id=TERMINAL_ID, capabilities=peer_capabilities(), code="12345678"
            )
        await ecr.close()

    run(scenario())


def test_plain_tcp_newcomer_cannot_cut_a_live_session(tmp_path: Path) -> None:
    async def scenario() -> None:
        trust = make_trust(tmp_path)
        trust.keys[TERMINAL_ID] = KEY
        server = LinkServer(
            ecr_id=ECR_ID,
            capabilities=ecr_capabilities(),
            firewall=trust.firewall,
            listen=["tcp://127.0.0.1:0"],
            keys=trust.keys.get,
            plain_terminal_id=TERMINAL_ID,
            config=FAST,
        )
        async with server:
            address = server.addresses[0]
            poi = LinkEndpoint(poi_connection(), connector=lambda: connect_tcp(address))
            serving = await _serve(poi, progress=False)
            await poi.start()
            ecr = await server.wait_ready(TERMINAL_ID, TIMEOUT)
            intruder = await connect_tcp(address)
            assert await _is_closed(intruder)
            await _refused(server, f"terminal {TERMINAL_ID!r} is already connected")
            assert ecr.is_ready and ecr.sessions == 1
            serving.cancel()
            await poi.close()

    run(scenario())


def test_server_binds_only_the_firewall_policy_addresses(tmp_path: Path) -> None:
    trust = make_trust(tmp_path, FirewallPolicy(listen_addresses=("127.0.0.1",)))
    server = tls_server(trust, "tls://127.0.0.2:0")
    with pytest.raises(AddressError):
        run(server.start())


def test_failing_request_handler_answers_unavailable_service() -> None:
    def broken(request: Request) -> list[MessageBase]:
        raise RuntimeError("bug in the terminal application")

    async def scenario() -> None:
        a, b = memory_pipe()
        ecr = LinkEndpoint(ecr_connection())
        poi = LinkEndpoint(poi_connection(), on_request=broken)
        poi.attach(b)
        ecr.attach(a)
        await ecr.wait_ready(TIMEOUT)
        answer = await ecr.request(_display(ecr), timeout=TIMEOUT)
        assert answer.result is Result.FAILURE
        assert answer.error_condition is ErrorCondition.UNAVAILABLE_SERVICE
        await ecr.close()
        await poi.close()

    run(scenario())


def test_responder_remembers_transactions_for_status_queries_and_settlement() -> None:
    responder = Responder()
    payment = PaymentRequest(service_id="E1", ecr_ref="R1", amount=500, kind=PaymentKind.CARD)
    answers = responder.answer(payment)
    assert [m.type for m in answers] == ["payment_response", "event_notification"]
    unknown = responder.answer(TransactionStatusRequest(service_id="E2", ecr_ref="nope"))[0]
    assert isinstance(unknown, TransactionStatusResponse)
    assert unknown.result is Result.FAILURE and unknown.error_condition is ErrorCondition.NOT_FOUND
    settled = responder.answer(ReconciliationRequest(service_id="E3"))[0]
    assert isinstance(settled, ReconciliationResponse)
    assert settled.totals[0].count == 1 and settled.totals[0].amount == 500
    known = responder.answer(TransactionStatusRequest(service_id="E4", ecr_ref="R1"))[0]
    assert isinstance(known, TransactionStatusResponse)
    assert known.error_condition is ErrorCondition.NOT_FOUND  # the batch was closed
