"""The acquirer host (sans-I/O): bytes and ``now`` in, an answer (or silence) out.

:meth:`Host.handle` takes one packed ISO 8583 message and returns a :class:`HostReply`: the
packed answer, how long to wait before sending it (slow issuer), or ``None`` (an issuer that
never answers). It never reads the clock and never sleeps; :mod:`shouyin.acquirer.server` does.

Order of checks for every message:

1. undecodable bytes: logged and dropped (no answer: there is nobody to answer to);
2. anything but a sign-in needs the terminal's working keys (else ``77``, sign in again, unMACed)
   and a correct MAC (else ``A0``, unMACed): logged, **never processed**;
3. a message that decodes but is not a valid request: ``30`` format error;
4. the request's rules: :mod:`shouyin.acquirer.financial` for sales, voids and refunds,
   :mod:`shouyin.acquirer.aftercare` for reversals, queries and settlement, here for sign-in and
   echo.

Idempotency: a financial request is keyed by terminal + batch + trace. Sending the same request
again gets the same answer from the ledger, never a second charge; another request reusing the
key gets ``94``. Reversals are idempotent too, and a reversal of a transaction the host never
saw is acknowledged ``00`` and remembered, so that the original, should it arrive late, is
refused (``94``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from shouyin.acquirer.aftercare import Aftercare
from shouyin.acquirer.codes import NetCode, ResponseCode, response_mti
from shouyin.acquirer.errors import IsoFormatError, LocalAcquirerError, RemoteAcquirerError
from shouyin.acquirer.financial import Financial, answer_header
from shouyin.acquirer.iso import pack, unpack
from shouyin.acquirer.ledger import Ledger
from shouyin.acquirer.mac import (
    TEST_MASTER_KEY,
    WorkingKeys,
    check_value,
    derive_key,
    derive_tmk,
    sign,
    unwrap_key,
    verify,
    wrap_key,
)
from shouyin.acquirer.messages import (
    EchoRequest,
    EchoResponse,
    IsoMessage,
    QueryRequest,
    Request,
    ReversalRequest,
    SettlementRequest,
    SignInRequest,
    SignInResponse,
    parse_request,
)
from shouyin.acquirer.pan import get_logger

__all__ = ["Host", "HostConfig", "HostReply"]

logger = get_logger(__name__)

_ID_SHAPES = {"11": 6, "41": 8, "42": 15}


@dataclass(frozen=True, slots=True)
class HostConfig:
    """Settings of the simulated host.

    Attributes:
        master_key: derives every terminal's TMK (:func:`~shouyin.acquirer.mac.derive_tmk`).
        userpaying_s: how long a USERPAYING customer takes to pay (or give up), and how long
            until a merchant-presented QR order is paid.
        slow_issuer_s: overrides the slow test card's delay (``None``: the card's own, 20 s).
    """

    master_key: bytes = TEST_MASTER_KEY
    userpaying_s: float = 3.0
    slow_issuer_s: float | None = None


@dataclass(frozen=True, slots=True)
class HostReply:
    """What to do about one received message.

    Attributes:
        message: the packed answer, or ``None`` to stay silent.
        delay_s: seconds to wait before sending it.
        mti: the request's MTI (``""`` when undecodable), for logs and fault rules.
    """

    message: bytes | None
    delay_s: float = 0.0
    mti: str = ""


class Host:
    """The acquirer host's rules over a :class:`~shouyin.acquirer.ledger.Ledger`.

    Args:
        ledger: where transactions, settlements and working keys are kept.
        config: the host's settings (replace ``host.config`` to change them at run time).
        random: a source of random bytes (working keys); ``os.urandom`` by default.
    """

    def __init__(
        self,
        ledger: Ledger,
        config: HostConfig | None = None,
        random: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.ledger = ledger
        self.config = config or HostConfig()
        self._random = random
        self._storage_key = derive_key(self.config.master_key, "shouyin-ledger-keys", "host")
        self._keys: dict[str, WorkingKeys] = {}
        self.financial = Financial(
            ledger,
            derive_key(self.config.master_key, "shouyin-fingerprint", "host"),
            lambda: self.config,
        )
        self.aftercare = Aftercare(ledger, self.financial)

    # -- keys -----------------------------------------------------------------------------------

    def working_keys(self, terminal_id: str) -> WorkingKeys | None:
        """The working keys of a signed-in terminal.

        Args:
            terminal_id: the terminal id.

        Returns:
            The keys from its last sign-in (also across host restarts), or ``None``.
        """
        keys = self._keys.get(terminal_id)
        if keys is None:
            stored = self.ledger.load_keys(terminal_id)
            if stored is None:
                return None
            try:
                keys = WorkingKeys(
                    unwrap_key(self._storage_key, stored[0]),
                    unwrap_key(self._storage_key, stored[1]),
                )
            except RemoteAcquirerError:
                logger.error("stored keys of terminal %s do not unwrap", terminal_id)
                return None
            self._keys[terminal_id] = keys
        return keys

    # -- entry point ----------------------------------------------------------------------------

    def handle(self, message: bytes, now: datetime) -> HostReply:
        """Process one received message.

        Args:
            message: the packed ISO 8583 message (without framing).
            now: the current time (aware).

        Returns:
            The answer to send (or silence).
        """
        try:
            fields = unpack(message)
        except IsoFormatError as error:
            logger.warning("undecodable message dropped (%d bytes): %s", len(message), error)
            return HostReply(None)
        mti = fields["t"]
        terminal_id = fields.get("41", "")
        is_sign_in = mti == "0800" and fields.get("60", "")[6:9] == NetCode.SIGN_IN
        keys = None
        if not is_sign_in:
            keys = self.working_keys(terminal_id)
            if keys is None:
                logger.warning("%s from terminal %r refused: not signed in", mti, terminal_id)
                return self._refusal(fields, ResponseCode.SIGN_IN_AGAIN)
            if not verify(message, keys.mak):
                logger.warning(
                    "%s trace %s from terminal %s refused: MAC error (not processed)",
                    mti,
                    fields.get("11", "-"),
                    terminal_id,
                )
                return self._refusal(fields, ResponseCode.MAC_ERROR)
        try:
            request = parse_request(fields)
        except IsoFormatError as error:
            logger.warning("%s from terminal %r refused: %s", mti, terminal_id, error)
            return self._refusal(fields, ResponseCode.FORMAT_ERROR, keys)
        with self.ledger.transaction():
            return self._dispatch(request, keys, now)

    def _dispatch(self, request: Request, keys: WorkingKeys | None, now: datetime) -> HostReply:
        if isinstance(request, SignInRequest):
            return self._sign_in(request, now)
        if keys is None:  # pragma: no cover - every other request passed the MAC check
            raise AssertionError("MAC-checked request without keys")
        delay, silent = 0.0, False
        answer: IsoMessage
        match request:
            case EchoRequest():
                answer = EchoResponse(**answer_header(request, now, ResponseCode.APPROVED))
            case ReversalRequest():
                answer = self.aftercare.reverse(request, now)
            case QueryRequest():
                answer = self.aftercare.query(request, now)
            case SettlementRequest():
                answer = self.aftercare.settle(request, now)
            case _:
                answer, delay, silent = self.financial.handle(request, keys, now)
        if silent:
            logger.info("%s trace %06d: the issuer never answers", request.MTI, request.trace)
            return HostReply(None, mti=request.MTI)
        return self._reply(request, answer, keys, delay)

    @staticmethod
    def _reply(
        request: Request, answer: IsoMessage, keys: WorkingKeys, delay_s: float = 0.0
    ) -> HostReply:
        return HostReply(sign(answer.to_fields(), keys.mak), delay_s, request.MTI)

    # -- non-financial --------------------------------------------------------------------------

    def _sign_in(self, request: SignInRequest, now: datetime) -> HostReply:
        keys = WorkingKeys.generate(self._random(32))
        tmk = derive_tmk(request.terminal_id, self.config.master_key)
        self.ledger.save_keys(
            request.terminal_id,
            wrap_key(self._storage_key, keys.mak),
            wrap_key(self._storage_key, keys.pik),
            now.isoformat(),
        )
        self._keys[request.terminal_id] = keys
        answer = SignInResponse(
            **answer_header(request, now, ResponseCode.APPROVED),
            mak_wrapped=wrap_key(tmk, keys.mak),
            mak_kcv=check_value(keys.mak),
            pik_wrapped=wrap_key(tmk, keys.pik),
            pik_kcv=check_value(keys.pik),
        )
        logger.info(
            "terminal %s signed in, batch %06d, MAK kcv %s",
            request.terminal_id,
            request.batch,
            answer.mak_kcv,
        )
        return self._reply(request, answer, keys)

    def _refusal(
        self, fields: Mapping[str, str], code: ResponseCode, keys: WorkingKeys | None = None
    ) -> HostReply:
        """A minimal answer (MTI, trace, ids, response code): MAC'ed only for ``30``."""
        answer = {"t": response_mti(fields["t"]), "39": code.value}
        for number, width in _ID_SHAPES.items():
            value = fields.get(number, "")
            if len(value) == width and value.isalnum() and value.isascii():
                answer[number] = value
        try:
            packed = sign(answer, keys.mak) if keys is not None else pack(answer)
        except LocalAcquirerError:  # an MTI we cannot even answer: stay silent
            logger.warning("cannot answer MTI %r", fields["t"])
            return HostReply(None, mti=fields["t"])
        return HostReply(packed, mti=fields["t"])
