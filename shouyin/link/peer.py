"""A minimal payment-terminal (POI) peer built from the library, for tests and benchmarks.

It logs in (the cashier side drives 签到) and answers every request category at once with a
plausible success: payments by card or QR with made-up acquirer data (a masked card number,
never a real one), reversals, refunds, status queries from its own memory of transactions,
aborts, diagnosis, reconciliation with totals, print, display and admin requests; heartbeats and
logout are answered by the connection itself. After a card payment it reports the card removed
(an :class:`EventNotification`). It is *not* the terminal simulator (no PIN entry, declines,
paper-out or crashes on demand): that is a later, fuller program.

Run it as a separate process so that tests exercise two real processes::

    python -m shouyin.link.peer --connect tls://127.0.0.1:8583 --terminal-id T0001 \\
        --keystore /tmp/t1 --key-file /tmp/t1/link.key --pair 12345678 --ca-fingerprint ab12...
    python -m shouyin.link.peer --listen tcp://127.0.0.1:0 --terminal-id T0001 --key-file k.json
    python -m shouyin.link.peer --connect serial:///dev/pts/7?baud=115200 --pair 12345678 ...

It reports what happens as JSON lines on stdout (``{"event": "logged_in", ...}``) for the test
harness to follow; logs go to stderr. The long-term key file it writes (mode 0600) holds key bytes
in hex: a test convenience, not how a real terminal stores its key.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from shouyin.link.aio import LinkEndpoint
from shouyin.link.config import LinkConfig
from shouyin.link.errors import LinkError
from shouyin.link.events import (
    Event,
    FrameRefused,
    LinkDead,
    LoggedIn,
    LoggedOut,
    MessageReceived,
    Paired,
)
from shouyin.link.keystore import TerminalKeyStore, atomic_write
from shouyin.link.messages import (
    AbortRequest,
    AbortResponse,
    AdminRequest,
    AdminResponse,
    DiagnosisRequest,
    DiagnosisResponse,
    DisplayRequest,
    DisplayResponse,
    EventNotification,
    MessageBase,
    PaymentProgress,
    PaymentRequest,
    PaymentResponse,
    PrintRequest,
    PrintResponse,
    ReconciliationRequest,
    ReconciliationResponse,
    RefundRequest,
    RefundResponse,
    Request,
    Response,
    ReversalRequest,
    ReversalResponse,
    TransactionStatusRequest,
    TransactionStatusResponse,
    failure_response,
)
from shouyin.link.security import LongTermKey
from shouyin.link.server import pair_terminal
from shouyin.link.session import Connection
from shouyin.link.states import Role
from shouyin.link.transport import (
    AddressError,
    LinkAddress,
    Scheme,
    Transport,
    connect_tls,
    listen,
    open_transport,
    pairing_ssl_context,
)
from shouyin.link.values import (
    AcquirerData,
    AdminAction,
    Capabilities,
    CardEntry,
    ErrorCondition,
    NotificationKind,
    PaperState,
    PaymentKind,
    PowerSource,
    ProgressStage,
    ReconciliationKind,
    Result,
    ReversalReason,
    TerminalHealth,
    Totals,
    TransactionKind,
    TransactionRecord,
    TransactionState,
    Wallet,
)
from shouyin.logs import configure_logging

__all__ = [
    "HEALTH",
    "PEER_FIRMWARE",
    "Responder",
    "load_key",
    "main",
    "peer_capabilities",
    "save_key",
    "serve",
]

logger = logging.getLogger(__name__)

PEER_FIRMWARE = "shouyin-peer 0.1"
_OK = Result.SUCCESS
_MERCHANT = "898310048160001"
_ACQUIRER_TERMINAL = "10000001"
_WALLET_PREFIXES = (
    ("10", Wallet.WECHAT),
    ("11", Wallet.WECHAT),
    ("13", Wallet.WECHAT),
    ("25", Wallet.ALIPAY),
    ("28", Wallet.ALIPAY),
    ("62", Wallet.UNIONPAY),
)


def peer_capabilities() -> Capabilities:
    """What the peer offers at Login: card and QR payments, a printer and a display."""
    return Capabilities(
        payment_kinds=(PaymentKind.CARD, PaymentKind.QR_CODE),
        wallets=(Wallet.WECHAT, Wallet.ALIPAY, Wallet.UNIONPAY),
        printer=True,
        display=True,
        max_frame_size=8192,
        firmware=PEER_FIRMWARE,
        model="PEER",
    )


HEALTH = TerminalHealth(
    power=PowerSource.MAINS, paper=PaperState.OK, temperature_c=38, firmware=PEER_FIRMWARE
)
"""What the peer reports in heartbeat and diagnosis answers."""


class Responder:
    """Turns each request into the messages a cooperative terminal sends back, at once.

    Args:
        progress: send progress messages before a payment's response (off: "answer at once").
    """

    def __init__(self, *, progress: bool = False) -> None:
        self.progress = progress
        self.transactions: dict[str, TransactionRecord] = {}
        self._trace = 0
        self._batch = 1

    def _acquirer(self, request: PaymentRequest | RefundRequest | ReversalRequest) -> AcquirerData:
        self._trace += 1
        common = {
            "rrn": f"{datetime.now(UTC):%y%j}{self._trace:07d}",
            "trace": f"{self._trace:06d}",
            "batch": f"{self._batch:06d}",
            "merchant_id": _MERCHANT,
            "acquirer_terminal_id": _ACQUIRER_TERMINAL,
            "transaction_time": datetime.now(UTC),
        }
        if isinstance(request, PaymentRequest) and request.kind is PaymentKind.QR_CODE:
            code = request.auth_code or ""
            wallet = next((w for p, w in _WALLET_PREFIXES if code.startswith(p)), Wallet.OTHER)
            order = f"{wallet.value[:2].upper()}{self._trace:018d}"
            return AcquirerData(**common, wallet=wallet, wallet_order_id=order)
        return AcquirerData(
            **common,
            auth_code=f"{self._trace % 1_000_000:06d}",
            masked_pan="622848******0017",
            card_brand="UnionPay",
            entry=CardEntry.CHIP,
        )

    def _remember(
        self, ecr_ref: str, kind: TransactionKind, amount: int, acquirer: AcquirerData | None
    ) -> None:
        self.transactions[ecr_ref] = TransactionRecord(
            ecr_ref=ecr_ref,
            kind=kind,
            state=TransactionState.APPROVED,
            amount=amount,
            acquirer=acquirer,
            at=datetime.now(UTC),
        )

    def answer(self, request: Request) -> list[MessageBase]:
        """The messages to send for ``request``, in order (the response among them)."""
        if isinstance(request, PaymentRequest):
            return self._payment(request)
        return [self._simple(request)]

    def _payment(self, request: PaymentRequest) -> list[MessageBase]:
        out: list[MessageBase] = []
        card = request.kind is PaymentKind.CARD
        if self.progress:
            stages: tuple[ProgressStage, ...] = (
                (ProgressStage.INSERT_CARD, ProgressStage.PIN_ENTRY)
                if card
                else (ProgressStage.WAITING_FOR_CUSTOMER,)
            )
            stages += (ProgressStage.CONTACTING_ACQUIRER,)
            out += [PaymentProgress(service_id=request.service_id, stage=s) for s in stages]
        acquirer = self._acquirer(request)
        self._remember(request.ecr_ref, TransactionKind.PAYMENT, request.amount, acquirer)
        out.append(
            PaymentResponse(
                service_id=request.service_id,
                ecr_ref=request.ecr_ref,
                result=_OK,
                amount=request.amount,
                kind=request.kind,
                acquirer=acquirer,
            )
        )
        if card:
            out.append(EventNotification(event=NotificationKind.CARD_REMOVED))
        return out

    def _simple(self, request: Request) -> Response:  # noqa: PLR0911 - one branch per category
        sid = request.service_id
        if isinstance(request, ReversalRequest):
            return self._reversal(request)
        if isinstance(request, RefundRequest):
            acquirer = self._acquirer(request)
            self._remember(request.ecr_ref, TransactionKind.REFUND, request.amount, acquirer)
            return RefundResponse(
                service_id=sid,
                ecr_ref=request.ecr_ref,
                result=_OK,
                amount=request.amount,
                acquirer=acquirer,
            )
        if isinstance(request, TransactionStatusRequest):
            record = self.transactions.get(request.ecr_ref)
            if record is None:
                return failure_response(request, ErrorCondition.NOT_FOUND)
            return TransactionStatusResponse(
                service_id=sid, ecr_ref=request.ecr_ref, result=_OK, transaction=record
            )
        if isinstance(request, AbortRequest):
            return AbortResponse(service_id=sid, result=_OK)
        if isinstance(request, DiagnosisRequest):
            return DiagnosisResponse(
                service_id=sid,
                result=_OK,
                health=HEALTH,
                acquirer_reachable=True if request.check_acquirer else None,
            )
        if isinstance(request, ReconciliationRequest):
            return self._reconciliation(request)
        if isinstance(request, PrintRequest):
            return PrintResponse(service_id=sid, result=_OK)
        if isinstance(request, DisplayRequest):
            return DisplayResponse(service_id=sid, result=_OK)
        if isinstance(request, AdminRequest):
            version = request.firmware.version if request.firmware else PEER_FIRMWARE
            if request.action is not AdminAction.FIRMWARE_UPDATE:
                version = PEER_FIRMWARE
            return AdminResponse(service_id=sid, result=_OK, firmware_version=version)
        return failure_response(request, ErrorCondition.UNAVAILABLE_SERVICE)

    def _reversal(self, request: ReversalRequest) -> ReversalResponse:
        record = self.transactions.get(request.ecr_ref)
        state = (
            TransactionState.VOIDED
            if request.reason is ReversalReason.VOID
            else TransactionState.REVERSED
        )
        if record is not None:
            self.transactions[request.ecr_ref] = record.model_copy(update={"state": state})
        return ReversalResponse(
            service_id=request.service_id,
            ecr_ref=request.ecr_ref,
            result=_OK,
            acquirer=self._acquirer(request),
        )

    def _reconciliation(self, request: ReconciliationRequest) -> ReconciliationResponse:
        totals: dict[PaymentKind, Totals] = {}
        for record in self.transactions.values():
            kind = (
                PaymentKind.QR_CODE
                if record.acquirer and record.acquirer.wallet
                else (PaymentKind.CARD)
            )
            t = totals.get(kind, Totals(kind=kind))
            if record.kind is TransactionKind.REFUND:
                t = t.model_copy(
                    update={
                        "refund_count": t.refund_count + 1,
                        "refund_amount": t.refund_amount + record.amount,
                    }
                )
            elif record.state is TransactionState.APPROVED:
                t = t.model_copy(update={"count": t.count + 1, "amount": t.amount + record.amount})
            totals[kind] = t
        batch = f"{self._batch:06d}"
        if request.kind is ReconciliationKind.SETTLEMENT:
            self._batch += 1
            self.transactions.clear()
        return ReconciliationResponse(
            service_id=request.service_id, result=_OK, batch=batch, totals=tuple(totals.values())
        )


async def serve(
    endpoint: LinkEndpoint,
    responder: Responder,
    report: Callable[[Event], None] | None = None,
) -> None:
    """Answer every request arriving on ``endpoint`` with ``responder`` (runs until cancelled).

    Args:
        endpoint: the terminal side's endpoint.
        responder: makes the answers.
        report: called with every event first (the program prints them as JSON lines).
    """
    async for event in endpoint.events():
        if report is not None:
            report(event)
        if isinstance(event, MessageReceived) and isinstance(event.message, Request):
            for message in responder.answer(event.message):
                try:
                    endpoint.send(message)
                except LinkError as error:  # the link went down meanwhile
                    logger.warning("cannot answer %s: %s", event.message.type, error)
                    break


# -- reporting -----------------------------------------------------------------------------------


async def _follow(endpoint: LinkEndpoint) -> None:
    async for event in endpoint.events():
        _report(event)


def emit(event: str, **fields: object) -> None:
    """Write one JSON line on stdout for the harness (deliberately stdout, not a log)."""
    sys.stdout.write(json.dumps({"event": event, **fields}, default=str) + "\n")
    sys.stdout.flush()


def _report(event: Event) -> None:
    if isinstance(event, LoggedIn):
        emit("logged_in", peer=event.peer.peer_id, key_id=event.peer.key_id)
    elif isinstance(event, LoggedOut):
        emit("logged_out")
    elif isinstance(event, LinkDead):
        emit("link_dead", reason=event.reason)
    elif isinstance(event, FrameRefused):
        emit("refused", reason=str(event.error))
    elif isinstance(event, MessageReceived) and isinstance(event.message, Request):
        emit("request", type=event.message.type, service_id=event.message.service_id)


# -- key file ------------------------------------------------------------------------------------


def save_key(path: Path, key: LongTermKey) -> None:
    """Write the long-term key as JSON (hex key bytes), mode 0600, atomically."""
    payload = {
        "ecr_id": key.ecr_id,
        "terminal_id": key.terminal_id,
        "key": key.secret_bytes().hex(),
    }
    atomic_write(path, json.dumps(payload).encode())


def load_key(path: Path) -> LongTermKey | None:
    """Read a key file written by :func:`save_key`; ``None`` if there is none."""
    if not path.exists():
        return None
    payload = json.loads(path.read_text())
    return LongTermKey(
        bytes.fromhex(payload["key"]), ecr_id=payload["ecr_id"], terminal_id=payload["terminal_id"]
    )


# -- the program ---------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m shouyin.link.peer", description=__doc__.split("\n\n")[0]
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--connect", metavar="URL", help="dial the cashier system (or open a port)")
    where.add_argument("--listen", metavar="URL", help="wait for the cashier system (tcp:// only)")
    parser.add_argument("--terminal-id", default="T0001")
    parser.add_argument("--key-file", type=Path, help="long-term key (read; written on pairing)")
    parser.add_argument("--keystore", type=Path, help="terminal key store directory (TLS)")
    parser.add_argument("--pair", metavar="CODE", help="pair first with this 8-digit code")
    parser.add_argument("--ca-fingerprint", help="store CA fingerprint from the pairing QR code")
    parser.add_argument("--server-name", help="name to check in the server certificate")
    parser.add_argument("--progress", action="store_true", help="report payment progress")
    parser.add_argument("--dead-after", type=float, default=6.0)
    parser.add_argument("--log-level", default="WARNING")
    return parser


class _Peer:
    """One run of the program."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.address = LinkAddress.parse(args.connect or args.listen)
        self.terminal_id: str = args.terminal_id
        self.config = LinkConfig(heartbeat_interval=args.dead_after / 3, dead_after=args.dead_after)
        self.keystore = TerminalKeyStore(args.keystore) if args.keystore else None

    def _save(self, paired: Paired) -> None:
        if self.args.key_file is not None:
            save_key(self.args.key_file, paired.key)
        emit("paired", peer=paired.peer_id, key_id=paired.key.key_id)

    async def _pair_tls(self, code: str) -> LongTermKey:
        keystore = self.keystore
        if keystore is None:
            raise LinkError("pairing over tls:// needs --keystore")
        transport = await connect_tls(self.address, pairing_ssl_context())
        paired = await pair_terminal(
            transport,
            terminal_id=self.terminal_id,
            capabilities=peer_capabilities(),
            code=code,
            csr=keystore.make_csr(self.terminal_id),
            config=self.config,
            timeout=15,
        )
        if paired.certificate is None or paired.ca_certificate is None:
            raise LinkError("pairing brought back no certificate")
        keystore.install(
            paired.certificate,
            paired.ca_certificate,
            datetime.now(UTC),
            expected_ca_fingerprint=self.args.ca_fingerprint,
        )
        self._save(paired)
        return paired.key

    async def _connect(self) -> Transport:
        if self.address.scheme is Scheme.TLS:
            keystore = self.keystore
            if keystore is None:
                raise LinkError("tls:// needs --keystore")
            name = self.args.server_name or self.address.host
            return await connect_tls(
                self.address, keystore.ssl_client_context(name), server_hostname=name
            )
        return await open_transport(self.address)

    async def run(self, stop: asyncio.Event) -> None:
        key_file: Path | None = self.args.key_file
        key = load_key(key_file) if key_file is not None else None
        code: str | None = self.args.pair
        if code is not None and self.address.scheme is Scheme.TLS:
            key = await self._pair_tls(code)
            code = None
        connection = Connection(
            Role.POI,
            self.terminal_id,
            peer_capabilities(),
            config=self.config,
            framer_factory=self.address.framer_factory(),
            long_term_key=key,
        )
        connection.health = HEALTH
        responder = Responder(progress=self.args.progress)

        def answer(request: Request) -> list[MessageBase]:
            emit("request", type=request.type, service_id=request.service_id)
            return responder.answer(request)

        endpoint = LinkEndpoint(connection, connector=self._connect, on_request=answer, name="peer")
        reporting = asyncio.create_task(_follow(endpoint))
        try:
            if self.args.listen and not self.address.is_serial:
                await self._listen(endpoint, code, stop)
            else:
                if code is not None:
                    endpoint.attach(await self._connect())
                    self._save(await endpoint.pair(code, timeout=15))
                await endpoint.start()
                emit("started", address=str(self.address))
                await stop.wait()
        finally:
            reporting.cancel()
            await endpoint.close()

    async def _listen(self, endpoint: LinkEndpoint, code: str | None, stop: asyncio.Event) -> None:
        pending_code = [code] if code else []

        async def accepted(transport: Transport, _: LinkAddress) -> None:
            emit("connected", peer=transport.info.peer)
            endpoint.attach(transport)
            if pending_code:
                self._save(await endpoint.pair(pending_code.pop(), timeout=15))

        listener = await listen([self.address], accepted)
        try:
            emit("listening", address=str(listener.addresses[0]), port=listener.addresses[0].port)
            await stop.wait()
        finally:
            await listener.close()


async def _main(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await _Peer(args).run(stop)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the peer until SIGTERM/SIGINT; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        address = LinkAddress.parse(args.connect or args.listen)
    except AddressError as error:
        parser.error(str(error))
    if args.listen and address.scheme is Scheme.TLS:
        parser.error("a terminal does not serve TLS (its certificate is a client one): --connect")
    if address.scheme is Scheme.TLS and args.keystore is None:
        parser.error("tls:// needs --keystore")
    configure_logging(args.log_level, fmt="%(name)s %(levelname)s %(message)s")
    try:
        asyncio.run(_main(args))
    except (LinkError, OSError) as error:
        emit("error", message=str(error))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
