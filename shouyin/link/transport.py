"""Transports of the terminal link: URLs, and one small byte-pipe interface over serial, TCP, TLS.

The sans-I/O core (:class:`~shouyin.link.session.Connection`) never touches a port; this module
opens them. Every transport presents the same five operations (:class:`Transport`): ``read()``
(bytes, ``b""`` at end of stream), ``write(data)``, ``drain()``, ``close()`` / ``wait_closed()``,
and :attr:`~Transport.info`, a :class:`TransportInfo` naming the peer (its address or device, and
for TLS the protocol version, the cipher and the peer's certificate).

A URL picks the transport (:meth:`LinkAddress.parse`)::

    serial:///dev/ttyUSB0?baud=115200   RS232 / USB-CDC, any baud rate, always 8N1, no flow control
    serial://COM3?baud=9600             (Windows port names)
    tcp://192.168.1.20:8583             plain TCP (default port 8583)
    tls://pos.shop.lan:8583             TLS 1.3 with mutual certificates over TCP
    tcp://[::1]:8583                    IPv6 literals in brackets

Openers: :func:`open_serial` (pyserial-asyncio-fast; works on real ports and on the slave side of
a pty), :func:`connect_tcp` and :func:`connect_tls` for the side that dials, :func:`listen` for
the cashier system's server, which binds only the addresses it is told to (the firewall policy's
interfaces) and hands each accepted connection over *before* any TLS, so that the firewall can
refuse a source without spending a handshake on it; the server then upgrades with
:meth:`StreamTransport.start_tls`. :func:`open_transport` dials any URL.

Test and bench aids with no hardware: :func:`memory_pipe` (two in-memory ends, like pyserial's
``loop://``) and :class:`PtyCable`, a virtual null-modem cable made of two pty pairs whose
masters are bridged, optionally paced at a baud rate so that the ptys behave like a real line.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import socket
import ssl
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from typing import Protocol
from urllib.parse import parse_qsl, urlsplit

from shouyin.link.errors import LinkError
from shouyin.link.framing import Framer, SerialFramer, StreamFramer

__all__ = [
    "DEFAULT_BAUD",
    "DEFAULT_PORT",
    "AddressError",
    "LinkAddress",
    "Listener",
    "MemoryTransport",
    "PtyCable",
    "Scheme",
    "StreamTransport",
    "Transport",
    "TransportInfo",
    "connect_tcp",
    "connect_tls",
    "listen",
    "memory_pipe",
    "open_serial",
    "open_transport",
    "pairing_ssl_context",
    "serial_ack_timeout",
]

logger = logging.getLogger(__name__)

DEFAULT_BAUD = 9600
"""Baud rate of a ``serial://`` URL without ``?baud=`` (the classic ECR interface speed)."""
DEFAULT_PORT = 8583
"""TCP port of a ``tcp://`` or ``tls://`` URL without one (same as the firewall's default)."""
_MAX_BAUD = 4_000_000
_READ_SIZE = 65536
_CLOSE_TIMEOUT = 2.0


class Scheme(StrEnum):
    """Which transport a URL names."""

    SERIAL = "serial"
    TCP = "tcp"
    TLS = "tls"


class AddressError(LinkError, ValueError):
    """A link URL or listening address is not acceptable (the message says which part)."""


def serial_ack_timeout(baud: int) -> float:
    """ACK wait for :class:`~shouyin.link.framing.SerialFramer` at ``baud``, on top of its own
    ``byte_time * len(frame)``: the answer may queue behind a frame of up to 1 KiB the peer is
    already sending, plus half a second for USB adapters' latency timers and a busy peer."""
    return 0.5 + 1024 * 10 / baud


@dataclass(frozen=True, slots=True)
class LinkAddress:
    """A parsed link URL (see the module docstring for the syntax).

    Attributes:
        scheme: serial, tcp or tls.
        host: host name or IP address (tcp/tls); IPv6 without brackets.
        port: TCP port (tcp/tls); 0 only when listening (an ephemeral port).
        device: the serial device path (serial).
        baud: the serial baud rate (serial).
    """

    scheme: Scheme
    host: str = ""
    port: int = 0
    device: str = ""
    baud: int = DEFAULT_BAUD

    @classmethod
    def parse(cls, url: str) -> LinkAddress:
        """Parse a ``serial://``, ``tcp://`` or ``tls://`` URL.

        Raises:
            AddressError: unknown scheme, missing device or host, bad port or baud rate, an
                unknown query parameter, user information or a path on a TCP URL.
        """
        try:
            parts = urlsplit(url.strip())
            scheme = Scheme(parts.scheme.lower())
        except ValueError:
            raise AddressError(f"not a serial://, tcp:// or tls:// URL: {url[:80]!r}") from None
        if parts.fragment:
            raise AddressError("a link URL has no #fragment")
        try:
            query = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
        except ValueError:
            raise AddressError("malformed query in a link URL") from None
        if scheme is Scheme.SERIAL:
            return cls._parse_serial(parts.netloc, parts.path, query)
        if query or parts.path not in ("", "/"):
            raise AddressError(f"a {scheme.value}:// URL is just host:port")
        if "@" in parts.netloc:
            raise AddressError("a link URL carries no user name or password")
        try:
            host, port = parts.hostname, parts.port
        except ValueError:
            raise AddressError(f"bad port in {url[:80]!r}") from None
        if not host:
            raise AddressError(f"no host in {url[:80]!r}")
        return cls(scheme, host=host.lower(), port=DEFAULT_PORT if port is None else port)

    @classmethod
    def _parse_serial(cls, netloc: str, path: str, query: list[tuple[str, str]]) -> LinkAddress:
        device = path if not netloc else netloc + path  # serial://COM3 or serial:///dev/ttyS0
        if not device or device == "/":
            raise AddressError("a serial:// URL names a device, e.g. serial:///dev/ttyUSB0")
        baud = DEFAULT_BAUD
        for key, value in query:
            if key != "baud":
                raise AddressError(f"unknown serial parameter {key[:20]!r} (only baud=)")
            if not value.isdigit() or not 50 <= int(value) <= _MAX_BAUD:
                raise AddressError(f"baud must be 50..{_MAX_BAUD}")
            baud = int(value)
        return cls(Scheme.SERIAL, device=device, baud=baud)

    @property
    def is_serial(self) -> bool:
        """True for ``serial://``."""
        return self.scheme is Scheme.SERIAL

    @property
    def byte_time(self) -> float:
        """Seconds one byte takes on the wire (8N1: 10 bits); 0 for TCP/TLS."""
        return 10 / self.baud if self.is_serial else 0.0

    def framer_factory(self) -> Callable[[], Framer]:
        """The framer for this transport: serial framing tuned to the baud rate, or stream."""
        if self.is_serial:
            return partial(
                SerialFramer, byte_time=self.byte_time, ack_timeout=serial_ack_timeout(self.baud)
            )
        return StreamFramer

    def url(self) -> str:
        """The canonical URL (what :meth:`parse` reads back to an equal address)."""
        if self.is_serial:
            return f"serial://{self.device}?baud={self.baud}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme.value}://{host}:{self.port}"

    def __str__(self) -> str:
        return self.url()


# -- the transport interface ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TransportInfo:
    """Who is at the other end of a transport.

    Attributes:
        scheme: serial, tcp or tls.
        peer: ``host:port`` of the peer, or the serial device.
        local: our ``host:port``, or the serial device.
        peer_host: the peer's IP address (what the firewall checks), ``None`` on serial.
        tls_version: e.g. ``"TLSv1.3"`` once TLS is up.
        cipher: the TLS cipher suite name.
        peer_certificate: the peer's certificate (DER) if it presented one.
        baud: the serial baud rate.
    """

    scheme: Scheme
    peer: str
    local: str
    peer_host: str | None = None
    tls_version: str | None = None
    cipher: str | None = None
    peer_certificate: bytes | None = field(default=None, repr=False)
    baud: int | None = None


class Transport(Protocol):
    """The byte pipe the asyncio driver runs a :class:`~shouyin.link.session.Connection` over."""

    @property
    def info(self) -> TransportInfo:
        """Who is at the other end."""
        ...

    async def read(self) -> bytes:
        """The next bytes received (at least one), or ``b""`` at end of stream.

        Raises:
            OSError: the transport failed (reset, I/O error, TLS alert, device unplugged).
        """
        ...

    def write(self, data: bytes) -> None:
        """Queue ``data`` for sending (dropped silently once closing)."""
        ...

    async def drain(self) -> None:
        """Wait until the write buffer is below its high-water mark."""
        ...

    def close(self) -> None:
        """Start closing; further writes are dropped and ``read`` returns ``b""``."""
        ...

    async def wait_closed(self) -> None:
        """Wait (briefly) until closed; never raises."""
        ...


def _format_address(address: object) -> tuple[str, str | None]:
    if isinstance(address, tuple) and len(address) >= 2:
        host = str(address[0])
        shown = f"[{host}]" if ":" in host else host
        return f"{shown}:{address[1]}", host
    return str(address), None


class StreamTransport:
    """A :class:`Transport` over an asyncio stream pair (TCP, TLS or a serial port).

    Args:
        reader: the stream reader.
        writer: the stream writer.
        scheme: what kind of stream it is.
        device: the serial device (serial only).
        baud: the serial baud rate (serial only).
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        scheme: Scheme,
        *,
        device: str | None = None,
        baud: int | None = None,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._scheme = scheme
        self._device = device
        self._baud = baud
        self._info = self._describe()

    def _describe(self) -> TransportInfo:
        if self._device is not None:
            return TransportInfo(Scheme.SERIAL, self._device, self._device, baud=self._baud)
        peer, peer_host = _format_address(self._writer.get_extra_info("peername"))
        local, _ = _format_address(self._writer.get_extra_info("sockname"))
        ssl_object = self._writer.get_extra_info("ssl_object")
        if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
            return TransportInfo(self._scheme, peer, local, peer_host)
        cipher = ssl_object.cipher()
        return TransportInfo(
            Scheme.TLS,
            peer,
            local,
            peer_host,
            tls_version=ssl_object.version(),
            cipher=cipher[0] if cipher else None,
            peer_certificate=ssl_object.getpeercert(binary_form=True),
        )

    @property
    def info(self) -> TransportInfo:
        """Who is at the other end (updated by :meth:`start_tls`)."""
        return self._info

    async def start_tls(self, context: ssl.SSLContext, *, timeout: float) -> None:
        """Upgrade an accepted TCP connection to TLS (server side), then refresh :attr:`info`.

        Raises:
            OSError: the handshake failed (``ssl.SSLError`` is one).
            TimeoutError: it did not finish within ``timeout`` seconds.
        """
        await self._writer.start_tls(context, ssl_handshake_timeout=timeout)
        self._scheme = Scheme.TLS
        self._info = self._describe()

    async def read(self) -> bytes:
        """The next bytes, or ``b""`` at end of stream (see :meth:`Transport.read`)."""
        return await self._reader.read(_READ_SIZE)

    def write(self, data: bytes) -> None:
        """Queue ``data`` (dropped once closing)."""
        if not self._writer.is_closing():
            self._writer.write(data)

    async def drain(self) -> None:
        """Wait for the write buffer to drain below its high-water mark."""
        await self._writer.drain()

    def close(self) -> None:
        """Start closing the stream."""
        self._writer.close()

    async def wait_closed(self) -> None:
        """Wait up to two seconds for the close to finish; errors are only logged."""
        try:
            await asyncio.wait_for(self._writer.wait_closed(), _CLOSE_TIMEOUT)
        except (OSError, TimeoutError) as error:
            logger.debug("closing %s: %s", self._info.peer, error)

    def __repr__(self) -> str:
        return f"StreamTransport({self._info.scheme.value}, {self._info.peer!r})"


# -- openers -------------------------------------------------------------------------------------


def _tune_socket(writer: asyncio.StreamWriter) -> None:
    """Keep-alive probes so that a silently vanished peer is noticed even while idle."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 5)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)


def _require(address: LinkAddress, *schemes: Scheme) -> None:
    if address.scheme not in schemes:
        wanted = " or ".join(f"{s.value}://" for s in schemes)
        raise AddressError(f"{address} is not a {wanted} address")


async def open_serial(address: LinkAddress) -> StreamTransport:
    """Open a serial port at the address's baud rate, 8N1, no flow control, exclusively.

    Works on real ports (``/dev/ttyS*``, ``/dev/ttyUSB*``, ``COM3``) and on a pty slave.

    Raises:
        AddressError: not a ``serial://`` address.
        OSError: the port cannot be opened (``serial.SerialException`` is one).
    """
    _require(address, Scheme.SERIAL)
    import serial
    import serial_asyncio_fast

    reader, writer = await serial_asyncio_fast.open_serial_connection(
        url=address.device,
        baudrate=address.baud,
        bytesize=serial.EIGHTBITS,
        parity=serial.PARITY_NONE,
        stopbits=serial.STOPBITS_ONE,
        xonxoff=False,
        rtscts=False,
        dsrdtr=False,
        exclusive=os.name == "posix",
    )
    logger.info("opened %s at %d baud", address.device, address.baud)
    return StreamTransport(reader, writer, Scheme.SERIAL, device=address.device, baud=address.baud)


async def connect_tcp(
    address: LinkAddress, *, timeout: float = 5.0, local_host: str | None = None
) -> StreamTransport:
    """Dial a ``tcp://`` address.

    Args:
        address: where to connect.
        timeout: seconds for the connection to be established.
        local_host: bind the local end to this address first (tests use other loopback addresses).

    Raises:
        AddressError: not a ``tcp://`` address, or port 0.
        OSError: refused, unreachable.
        TimeoutError: no connection within ``timeout``.
    """
    _require(address, Scheme.TCP)
    if address.port == 0:
        raise AddressError("cannot dial port 0")
    local = (local_host, 0) if local_host else None
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(address.host, address.port, local_addr=local), timeout
    )
    _tune_socket(writer)
    return StreamTransport(reader, writer, Scheme.TCP)


async def connect_tls(
    address: LinkAddress,
    context: ssl.SSLContext,
    *,
    server_hostname: str | None = None,
    timeout: float = 5.0,
    local_host: str | None = None,
) -> StreamTransport:
    """Dial a ``tls://`` address with ``context`` (TLS 1.3, the terminal's certificate).

    Args:
        address: where to connect.
        context: from :meth:`shouyin.link.keystore.TerminalKeyStore.ssl_client_context` (pass it
            the same host name), or :func:`pairing_ssl_context` to pair.
        server_hostname: the name checked against the server certificate and sent as SNI
            (default: the URL's host).
        timeout: seconds for TCP and the TLS handshake together.
        local_host: bind the local end to this address first.

    Raises:
        AddressError: not a ``tls://`` address, or port 0.
        OSError: refused, unreachable, or the handshake failed (``ssl.SSLError``).
        TimeoutError: no connection within ``timeout``.
    """
    _require(address, Scheme.TLS)
    if address.port == 0:
        raise AddressError("cannot dial port 0")
    local = (local_host, 0) if local_host else None
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(
            address.host,
            address.port,
            ssl=context,
            server_hostname=server_hostname or address.host,
            ssl_handshake_timeout=timeout,
            local_addr=local,
        ),
        timeout,
    )
    _tune_socket(writer)
    transport = StreamTransport(reader, writer, Scheme.TLS)
    info = transport.info
    logger.info("connected to %s (%s, %s)", info.peer, info.tls_version, info.cipher)
    return transport


async def open_transport(
    address: LinkAddress | str,
    *,
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = 5.0,
) -> StreamTransport:
    """Open whatever ``address`` names: a serial port, a TCP or a TLS connection.

    Raises:
        AddressError: a bad URL, or ``tls://`` without ``ssl_context``.
        OSError: the port or connection cannot be opened.
        TimeoutError: no connection within ``timeout``.
    """
    if isinstance(address, str):
        address = LinkAddress.parse(address)
    if address.scheme is Scheme.SERIAL:
        return await asyncio.wait_for(open_serial(address), timeout)
    if address.scheme is Scheme.TCP:
        return await connect_tcp(address, timeout=timeout)
    if ssl_context is None:
        raise AddressError("a tls:// address needs an SSL context")
    return await connect_tls(address, ssl_context, timeout=timeout)


def pairing_ssl_context() -> ssl.SSLContext:
    """The TLS 1.3 client context a terminal uses to *pair*: no client certificate yet.

    It does not verify the server certificate: a terminal being paired has no store CA to pin
    yet. That is safe because pairing does not rest on TLS: the SPAKE2 exchange keyed by the
    one-time code authenticates both ends (a man in the middle without the code learns nothing
    and cannot complete it), its final MAC covers the store CA certificate handed over, and
    :meth:`~shouyin.link.keystore.TerminalKeyStore.install` checks that CA against the
    fingerprint of the pairing QR code. TLS here only hides the exchange from onlookers.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


# -- listening -----------------------------------------------------------------------------------

ConnectionHandler = Callable[[StreamTransport, LinkAddress], Awaitable[None]]


class Listener:
    """Bound listening sockets; :meth:`close` stops accepting and cancels running handlers."""

    def __init__(self) -> None:
        self._servers: list[tuple[asyncio.Server, LinkAddress]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def addresses(self) -> tuple[LinkAddress, ...]:
        """The bound addresses, with the actual port (useful after listening on port 0)."""
        bound: list[LinkAddress] = []
        for server, address in self._servers:
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                bound.append(LinkAddress(address.scheme, host=str(host), port=int(port)))
        return tuple(bound)

    async def close(self) -> None:
        """Stop listening and cancel the connection handlers still running."""
        for server, _ in self._servers:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for server, _ in self._servers:
            await server.wait_closed()
        self._servers.clear()


def _listen_host(address: LinkAddress, allowed: Collection[str] | None) -> str:
    try:
        host = ipaddress.ip_address(address.host)
    except ValueError:
        raise AddressError(f"listen on an IP address, not a name: {address.host!r}") from None
    if allowed is not None:
        permitted = {ipaddress.ip_address(a) for a in allowed}
        if host not in permitted:
            raise AddressError(f"{host} is not one of the configured listen addresses")
    return str(host)


async def listen(
    addresses: Sequence[LinkAddress],
    handler: ConnectionHandler,
    *,
    allowed_hosts: Collection[str] | None = None,
) -> Listener:
    """Listen on ``addresses`` (``tcp://`` or ``tls://``, IP literals) and call ``handler``.

    The handler gets each accepted connection as *plain TCP* plus the address it came in on; for
    a ``tls://`` address it decides (firewall first) whether to :meth:`StreamTransport.start_tls`.
    Each handler runs in its own task; the connection is closed when it returns or fails.

    Args:
        addresses: where to listen; port 0 picks a free port (see :attr:`Listener.addresses`).
        handler: ``await handler(transport, address)``.
        allowed_hosts: the only hosts that may be bound (the firewall policy's
            ``listen_addresses``); a wildcard address is refused unless it is listed.

    Raises:
        AddressError: a serial address, a host name, or a host outside ``allowed_hosts``.
        OSError: an address cannot be bound.
    """
    listener = Listener()

    def accepted(
        address: LinkAddress, reader: asyncio.StreamReader, w: asyncio.StreamWriter
    ) -> None:
        _tune_socket(w)
        transport = StreamTransport(reader, w, Scheme.TCP)
        task = asyncio.get_running_loop().create_task(_run_handler(handler, transport, address))
        listener._tasks.add(task)
        task.add_done_callback(listener._tasks.discard)

    hosts = [(_listen_host(a, allowed_hosts), a) for a in addresses]  # check all before binding
    try:
        for host, address in hosts:
            _require(address, Scheme.TCP, Scheme.TLS)
            server = await asyncio.start_server(
                partial(accepted, address), host, address.port, reuse_address=True
            )
            listener._servers.append((server, address))
            logger.info("listening on %s", ", ".join(str(a) for a in listener.addresses))
    except BaseException:
        await listener.close()
        raise
    return listener


async def _run_handler(
    handler: ConnectionHandler, transport: StreamTransport, address: LinkAddress
) -> None:
    try:
        await handler(transport, address)
    except asyncio.CancelledError:
        transport.close()
        raise
    except Exception:
        logger.exception("connection handler for %s failed", transport.info.peer)
        transport.close()


# -- in-memory twin ------------------------------------------------------------------------------

Tap = Callable[[bytes], bytes]


class MemoryTransport:
    """One end of :func:`memory_pipe`: what one end writes, the other reads.

    Attributes:
        tap: optional function applied to each write before delivery (record, corrupt, drop).
    """

    def __init__(self, info: TransportInfo) -> None:
        self._info = info
        self._inbox: asyncio.Queue[bytes] = asyncio.Queue()
        self._peer: MemoryTransport | None = None
        self._closed = False
        self.tap: Tap | None = None

    @property
    def info(self) -> TransportInfo:
        """Names the pipe end."""
        return self._info

    async def read(self) -> bytes:
        """The next delivered bytes, or ``b""`` once either end closed."""
        if self._closed and self._inbox.empty():
            return b""
        return await self._inbox.get()

    def write(self, data: bytes) -> None:
        """Deliver ``data`` to the other end (through :attr:`tap`)."""
        peer = self._peer
        if self._closed or peer is None or peer._closed:
            return
        if self.tap is not None:
            data = self.tap(data)
        if data:
            peer._inbox.put_nowait(bytes(data))

    def inject(self, data: bytes) -> None:
        """Make ``data`` arrive at this end as if the other end had sent it (attack tests)."""
        if not self._closed:
            self._inbox.put_nowait(bytes(data))

    async def drain(self) -> None:
        """Nothing to wait for."""

    def close(self) -> None:
        """Close both directions: each end then reads ``b""``."""
        if self._closed:
            return
        self._closed = True
        self._inbox.put_nowait(b"")
        peer = self._peer
        if peer is not None and not peer._closed:
            peer._closed = True
            peer._inbox.put_nowait(b"")

    async def wait_closed(self) -> None:
        """Closing is immediate."""


def memory_pipe(scheme: Scheme = Scheme.TCP) -> tuple[MemoryTransport, MemoryTransport]:
    """Two connected in-memory transport ends (``a`` writes what ``b`` reads and back)."""
    a = MemoryTransport(TransportInfo(scheme, "memory:b", "memory:a", peer_host="127.0.0.1"))
    b = MemoryTransport(TransportInfo(scheme, "memory:a", "memory:b", peer_host="127.0.0.1"))
    a._peer, b._peer = b, a
    return a, b


# -- virtual null-modem cable --------------------------------------------------------------------


class PtyCable:
    """Two pty pairs whose masters are bridged: open :attr:`paths` with :func:`open_serial`.

    With ``baud`` the bridge paces each direction like a real 8N1 line (each chunk takes
    ``len * 10 / baud`` seconds, one chunk after the other), since a pty alone moves bytes as
    fast as memory. :attr:`connected` can be set to ``False`` to "pull the cable": bytes are then
    dropped in both directions. POSIX only.

    Args:
        baud: pace at this rate, or ``None`` for an unpaced cable.
    """

    def __init__(self, baud: int | None = None) -> None:
        import pty
        import tty

        self.baud = baud
        self.connected = True
        self.bytes_moved = [0, 0]  # a -> b, b -> a
        self._fds: list[int] = []
        masters: list[int] = []
        paths: list[str] = []
        for _ in range(2):
            master, slave = pty.openpty()
            for fd in (master, slave):
                tty.setraw(fd)
            os.set_blocking(master, False)
            self._fds += [master, slave]  # keep the slave open: no EIO when the port is closed
            masters.append(master)
            paths.append(os.ttyname(slave))
        self._masters = masters
        self.paths = (paths[0], paths[1])
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Start moving bytes (call from inside the event loop)."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        for index in (0, 1):
            queue: asyncio.Queue[bytes] = asyncio.Queue()
            source, target = self._masters[index], self._masters[1 - index]
            loop.add_reader(source, self._on_readable, source, queue)
            self._tasks.append(loop.create_task(self._relay(queue, target, index)))

    def _on_readable(self, fd: int, queue: asyncio.Queue[bytes]) -> None:
        try:
            data = os.read(fd, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # EIO: nobody has the slave open (we do, so only at shutdown)
            return
        if data and self.connected:
            queue.put_nowait(data)

    async def _relay(self, queue: asyncio.Queue[bytes], target: int, index: int) -> None:
        loop = asyncio.get_running_loop()
        line_free = loop.time()
        while True:
            data = await queue.get()
            if self.baud:
                start = max(loop.time(), line_free)
                line_free = start + len(data) * 10 / self.baud
                await asyncio.sleep(line_free - loop.time())
            while data:
                if not self.connected:
                    break
                try:
                    written = os.write(target, data)
                except (BlockingIOError, InterruptedError):
                    await asyncio.sleep(0.001)  # the far side's input buffer is full
                    continue
                data = data[written:]
                self.bytes_moved[index] += written

    async def close(self) -> None:
        """Stop the bridge and close every pty descriptor."""
        if self._loop is not None:
            for master in self._masters:
                self._loop.remove_reader(master)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()

    async def __aenter__(self) -> PtyCable:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
