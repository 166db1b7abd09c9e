"""Two real processes: the cashier side (this test) and ``python -m shouyin.link.peer``.

Over a pty serial cable, TCP and TLS 1.3 with mutual certificates the peer pairs with the
one-time code, logs in and answers every message category. Then: a killed peer is noticed at
once and a hung one within ``dead_after``, the cashier side redials by itself when the peer comes
back, and a frame replayed by a man in the middle is refused by the peer.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from shouyin.link import (
    Connection,
    DisplayRequest,
    LinkDead,
    PaymentKind,
    PaymentRequest,
    PeerRejected,
    Result,
    Role,
)
from shouyin.link.aio import LinkEndpoint
from shouyin.link.peer import save_key
from shouyin.link.security import LongTermKey
from shouyin.link.server import LinkServer
from shouyin.link.transport import (
    LinkAddress,
    PtyCable,
    StreamTransport,
    connect_tcp,
    listen,
    open_serial,
)

from . import (
    ECR_ID,
    FAST,
    QUICK_BACKOFF,
    TERMINAL_ID,
    TIMEOUT,
    PeerProcess,
    ecr_capabilities,
    exchange_every_category,
    fresh_code,
    make_trust,
)

T = TypeVar("T")
KEY = LongTermKey(bytes(range(100, 132)), ecr_id=ECR_ID, terminal_id=TERMINAL_ID)
PEER_TIMERS = ("--dead-after", "2.0")


def run(coroutine: Coroutine[Any, Any, T], limit: float = 30.0) -> T:
    return asyncio.run(asyncio.wait_for(coroutine, limit))


def ecr_endpoint(address: LinkAddress, key: LongTermKey | None) -> LinkEndpoint:
    """A cashier endpoint that dials ``address`` (or opens the port) and keeps the link up."""
    connection = Connection(
        Role.ECR,
        ECR_ID,
        ecr_capabilities(),
        config=FAST,
        framer_factory=address.framer_factory(),
        long_term_key=key,
    )

    async def dial() -> Any:
        if address.is_serial:
            return await open_serial(address)
        return await connect_tcp(address)

    return LinkEndpoint(connection, connector=dial, backoff=QUICK_BACKOFF)


def test_pty_serial_peer_pairs_logs_in_and_answers_every_category(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with PtyCable() as cable:
            ours = LinkAddress.parse(f"serial://{cable.paths[0]}?baud=115200")
            code = fresh_code()
            ecr = ecr_endpoint(ours, key=None)
            ecr.allow_pairing(code)
            await ecr.start()
            args = [
                "--connect",
                f"serial://{cable.paths[1]}?baud=115200",
                "--pair",
                code.digits,
                "--key-file",
                str(tmp_path / "key.json"),
                "--progress",
                *PEER_TIMERS,
            ]
            async with PeerProcess(args, tmp_path / "peer.log") as peer:
                paired = await peer.expect("paired")
                await ecr.wait_ready(TIMEOUT)
                assert ecr.connection.long_term_key is not None
                assert paired["key_id"] == ecr.connection.long_term_key.key_id
                await exchange_every_category(ecr, tag="pty")
            await ecr.close()

    run(scenario())


def test_tcp_peer_pairs_logs_in_and_answers_every_category(tmp_path: Path) -> None:
    async def scenario() -> None:
        trust = make_trust(tmp_path / "ecr")
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
            args = [
                "--connect",
                str(server.addresses[0]),
                "--pair",
                code.digits,
                "--key-file",
                str(tmp_path / "key.json"),
                *PEER_TIMERS,
            ]
            async with PeerProcess(args, tmp_path / "peer.log") as peer:
                await peer.expect("paired")
                ecr = await server.wait_ready(TERMINAL_ID, TIMEOUT)
                await exchange_every_category(ecr, tag="tcp")

    run(scenario())


def test_tls_peer_pairs_gets_a_certificate_logs_in_and_comes_back_after_a_kill(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        trust = make_trust(tmp_path / "ecr")
        server = LinkServer(
            ecr_id=ECR_ID,
            capabilities=ecr_capabilities(),
            firewall=trust.firewall,
            listen=["tls://127.0.0.1:0"],
            keys=trust.keys.get,
            keystore=trust.keystore,
            config=FAST,
            on_paired=trust.remember,
        )
        async with server:
            code = fresh_code()
            server.allow_pairing(code, trust.issuer())
            common = [
                "--connect",
                str(server.addresses[0]),
                "--keystore",
                str(tmp_path / "poi"),
                "--key-file",
                str(tmp_path / "poi" / "link.key"),
                *PEER_TIMERS,
            ]
            pairing = ["--pair", code.digits, "--ca-fingerprint", trust.keystore.ca_fingerprint()]
            peer = await PeerProcess([*common, *pairing], tmp_path / "peer.log").start()
            try:
                await peer.expect("paired")
                server.allow_pairing(None)
                ecr = await server.wait_ready(TERMINAL_ID, TIMEOUT)
                info = ecr.transport_info
                assert info is not None and info.tls_version == "TLSv1.3"
                assert trust.keystore.paired_terminal_ids() == {TERMINAL_ID}
                await exchange_every_category(ecr, tag="tls")
                loop = asyncio.get_running_loop()
                killed_at = loop.time()
                peer.kill()
                await asyncio.wait_for(ecr.wait_down(), TIMEOUT)
                assert loop.time() - killed_at < 1.0  # the kernel closed the socket: noticed now
            finally:
                await peer.stop()
            async with PeerProcess(common, tmp_path / "peer2.log") as again:
                await again.expect("logged_in")
                await ecr.wait_ready(TIMEOUT)
                response = await ecr.request(
                    DisplayRequest(service_id=ecr.new_service_id(), lines=("再次欢迎",)),
                    timeout=TIMEOUT,
                )
                assert response.result is Result.SUCCESS

    run(scenario())


def test_ecr_notices_a_killed_or_hung_peer_and_redials_when_it_comes_back(tmp_path: Path) -> None:
    key_file = tmp_path / "key.json"
    save_key(key_file, KEY)

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        args = ["--listen", "tcp://127.0.0.1:0", "--key-file", str(key_file), *PEER_TIMERS]
        peer = await PeerProcess(args, tmp_path / "peer.log").start()
        port = (await peer.expect("listening"))["port"]
        address = LinkAddress.parse(f"tcp://127.0.0.1:{port}")
        ecr = ecr_endpoint(address, KEY)
        await ecr.start()
        try:
            await ecr.wait_ready(TIMEOUT)
            # hung (SIGSTOP): only the silence tells, within dead_after
            assert peer.process is not None
            peer.process.send_signal(signal.SIGSTOP)
            stopped_at = loop.time()
            await asyncio.wait_for(ecr.wait_down(), TIMEOUT)
            assert loop.time() - stopped_at < FAST.dead_after + 3.0  # "within seconds"
            assert ecr.last_down_reason is not None and "nothing received" in ecr.last_down_reason
            peer.kill()  # killed: it will not answer again
            await peer.stop()
            await asyncio.sleep(0.3)  # the cashier side keeps redialling a closed port
            assert not ecr.is_ready
            args[1] = f"tcp://127.0.0.1:{port}"
            peer = await PeerProcess(args, tmp_path / "peer2.log").start()
            await ecr.wait_ready(TIMEOUT)
            assert ecr.sessions == 2
            assert any(isinstance(e, LinkDead) for e in ecr.pending_events())
            request = DisplayRequest(service_id=ecr.new_service_id(), lines=("back",))
            assert (await ecr.request(request, timeout=TIMEOUT)).result is Result.SUCCESS
        finally:
            await ecr.close()
            await peer.stop()

    run(scenario())


class Relay:
    """A man in the middle on loopback: forwards both ways and records what the cashier sends."""

    def __init__(self, upstream: LinkAddress) -> None:
        self.upstream = upstream
        self.from_ecr: list[bytes] = []
        self.to_peer: StreamTransport | None = None

    async def handle(self, downstream: StreamTransport, _: LinkAddress) -> None:
        upstream = await connect_tcp(self.upstream)
        self.to_peer = upstream

        async def pump(source: StreamTransport, target: StreamTransport, log: bool) -> None:
            while data := await source.read():
                if log:
                    self.from_ecr.append(data)
                target.write(data)
            target.close()

        await asyncio.gather(pump(downstream, upstream, True), pump(upstream, downstream, False))


def test_frame_replayed_by_a_man_in_the_middle_is_refused_by_the_peer(tmp_path: Path) -> None:
    key_file = tmp_path / "key.json"
    save_key(key_file, KEY)

    async def scenario() -> None:
        args = ["--listen", "tcp://127.0.0.1:0", "--key-file", str(key_file), *PEER_TIMERS]
        async with PeerProcess(args, tmp_path / "peer.log") as peer:
            port = (await peer.expect("listening"))["port"]
            relay = Relay(LinkAddress.parse(f"tcp://127.0.0.1:{port}"))
            listener = await listen([LinkAddress.parse("tcp://127.0.0.1:0")], relay.handle)
            ecr = ecr_endpoint(listener.addresses[0], KEY)
            await ecr.start()
            try:
                await ecr.wait_ready(TIMEOUT)
                request = PaymentRequest(
                    service_id=ecr.new_service_id(),
                    ecr_ref="L01-replay-1",
                    amount=4_200,
                    kind=PaymentKind.QR_CODE,
                    auth_code="281234567890123456",
                )
                mark = len(relay.from_ecr)
                assert (await ecr.request(request, timeout=TIMEOUT)).result is Result.SUCCESS
                captured = relay.from_ecr[mark]  # the sealed payment request
                assert relay.to_peer is not None
                relay.to_peer.write(captured)  # replay it
                refused = await peer.expect("refused")
                assert "replayed" in refused["reason"]
                async with asyncio.timeout(TIMEOUT):
                    while not isinstance(await ecr.next_event(), PeerRejected):
                        pass
                assert ecr.is_ready  # the session carries on
                requests = [line for line in peer.seen if line["event"] == "request"]
                assert [r["type"] for r in requests] == ["payment_request"]  # served once
            finally:
                await ecr.close()
                await listener.close()

    run(scenario())
