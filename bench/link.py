"""Terminal link: TLS round trip against a bare TLS echo, paced serial lines, connect and pairing.

Everything runs in one process on loopback: the cashier side is a :class:`LinkServer` (TLS 1.3,
mutual certificates, firewall on), the terminal a :class:`LinkEndpoint` that answers each request
at once with a prepared response (no simulated card reading: this measures the link, not a
terminal). The bare echo uses the same TLS contexts and the same transport class, so the ratio is
the cost of framing, envelope, codec, session and driver over plain TLS bytes. Serial runs over a
:class:`PtyCable` paced like a real 8N1 line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.common import Figure, percentile
from shouyin.link import (
    AcquirerData,
    Capabilities,
    CardEntry,
    Connection,
    LongTermKey,
    MessageBase,
    PairingCode,
    PaymentKind,
    PaymentRequest,
    PaymentResponse,
    Request,
    Result,
    Role,
    encode,
)
from shouyin.link.aio import LinkEndpoint
from shouyin.link.firewall import Firewall, FirewallPolicy
from shouyin.link.keystore import KeyStore, TerminalKeyStore
from shouyin.link.peer import peer_capabilities
from shouyin.link.server import LinkServer, pair_terminal
from shouyin.link.transport import (
    LinkAddress,
    PtyCable,
    StreamTransport,
    connect_tls,
    listen,
    open_serial,
    pairing_ssl_context,
)

SECTION = "link"
ECR_ID = "lane-01"
TERMINAL_ID = "T0001"
ROUND_TRIPS = 3000
BLOCK = 100
CONNECTS = 20
PAIRINGS = 10
SERIAL_EXCHANGES = {9600: 4, 115200: 20}
TIMEOUT = 10.0
MS = 1000.0

PAYMENT = PaymentRequest(
    service_id="E0",
    ecr_ref="L01-20250314-000123",
    amount=12_345,
    kind=PaymentKind.CARD,
    operator_id="cashier-07",
    description="Sale 000123 lane 01",
)
APPROVAL = PaymentResponse(
    service_id="E0",
    ecr_ref="L01-20250314-000123",
    result=Result.SUCCESS,
    amount=12_345,
    kind=PaymentKind.CARD,
    acquirer=AcquirerData(
        rrn="407312345678",
        trace="000123",
        batch="000045",
        auth_code="A1B2C3",
        masked_pan="622848******1234",
        card_brand="UnionPay",
        entry=CardEntry.CHIP,
        merchant_id="898310048161234",
        acquirer_terminal_id="12345678",
        transaction_time=datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC),
    ),
)
"""A typical card payment and its approval (the same sizes as the link tests' samples)."""


def _answer_at_once(request: Request) -> list[MessageBase]:
    return [APPROVAL.model_copy(update={"service_id": request.service_id})]


def _payment(endpoint: LinkEndpoint) -> PaymentRequest:
    return PAYMENT.model_copy(update={"service_id": endpoint.new_service_id()})


def _capabilities() -> Capabilities:
    return Capabilities(printer=True, display=True, max_frame_size=8192, firmware="bench")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Connections closed on purpose log warnings; keep the bench table readable."""
    log = logging.getLogger("shouyin.link")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


@dataclass
class _Store:
    """The cashier side's server and one paired terminal's material."""

    server: LinkServer
    keystore: KeyStore
    terminal: TerminalKeyStore
    keys: dict[str, LongTermKey]
    pairing_s: list[float]

    @property
    def address(self) -> LinkAddress:
        return self.server.addresses[0]

    def terminal_endpoint(self) -> LinkEndpoint:
        context = self.terminal.ssl_client_context("127.0.0.1")
        address = self.address
        connection = Connection(
            Role.POI, TERMINAL_ID, peer_capabilities(), long_term_key=self.keys[TERMINAL_ID]
        )
        return LinkEndpoint(
            connection,
            connector=lambda: connect_tls(address, context),
            on_request=_answer_at_once,
        )


async def _pair(store: _Store, directory: Path) -> float:
    """Pair the terminal through the server once; return the seconds it took."""
    code = PairingCode.generate(time.monotonic())
    store.server.allow_pairing(code, store.keystore.certificate_issuer(lambda: datetime.now(UTC)))
    terminal = TerminalKeyStore(directory)
    csr = terminal.make_csr(TERMINAL_ID)  # made before the clock starts: key generation
    start = time.perf_counter()
    transport = await connect_tls(store.address, pairing_ssl_context())
    paired = await pair_terminal(
        transport,
        terminal_id=TERMINAL_ID,
        capabilities=peer_capabilities(),
        code=code.digits,
        csr=csr,
        timeout=TIMEOUT,
    )
    elapsed = time.perf_counter() - start
    store.server.allow_pairing(None)
    if paired.certificate is None or paired.ca_certificate is None:
        raise RuntimeError("pairing brought back no certificate")
    terminal.install(paired.certificate, paired.ca_certificate, datetime.now(UTC))
    store.terminal = terminal
    return elapsed


async def _open_store(workdir: Path) -> _Store:
    keystore = KeyStore(workdir / "ecr")
    keystore.init("bench", ["127.0.0.1"], datetime.now(UTC))
    keys: dict[str, LongTermKey] = {}
    firewall = Firewall(FirewallPolicy(max_attempts=10_000))
    server = LinkServer(
        ecr_id=ECR_ID,
        capabilities=_capabilities(),
        firewall=firewall,
        listen=["tls://127.0.0.1:0"],
        keys=keys.get,
        keystore=keystore,
        on_paired=lambda event: keys.__setitem__(event.peer_id, event.key),
    )
    await server.start()
    store = _Store(server, keystore, TerminalKeyStore(workdir / "unused"), keys, [])
    for attempt in range(PAIRINGS):
        store.pairing_s.append(await _pair(store, workdir / f"poi{attempt}"))
    return store


RoundTrip = Callable[[], Awaitable[None]]


@contextlib.asynccontextmanager
async def _link_round_trip(store: _Store) -> AsyncIterator[RoundTrip]:
    """One payment request answered at once by the terminal, through the whole stack."""
    terminal = store.terminal_endpoint()
    await terminal.start()
    ecr = await store.server.wait_ready(TERMINAL_ID, TIMEOUT)

    async def payment() -> None:
        response = await ecr.request(_payment(ecr), timeout=TIMEOUT)
        if response.result is not Result.SUCCESS:
            raise RuntimeError(f"payment failed: {response}")

    try:
        yield payment
    finally:
        await terminal.close()


@contextlib.asynccontextmanager
async def _echo_round_trip(store: _Store) -> AsyncIterator[RoundTrip]:
    """The same bytes over the same TLS contexts and transport class, echoed by a bare task."""
    request = bytes(4 + len(encode(PAYMENT)) + 30)  # stream frame + envelope
    answer = bytes(4 + len(encode(APPROVAL)) + 30)
    context = store.keystore.ssl_server_context()
    accepted: asyncio.Queue[StreamTransport] = asyncio.Queue()

    async def handler(transport: StreamTransport, _: LinkAddress) -> None:
        await transport.start_tls(context, timeout=TIMEOUT)
        await accepted.put(transport)

    async def echo(transport: StreamTransport) -> None:
        pending = 0
        while data := await transport.read():
            pending += len(data)
            while pending >= len(request):
                pending -= len(request)
                transport.write(answer)

    listener = await listen([LinkAddress.parse("tls://127.0.0.1:0")], handler)
    client = await connect_tls(
        listener.addresses[0], store.terminal.ssl_client_context("127.0.0.1")
    )
    echoing = asyncio.create_task(echo(client))
    server = await asyncio.wait_for(accepted.get(), TIMEOUT)

    async def exchange() -> None:
        server.write(request)
        received = 0
        while received < len(answer):
            received += len(await server.read())

    try:
        yield exchange
    finally:
        echoing.cancel()
        client.close()
        server.close()
        await listener.close()


async def _interleaved(store: _Store, count: int) -> tuple[list[float], list[float]]:
    """Link and echo round trips in alternating blocks, so that a noisy moment on the machine
    hits both alike; the first block of each is a warm-up."""
    link: list[float] = []
    echo: list[float] = []
    clock = time.perf_counter
    async with _link_round_trip(store) as payment, _echo_round_trip(store) as exchange:
        for block in range(count // BLOCK + 1):
            for call, samples in ((payment, link), (exchange, echo)):
                for _ in range(BLOCK):
                    start = clock()
                    await call()
                    if block:
                        samples.append(clock() - start)
    return link, echo


async def _connect_and_login(store: _Store) -> list[float]:
    samples: list[float] = []
    for _ in range(CONNECTS):
        terminal = store.terminal_endpoint()
        start = time.perf_counter()
        await terminal.start()
        await terminal.wait_ready(TIMEOUT)
        samples.append(time.perf_counter() - start)
        await terminal.close()
        ecr = store.server.endpoints[TERMINAL_ID]
        await asyncio.wait_for(ecr.wait_down(), TIMEOUT)
    return samples


@dataclass(frozen=True)
class _SerialResult:
    baud: int
    wire_bytes: float
    json_bytes: float
    seconds: float


async def _serial(baud: int, exchanges: int) -> _SerialResult:
    key = LongTermKey(bytes(range(32)), ecr_id=ECR_ID, terminal_id=TERMINAL_ID)
    async with PtyCable(baud=baud) as cable:
        ours = LinkAddress.parse(f"serial://{cable.paths[0]}?baud={baud}")
        theirs = LinkAddress.parse(f"serial://{cable.paths[1]}?baud={baud}")
        ecr = LinkEndpoint(
            Connection(
                Role.ECR,
                ECR_ID,
                _capabilities(),
                framer_factory=ours.framer_factory(),
                long_term_key=key,
            )
        )
        terminal = LinkEndpoint(
            Connection(
                Role.POI,
                TERMINAL_ID,
                peer_capabilities(),
                framer_factory=theirs.framer_factory(),
                long_term_key=key,
            ),
            on_request=_answer_at_once,
        )
        terminal.attach(await open_serial(theirs))
        ecr.attach(await open_serial(ours))
        await ecr.wait_ready(TIMEOUT * 2)
        await asyncio.sleep(0.2)  # let the last login ACK cross the line
        stats = ecr.connection.framing_stats
        before = stats.bytes_sent + stats.bytes_received
        json_bytes = 0
        start = time.perf_counter()
        for _ in range(exchanges):
            request = _payment(ecr)
            response = await ecr.request(request, timeout=TIMEOUT * 2)
            json_bytes += len(encode(request)) + len(encode(response))
        seconds = (time.perf_counter() - start) / exchanges
        await asyncio.sleep(30 / baud + 0.05)  # the last ACK
        stats = ecr.connection.framing_stats
        wire = stats.bytes_sent + stats.bytes_received - before
        await ecr.close()
        await terminal.close()
    return _SerialResult(baud, wire / exchanges, json_bytes / exchanges, seconds)


async def _run(workdir: Path, round_trips: int) -> list[Figure]:
    store = await _open_store(workdir)
    try:
        link, echo = await _interleaved(store, round_trips)
        connects = await _connect_and_login(store)
    finally:
        await store.server.close()
    serial = [await _serial(baud, count) for baud, count in SERIAL_EXCHANGES.items()]

    link_p50, link_p99 = percentile(link, 50) * MS, percentile(link, 99) * MS
    echo_p50, echo_p99 = percentile(echo, 50) * MS, percentile(echo, 99) * MS
    ratio = link_p99 / echo_p99
    connect_p50, connect_max = percentile(connects, 50) * MS, max(connects) * MS
    pairing_p50, pairing_max = percentile(store.pairing_s, 50), max(store.pairing_s)
    figures = [
        Figure(SECTION, "TLS payment round trip p50", link_p50, "ms"),
        Figure(SECTION, "TLS payment round trip p99", link_p99, "ms", "< 2 ms", link_p99 < 2),
        Figure(SECTION, "bare TLS echo p50", echo_p50, "ms"),
        Figure(SECTION, "bare TLS echo p99", echo_p99, "ms"),
        Figure(SECTION, "latency added to TLS p50", link_p50 - echo_p50, "ms"),
        Figure(SECTION, "round trip p50 / echo p50", link_p50 / echo_p50, "x"),
        Figure(SECTION, "round trip p99 / echo p99", ratio, "x", "<= 1.5x", ratio <= 1.5),
        Figure(SECTION, "connect + TLS + login p50", connect_p50, "ms"),
        Figure(
            SECTION,
            "connect + TLS + login max",
            connect_max,
            "ms",
            "< 100 ms",
            connect_max < 100,
        ),
        Figure(SECTION, "pairing (SPAKE2 + certificate) p50", pairing_p50, "s"),
        Figure(SECTION, "pairing max", pairing_max, "s", "< 1 s", pairing_max < 1),
    ]
    for result in serial:
        overhead = (result.wire_bytes - result.json_bytes) / result.json_bytes * 100
        name = f"serial {result.baud}"
        figures += [
            Figure(SECTION, f"{name}: JSON bytes per payment", result.json_bytes, "B"),
            Figure(SECTION, f"{name}: wire bytes per payment", result.wire_bytes, "B"),
            Figure(SECTION, f"{name}: overhead", overhead, "%", "<= 30%", overhead <= 30),
            Figure(SECTION, f"{name}: time per payment", result.seconds * MS, "ms"),
        ]
    return figures


def run(workdir: Path, args: argparse.Namespace) -> list[Figure]:
    """Run the link benchmarks (``args.link_round_trips`` round trips, default 3000)."""
    round_trips = int(getattr(args, "link_round_trips", ROUND_TRIPS))
    with _quiet():
        return asyncio.run(asyncio.wait_for(_run(workdir, round_trips), 300))
