"""``AcquirerClient``: the terminal's asyncio connection to the acquirer (its SIM network link).

A thin I/O shell around :class:`~shouyin.acquirer.session.TerminalSession`: it connects on first
use and again after the connection drops, frames and sends requests, and matches answers by MTI
and trace (so several requests may be in flight, and a late answer to an abandoned request is
logged and dropped). Every call has a timeout. What the exceptions mean for the money:

* :class:`~shouyin.acquirer.errors.AcquirerUnreachable`: not connected, **nothing was sent**;
* :class:`~shouyin.acquirer.errors.AcquirerTimeout`: sent (or maybe sent) and no valid answer in
  time, or the connection broke meanwhile: the outcome is **unknown**; reverse a sale (0400);
* :class:`~shouyin.acquirer.errors.HostRefused`: ``A0``/``77``, not processed: sign in again;
* otherwise the typed answer, whose ``response_code`` says approved (``00``) or why not.

An answer that fails its MAC check is logged and ignored (a forged or garbled answer must not end
the wait); if no good one follows, the call times out.

:class:`AcquirerControl` talks to the simulator's JSON control port (tests and demos).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, Self, TypeVar

from shouyin.acquirer.codes import EntryMode, ResponseCode, Wallet
from shouyin.acquirer.errors import (
    AcquirerError,
    AcquirerTimeout,
    AcquirerUnreachable,
    FrameError,
    HostRefused,
    IsoFormatError,
    MacError,
)
from shouyin.acquirer.framing import FrameDecoder, encode_frame
from shouyin.acquirer.messages import (
    BatchTotals,
    EchoResponse,
    FinancialResponse,
    IsoMessage,
    QueryResponse,
    RefundResponse,
    ReversalResponse,
    SettlementResponse,
    SignInResponse,
)
from shouyin.acquirer.pan import get_logger
from shouyin.acquirer.session import Response, TerminalSession

__all__ = ["AcquirerClient", "AcquirerControl"]

logger = get_logger(__name__)

_R = TypeVar("_R", bound=IsoMessage)


def _local_now() -> datetime:
    return datetime.now().astimezone()


class AcquirerClient:
    """One terminal's link to the acquirer host.

    Args:
        host: the acquirer's address.
        port: its terminal port.
        terminal_id: 8 characters.
        merchant_id: 15 characters.
        tmk: the terminal master key (:func:`shouyin.acquirer.mac.derive_tmk`).
        timeout: default seconds to wait for an answer.
        connect_timeout: seconds to wait for a connection.
        clock: the terminal's clock (fields 12/13).
    """

    def __init__(
        self,
        host: str,
        port: int,
        terminal_id: str,
        merchant_id: str,
        tmk: bytes,
        *,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        clock: Callable[[], datetime] = _local_now,
    ) -> None:
        self.address = (host, port)
        self.session = TerminalSession(terminal_id, merchant_id, tmk)
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._clock = clock
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._pending: dict[tuple[str, int], tuple[IsoMessage, asyncio.Future[Response]]] = {}
        self._connect_lock = asyncio.Lock()
        self._write_lock = asyncio.Lock()
        self._connections = 0

    @property
    def signed_in(self) -> bool:
        """Whether working keys from a sign-in are in place."""
        return self.session.keys is not None

    @property
    def reconnects(self) -> int:
        """How many times the connection was opened again after the first time."""
        return max(self._connections - 1, 0)

    @property
    def connected(self) -> bool:
        """Whether a connection is open."""
        return self._writer is not None and not self._writer.is_closing()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    # -- connection -----------------------------------------------------------------------------

    async def _ensure_connected(self) -> asyncio.StreamWriter:
        async with self._connect_lock:
            if self._writer is not None and not self._writer.is_closing():
                return self._writer
            address = f"{self.address[0]}:{self.address[1]}"
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(*self.address), self.connect_timeout
                )
            except (OSError, TimeoutError) as error:
                raise AcquirerUnreachable(address, type(error).__name__) from None
            self._writer = writer
            self._connections += 1
            self._reader_task = asyncio.create_task(self._read(reader, writer))
            logger.info("terminal %s connected to acquirer %s", self.session.terminal_id, address)
            return writer

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = FrameDecoder()
        try:
            while data := await reader.read(4096):
                for frame in decoder.feed(data):
                    self._deliver(frame.message)
        except (ConnectionError, FrameError) as error:
            logger.warning("acquirer connection broken: %s", type(error).__name__)
        finally:
            writer.close()
            if self._writer is writer:
                self._writer = None
            self._fail_pending("connection lost")

    def _deliver(self, message: bytes) -> None:
        key = self.session.peek_key(message)
        if key is None:
            logger.warning("undecodable answer dropped (%d bytes)", len(message))
            return
        entry = self._pending.get(key)
        if entry is None:
            logger.warning("late or unexpected answer %s trace %06d dropped", *key)
            return
        request, future = entry
        try:
            answer = self.session.decode(request, message)
        except HostRefused as refused:
            self._pending.pop(key, None)
            if not future.done():
                future.set_exception(refused)
            return
        except (MacError, IsoFormatError) as error:
            logger.warning("answer to %s trace %06d ignored: %s", request.MTI, key[1], error)
            return
        self._pending.pop(key, None)
        if not future.done():
            future.set_result(answer)

    def _fail_pending(self, reason: str) -> None:
        for key, (request, future) in list(self._pending.items()):
            if not future.done():
                future.set_exception(AcquirerTimeout(request.MTI, key[1], reason))
        self._pending.clear()

    async def close(self) -> None:
        """Close the connection (pending calls fail with :class:`AcquirerTimeout`)."""
        writer, task = self._writer, self._reader_task
        self._writer = None
        if writer is not None:
            writer.close()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._fail_pending("closed")

    # -- requests -------------------------------------------------------------------------------

    async def request(self, request: IsoMessage, timeout: float | None = None) -> Response:
        """Send any request and wait for its checked answer.

        Args:
            request: a request model (see :class:`TerminalSession` builders).
            timeout: seconds to wait (default :attr:`timeout`).

        Returns:
            The typed answer.

        Raises:
            AcquirerUnreachable: could not connect; nothing sent.
            AcquirerTimeout: no valid answer in time or the connection broke: outcome unknown.
            HostRefused: ``A0`` or ``77``: not processed.
            NotSignedIn: a MAC'ed request before :meth:`sign_in`.
        """
        message = self.session.encode(request)
        writer = await self._ensure_connected()
        key = self.session.answer_key(request)
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._pending[key] = (request, future)
        try:
            async with self._write_lock:
                writer.write(encode_frame(message))
                await writer.drain()
            return await asyncio.wait_for(future, timeout if timeout is not None else self.timeout)
        except TimeoutError:
            raise AcquirerTimeout(request.MTI, key[1]) from None
        except ConnectionError:
            raise AcquirerTimeout(request.MTI, key[1], "connection lost") from None
        finally:
            if self._pending.get(key, (None, None))[1] is future:
                del self._pending[key]

    async def _typed(self, request: IsoMessage, kind: type[_R], timeout: float | None) -> _R:
        answer = await self.request(request, timeout)
        if not isinstance(answer, kind):  # pragma: no cover - RESPONSE_TYPES guarantees it
            raise AcquirerError(f"unexpected answer type {type(answer).__name__}")
        return answer

    def _now(self) -> datetime:
        return self._clock()

    async def sign_in(
        self, *, trace: int, batch: int, timeout: float | None = None
    ) -> SignInResponse:
        """0800 sign-in: fresh MAK and PIK (installed if the answer checks out)."""
        request = self.session.sign_in(trace=trace, batch=batch, now=self._now())
        return await self._typed(request, SignInResponse, timeout)

    async def echo(self, *, trace: int, batch: int, timeout: float | None = None) -> EchoResponse:
        """0800 echo test (MAC'ed both ways)."""
        request = self.session.echo(trace=trace, batch=batch, now=self._now())
        return await self._typed(request, EchoResponse, timeout)

    def pin_block(self, pin: str, pan: str) -> bytes:
        """Encipher a PIN for :meth:`sale` under the current PIK."""
        return self.session.pin_block(pin, pan)

    async def sale(
        self,
        *,
        trace: int,
        batch: int,
        amount: int,
        pan: str | None = None,
        expiry: str | None = None,
        entry: EntryMode = EntryMode.CHIP,
        track2: str | None = None,
        pin_block: bytes | None = None,
        timeout: float | None = None,
    ) -> FinancialResponse:
        """0200 card sale. See :meth:`TerminalSession.card_sale`."""
        request = self.session.card_sale(
            trace=trace, batch=batch, amount=amount, now=self._now(), pan=pan, expiry=expiry,
            entry=entry, track2=track2, pin_block=pin_block,
        )  # fmt: skip
        return await self._typed(request, FinancialResponse, timeout)

    async def qr_sale(
        self, *, trace: int, batch: int, amount: int, auth_code: str, timeout: float | None = None
    ) -> FinancialResponse:
        """0200 QR micropay; ``09`` means USERPAYING: :meth:`query` until final."""
        request = self.session.qr_sale(
            trace=trace, batch=batch, amount=amount, auth_code=auth_code, now=self._now()
        )
        return await self._typed(request, FinancialResponse, timeout)

    async def precreate(
        self,
        *,
        trace: int,
        batch: int,
        amount: int,
        wallet: Wallet | None = None,
        timeout: float | None = None,
    ) -> FinancialResponse:
        """0200 merchant-presented QR order; the answer's ``qr_payload`` is the code to show."""
        request = self.session.precreate(
            trace=trace, batch=batch, amount=amount, wallet=wallet, now=self._now()
        )
        return await self._typed(request, FinancialResponse, timeout)

    async def void(
        self,
        *,
        trace: int,
        batch: int,
        amount: int,
        original_trace: int,
        original_rrn: str | None = None,
        original_auth_code: str | None = None,
        timeout: float | None = None,
    ) -> FinancialResponse:
        """0200 void of a sale of the open batch."""
        request = self.session.void(
            trace=trace, batch=batch, amount=amount, original_trace=original_trace,
            original_rrn=original_rrn, original_auth_code=original_auth_code, now=self._now(),
        )  # fmt: skip
        return await self._typed(request, FinancialResponse, timeout)

    async def refund(
        self,
        *,
        trace: int,
        batch: int,
        amount: int,
        original_rrn: str,
        original_batch: int | None = None,
        original_trace: int | None = None,
        original_date: str | None = None,
        timeout: float | None = None,
    ) -> RefundResponse:
        """0220 refund (the refund's own ``trace`` is its unique number: retry with the same)."""
        request = self.session.refund(
            trace=trace, batch=batch, amount=amount, original_rrn=original_rrn,
            original_batch=original_batch, original_trace=original_trace,
            original_date=original_date, now=self._now(),
        )  # fmt: skip
        return await self._typed(request, RefundResponse, timeout)

    async def reverse(
        self,
        *,
        trace: int,
        batch: int,
        amount: int,
        processing_code: str,
        reason: str = ResponseCode.REVERSAL_TIMEOUT,
        timeout: float | None = None,
    ) -> ReversalResponse:
        """0400 reversal (or QR revoke) of the transaction ``trace`` of ``batch``.

        Args:
            trace: the **original's** trace.
            batch: the original's batch.
            amount: the original's amount.
            processing_code: the original's processing code (``000000`` card sale, ``009000``
                QR sale, ``009100`` precreate, ``200000`` void or refund).
            reason: ``98`` no answer (default), ``06`` error, ``17`` cancelled.
            timeout: seconds to wait.

        Returns:
            The 0410 (``00``: reversed, or never happened).
        """
        request = self.session.reversal(
            trace=trace, batch=batch, amount=amount, processing_code=processing_code,
            reason=reason, now=self._now(),
        )  # fmt: skip
        return await self._typed(request, ReversalResponse, timeout)

    async def query(self, *, trace: int, batch: int, timeout: float | None = None) -> QueryResponse:
        """0600 status of the transaction ``trace`` of ``batch`` (``25``: unknown to the host)."""
        request = self.session.query(trace=trace, batch=batch, now=self._now())
        return await self._typed(request, QueryResponse, timeout)

    async def settle(
        self, *, trace: int, batch: int, totals: BatchTotals, timeout: float | None = None
    ) -> SettlementResponse:
        """0500 settlement: ``00`` balanced, ``95`` not (the host's totals are in the answer)."""
        request = self.session.settlement(trace=trace, batch=batch, totals=totals, now=self._now())
        return await self._typed(request, SettlementResponse, timeout)


class AcquirerControl:
    """A connection to the simulator's JSON control port.

    Args:
        host: the simulator's address.
        port: its control port.
    """

    def __init__(self, host: str, port: int) -> None:
        self.address = (host, port)
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def call(self, op: str, **arguments: Any) -> dict[str, Any]:
        """Send one command and return the answer.

        Raises:
            AcquirerError: the simulator refused the command.
            AcquirerUnreachable: the control port does not answer.
        """
        if self._streams is None:
            try:
                self._streams = await asyncio.open_connection(*self.address)
            except OSError as error:
                raise AcquirerUnreachable(
                    f"{self.address[0]}:{self.address[1]}", str(error)
                ) from None
        reader, writer = self._streams
        writer.write(json.dumps({"op": op, **arguments}).encode() + b"\n")
        await writer.drain()
        answer: dict[str, Any] = json.loads(await reader.readline())
        if not answer.get("ok"):
            raise AcquirerError(f"control {op} refused: {answer.get('error')}")
        return answer

    async def close(self) -> None:
        """Close the control connection."""
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None
