"""Transports: link URLs, a serial port on a pty pair, the pty cable, TCP, TLS 1.3 and the
in-memory twin."""

from __future__ import annotations

import asyncio
import os
import ssl
import tty
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cryptography import x509
from hypothesis import given
from hypothesis import strategies as st

from shouyin.link import SerialFramer, StreamFramer
from shouyin.link.keystore import TerminalKeyStore
from shouyin.link.pki import certificate_to_pem, csr_from_pem
from shouyin.link.transport import (
    DEFAULT_BAUD,
    DEFAULT_PORT,
    AddressError,
    LinkAddress,
    PtyCable,
    Scheme,
    StreamTransport,
    connect_tcp,
    connect_tls,
    listen,
    memory_pipe,
    open_serial,
    open_transport,
    pairing_ssl_context,
    serial_ack_timeout,
)
from tests.link.aio_helpers import TIMEOUT, make_trust, now

T = TypeVar("T")
EVERY_BYTE = bytes(range(256))


def run(coroutine: Coroutine[Any, Any, T], limit: float = 15.0) -> T:
    return asyncio.run(asyncio.wait_for(coroutine, limit))


async def read_exactly(transport: Any, size: int) -> bytes:
    data = b""
    async with asyncio.timeout(TIMEOUT):
        while len(data) < size:
            chunk = await transport.read()
            assert chunk, f"end of stream after {len(data)} of {size} bytes"
            data += chunk
    return data


# -- URLs ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "serial:///dev/ttyUSB0?baud=115200",
            LinkAddress(Scheme.SERIAL, device="/dev/ttyUSB0", baud=115200),
        ),
        ("serial:///dev/ttyS0", LinkAddress(Scheme.SERIAL, device="/dev/ttyS0", baud=DEFAULT_BAUD)),
        ("serial://COM3?baud=9600", LinkAddress(Scheme.SERIAL, device="COM3", baud=9600)),
        ("tcp://192.168.1.20:8583", LinkAddress(Scheme.TCP, host="192.168.1.20", port=8583)),
        ("tcp://POS.shop.lan", LinkAddress(Scheme.TCP, host="pos.shop.lan", port=DEFAULT_PORT)),
        ("tls://[::1]:9000", LinkAddress(Scheme.TLS, host="::1", port=9000)),
        ("TLS://127.0.0.1:0/", LinkAddress(Scheme.TLS, host="127.0.0.1", port=0)),
    ],
)
def test_link_urls_parse_into_typed_addresses(url: str, expected: LinkAddress) -> None:
    assert LinkAddress.parse(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:80",
        "127.0.0.1:8583",
        "serial://",
        "serial:///dev/ttyS0?baud=fast",
        "serial:///dev/ttyS0?baud=10",
        "serial:///dev/ttyS0?parity=E",
        "serial:///dev/ttyS0?baud",
        "tcp://:8583",
        "tcp://127.0.0.1:99999",
        "tcp://127.0.0.1:8583/path",
        "tcp://127.0.0.1:8583?x=1",
        "tls://user:secret@127.0.0.1:8583",
        "tcp://127.0.0.1:8583#frag",
    ],
)
def test_bad_link_urls_are_refused_with_a_typed_error(url: str) -> None:
    with pytest.raises(AddressError):
        LinkAddress.parse(url)


@given(
    st.sampled_from([Scheme.TCP, Scheme.TLS]),
    st.one_of(
        st.ip_addresses().map(str),
        st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z][a-z0-9-]{0,10}){0,2}", fullmatch=True),
    ),
    st.integers(0, 65535),
)
def test_network_addresses_round_trip_through_their_url(
    scheme: Scheme, host: str, port: int
) -> None:
    address = LinkAddress(scheme, host=host, port=port)
    assert LinkAddress.parse(address.url()) == address


@given(
    st.from_regex(r"/dev/tty[A-Za-z0-9]{1,8}|COM[1-9][0-9]?", fullmatch=True),
    st.integers(50, 4_000_000),
)
def test_serial_addresses_round_trip_through_their_url(device: str, baud: int) -> None:
    address = LinkAddress(Scheme.SERIAL, device=device, baud=baud)
    assert LinkAddress.parse(str(address)) == address


def test_serial_framing_is_tuned_to_the_baud_rate() -> None:
    slow = LinkAddress.parse("serial:///dev/ttyS0?baud=9600")
    framer = slow.framer_factory()()
    assert isinstance(framer, SerialFramer)
    assert slow.byte_time == pytest.approx(10 / 9600)
    assert serial_ack_timeout(9600) > serial_ack_timeout(115200) > 0.5
    assert isinstance(LinkAddress.parse("tls://127.0.0.1:1").framer_factory()(), StreamFramer)


# -- serial on a pty pair --------------------------------------------------------------------------


@pytest.mark.parametrize("baud", [9600, 115200, 921600])
def test_serial_port_on_a_pty_slave_carries_every_byte_value_both_ways(baud: int) -> None:
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        port = await open_serial(LinkAddress.parse(f"serial://{os.ttyname(slave)}?baud={baud}"))
        assert port.info.scheme is Scheme.SERIAL and port.info.baud == baud
        port.write(EVERY_BYTE)
        await port.drain()
        received = b""
        async with asyncio.timeout(TIMEOUT):
            while len(received) < len(EVERY_BYTE):
                received += await loop.run_in_executor(None, os.read, master, 4096)
        assert received == EVERY_BYTE  # raw: no ^C signal, no CR/LF mapping, no XON/XOFF
        os.write(master, EVERY_BYTE[::-1])
        assert await read_exactly(port, 256) == EVERY_BYTE[::-1]
        port.close()
        await port.wait_closed()

    try:
        run(scenario())
    finally:
        os.close(master)
        os.close(slave)


def test_opening_a_missing_serial_port_raises_os_error() -> None:
    with pytest.raises(OSError):
        run(open_serial(LinkAddress.parse("serial:///dev/does-not-exist-42")))


def test_pty_cable_joins_two_serial_ports() -> None:
    async def scenario() -> None:
        async with PtyCable() as cable:
            left = await open_serial(LinkAddress.parse(f"serial://{cable.paths[0]}"))
            right = await open_serial(LinkAddress.parse(f"serial://{cable.paths[1]}"))
            left.write(EVERY_BYTE)
            assert await read_exactly(right, 256) == EVERY_BYTE
            right.write(b"\x06\x15")
            assert await read_exactly(left, 2) == b"\x06\x15"
            cable.connected = False  # pull the cable
            left.write(b"lost")
            await asyncio.sleep(0.1)
            cable.connected = True
            left.write(b"kept")
            assert await read_exactly(right, 4) == b"kept"
            for port in (left, right):
                port.close()
                await port.wait_closed()

    run(scenario())


def test_paced_pty_cable_moves_bytes_at_the_line_rate() -> None:
    async def scenario() -> None:
        async with PtyCable(baud=9600) as cable:
            left = await open_serial(LinkAddress.parse(f"serial://{cable.paths[0]}?baud=9600"))
            right = await open_serial(LinkAddress.parse(f"serial://{cable.paths[1]}?baud=9600"))
            loop = asyncio.get_running_loop()
            started = loop.time()
            left.write(bytes(480))  # 480 bytes x 10 bits at 9600 baud = 0.5 s
            await read_exactly(right, 480)
            assert 0.45 <= loop.time() - started < 5.0  # paced, not early; bounded
            for port in (left, right):
                port.close()
                await port.wait_closed()

    run(scenario())


# -- TCP -------------------------------------------------------------------------------------------


def test_tcp_listen_and_connect_carry_bytes_and_report_the_peer() -> None:
    async def scenario() -> None:
        accepted: asyncio.Queue[StreamTransport] = asyncio.Queue()

        async def handler(transport: StreamTransport, _: LinkAddress) -> None:
            await accepted.put(transport)

        listener = await listen(
            [LinkAddress.parse("tcp://127.0.0.1:0")], handler, allowed_hosts=["127.0.0.1"]
        )
        address = listener.addresses[0]
        assert address.port != 0
        client = await open_transport(str(address))
        server = await asyncio.wait_for(accepted.get(), TIMEOUT)
        assert (
            server.info.peer_host == "127.0.0.1" and client.info.peer == f"127.0.0.1:{address.port}"
        )
        client.write(EVERY_BYTE)
        assert await read_exactly(server, 256) == EVERY_BYTE
        client.close()
        assert await asyncio.wait_for(server.read(), TIMEOUT) == b""
        await listener.close()

    run(scenario())


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("tcp://127.0.0.2:0", ["127.0.0.1"]),
        ("tcp://0.0.0.0:0", ["127.0.0.1"]),
        ("tcp://localhost:0", None),
        ("serial:///dev/ttyS0", None),
    ],
)
def test_listen_binds_only_configured_ip_addresses(url: str, allowed: list[str] | None) -> None:
    async def handler(transport: StreamTransport, _: LinkAddress) -> None:
        transport.close()

    with pytest.raises(AddressError):
        run(listen([LinkAddress.parse(url)], handler, allowed_hosts=allowed))


def test_dialling_a_closed_port_raises_os_error() -> None:
    async def scenario() -> None:
        listener = await listen([LinkAddress.parse("tcp://127.0.0.1:0")], _ignore)
        address = listener.addresses[0]
        await listener.close()
        with pytest.raises(OSError):
            await connect_tcp(address)
        with pytest.raises(AddressError):
            await connect_tcp(LinkAddress.parse("tcp://127.0.0.1:0"))
        with pytest.raises(AddressError):
            await open_transport("tls://127.0.0.1:1")  # no SSL context

    run(scenario())


async def _ignore(transport: StreamTransport, _: LinkAddress) -> None:
    transport.close()


# -- TLS -------------------------------------------------------------------------------------------


def test_tls_reports_version_cipher_and_both_certificates(tmp_path: Path) -> None:
    trust = make_trust(tmp_path / "ecr")
    terminal = TerminalKeyStore(tmp_path / "poi")
    certificate = trust.keystore.issue_terminal_certificate("T0042", _csr(terminal, "T0042"), now())
    terminal.install(
        certificate_to_pem(certificate),
        certificate_to_pem(trust.keystore.ca_certificate()),
        now(),
    )

    async def scenario() -> None:
        accepted: asyncio.Queue[StreamTransport] = asyncio.Queue()
        context = trust.keystore.ssl_server_context()

        async def handler(transport: StreamTransport, _: LinkAddress) -> None:
            await transport.start_tls(context, timeout=TIMEOUT)
            await accepted.put(transport)

        listener = await listen([LinkAddress.parse("tls://127.0.0.1:0")], handler)
        client = await connect_tls(listener.addresses[0], terminal.ssl_client_context("127.0.0.1"))
        server = await asyncio.wait_for(accepted.get(), TIMEOUT)
        for side in (client, server):
            assert side.info.scheme is Scheme.TLS
            assert side.info.tls_version == "TLSv1.3"
            assert side.info.cipher and side.info.cipher.startswith("TLS_")
        assert server.info.peer_certificate is not None
        assert trust.keystore.authenticate_peer(server.info.peer_certificate, now()) == "T0042"
        client.write(b"ping")
        assert await read_exactly(server, 4) == b"ping"
        client.close()
        await client.wait_closed()
        await listener.close()

    run(scenario())


def test_pairing_context_connects_without_a_client_certificate(tmp_path: Path) -> None:
    trust = make_trust(tmp_path)

    async def scenario() -> None:
        accepted: asyncio.Queue[StreamTransport] = asyncio.Queue()
        context = trust.keystore.ssl_server_context()
        context.verify_mode = ssl.CERT_OPTIONAL

        async def handler(transport: StreamTransport, _: LinkAddress) -> None:
            await transport.start_tls(context, timeout=TIMEOUT)
            await accepted.put(transport)

        listener = await listen([LinkAddress.parse("tls://127.0.0.1:0")], handler)
        client = await connect_tls(listener.addresses[0], pairing_ssl_context())
        server = await asyncio.wait_for(accepted.get(), TIMEOUT)
        assert server.info.tls_version == "TLSv1.3"
        assert server.info.peer_certificate is None
        assert client.info.peer_certificate is not None  # the server's, checked later via SPAKE2
        client.close()
        await listener.close()

    run(scenario())


def _csr(terminal: TerminalKeyStore, terminal_id: str) -> x509.CertificateSigningRequest:
    return csr_from_pem(terminal.make_csr(terminal_id))


# -- in-memory twin --------------------------------------------------------------------------------


def test_memory_pipe_delivers_both_ways_and_ends_on_close() -> None:
    async def scenario() -> None:
        a, b = memory_pipe()
        a.tap = lambda data: data.upper()
        a.write(b"hello")
        b.write(b"back")
        assert await b.read() == b"HELLO"
        assert await a.read() == b"back"
        b.close()
        assert await a.read() == b""
        assert await b.read() == b""
        a.write(b"dropped")  # writing to a closed pipe is a no-op

    run(scenario())
