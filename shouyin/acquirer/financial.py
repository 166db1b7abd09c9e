"""The acquirer's money rules: sale, QR micropay and precreate, void, refund, reversal, query and
settlement, over the ledger (sans-I/O; called by :class:`shouyin.acquirer.host.Host` inside one
ledger transaction per message).

Answers to rule violations (nothing is charged for any of them):

* ``94`` a trace number reused for a different request, or an original arriving after its
  reversal; ``12`` a request for a closed (settled) batch, a void of a sale that is not
  approved or not in the open batch, a refund of a sale that is not approved or settled;
  ``13`` a zero amount, a void for another amount, a refund above what is left to refund;
  ``25`` an original that cannot be found.

QR orders (kind ``qr``) in state USERPAYING (status ``pending``) resolve lazily: whenever the host
next looks at one (query, duplicate, void, reversal, settlement) at or after ``resolves_at``, it
becomes SUCCESS (approved) or PAYERROR (declined). A revoke (0400) closes it as REVOKED, paid or
not (a paid one is refunded by the wallet). Settlement closes any still-waiting order (CLOSED).

Settlement totals count, per payment kind (card or wallet), the approved sales and refunds of
the batch; voided and reversed transactions count nowhere.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shouyin.acquirer.codes import (
    ProcessingCode,
    ResponseCode,
    TxnKind,
    TxnStatus,
    Wallet,
    WalletStatus,
)
from shouyin.acquirer.ledger import Ledger, Txn
from shouyin.acquirer.mac import WorkingKeys, cmac_aes
from shouyin.acquirer.messages import (
    CardSaleRequest,
    FinancialResponse,
    IsoMessage,
    QrPrecreateRequest,
    QrSaleRequest,
    RefundRequest,
    RefundResponse,
    Request,
    VoidRequest,
    local_stamp,
)
from shouyin.acquirer.pan import get_logger, mask_pan
from shouyin.acquirer.rules import card_decision, qr_decision

if TYPE_CHECKING:
    from collections.abc import Callable

    from shouyin.acquirer.host import HostConfig

__all__ = ["Financial", "MoneyRequest", "Outcome", "answer_header", "qr_payload"]

logger = get_logger(__name__)

_RC = ResponseCode
_SALES = (TxnKind.SALE, TxnKind.QR)
_ORDER_PREFIX = {Wallet.WECHAT: "4200", Wallet.ALIPAY: "2088", Wallet.UNIONPAY: "9562"}

Outcome = tuple[IsoMessage, float, bool]
"""An answer, the delay before sending it, and whether to stay silent instead."""

MoneyRequest = CardSaleRequest | QrSaleRequest | QrPrecreateRequest | VoidRequest | RefundRequest


def answer_header(request: Request, now: datetime, code: str) -> dict[str, object]:
    """The fields every answer echoes or sets: trace, time, ids, batch, response code.

    Args:
        request: the request answered.
        now: the host time.
        code: the response code.

    Returns:
        Keyword arguments for a response model.
    """
    local_time, local_date = local_stamp(now)
    return {
        "trace": request.trace,
        "local_time": local_time,
        "local_date": local_date,
        "terminal_id": request.terminal_id,
        "merchant_id": request.merchant_id,
        "batch": request.batch,
        "response_code": code,
    }


def qr_payload(wallet: Wallet | None, order_id: str | None) -> str | None:
    """The code a terminal shows for a merchant-presented order (a reserved ``.invalid`` URL)."""
    if wallet is None or order_id is None:
        return None
    return f"https://qr.shouyin.invalid/{wallet.value}/{order_id}"


class Financial:
    """The money rules over a ledger.

    Args:
        ledger: the ledger (the caller holds its transaction open).
        fingerprint_key: HMAC key of the request fingerprints.
        config: returns the host's current settings.
    """

    def __init__(
        self, ledger: Ledger, fingerprint_key: bytes, config: Callable[[], HostConfig]
    ) -> None:
        self.ledger = ledger
        self._fingerprint_key = fingerprint_key
        self._config = config

    def handle(self, request: MoneyRequest, keys: WorkingKeys, now: datetime) -> Outcome:
        """Apply the rules to one MAC-checked request that moves money.

        Args:
            request: a sale, QR sale, precreate, void or refund.
            keys: the terminal's working keys (the PIK checks PIN blocks).
            now: the current time (aware).

        Returns:
            The outcome.
        """
        match request:
            case CardSaleRequest():
                return self._card_sale(request, keys, now)
            case QrSaleRequest():
                return self._qr_sale(request, now), 0.0, False
            case QrPrecreateRequest():
                return self._precreate(request, now), 0.0, False
            case VoidRequest():
                return self._void(request, now), 0.0, False
            case RefundRequest():
                return self._refund(request, now), 0.0, False
        raise AssertionError(f"unroutable request {request.MTI}")  # pragma: no cover

    # -- helpers --------------------------------------------------------------------------------

    def _fingerprint(self, *parts: object) -> str:
        digest = hmac.new(
            self._fingerprint_key, "|".join(map(str, parts)).encode(), hashlib.sha256
        ).digest()
        return base64.urlsafe_b64encode(digest[:18]).decode()

    @staticmethod
    def _answer(
        request: MoneyRequest, code: str, now: datetime, row: Txn | None = None
    ) -> IsoMessage:
        model = RefundResponse if isinstance(request, RefundRequest) else FinancialResponse
        proc = request.CONSTANTS["3"]
        extra: dict[str, object] = {}
        if row is not None:
            extra = {
                "rrn": row.rrn,
                "auth_code": row.auth_code,
                "wallet": row.wallet,
                "wallet_status": row.wallet_status,
                "wallet_order_id": row.wallet_order_id,
            }
            if proc == ProcessingCode.QR_PRECREATE:
                extra["qr_payload"] = qr_payload(row.wallet, row.wallet_order_id)
        return model(
            **answer_header(request, now, code),
            processing_code=proc,
            amount=request.amount,
            **extra,
        )

    def _duplicate(self, request: MoneyRequest, fingerprint: str, now: datetime) -> Txn | str:
        """The existing row for this key, ``"94"`` for a conflict, ``""`` for a new request."""
        key = (request.terminal_id, request.batch, request.trace)
        row = self.ledger.find(*key)
        if row is None:
            if self.ledger.find_reversal(*key) is not None:
                logger.warning("%s trace %06d arrived after its reversal", request.MTI, key[2])
                return _RC.DUPLICATE
            return ""
        if row.fingerprint != fingerprint:
            logger.warning("trace %06d of %s reused for another request", key[2], key[0])
            return _RC.DUPLICATE
        logger.info("duplicate %s trace %06d: same answer, no new charge", request.MTI, key[2])
        return self.resolve(row, now)

    def _closed(self, request: Request) -> bool:
        return self.ledger.settlement(request.terminal_id, request.batch) is not None

    def _screen(self, request: MoneyRequest, fingerprint: str, now: datetime) -> IsoMessage | None:
        """The answer when the request is a duplicate, a conflict or for a closed batch."""
        existing = self._duplicate(request, fingerprint, now)
        if isinstance(existing, Txn):
            return self._answer(request, existing.response_code, now, existing)
        if existing:
            return self._answer(request, existing, now)
        if self._closed(request):
            logger.warning("%s for closed batch %06d refused", request.MTI, request.batch)
            return self._answer(request, _RC.INVALID_TRANSACTION, now)
        return None

    def _record(
        self,
        request: MoneyRequest,
        kind: TxnKind,
        code: str,
        *,
        fingerprint: str,
        now: datetime,
        status: TxnStatus | None = None,
        **extra: object,
    ) -> Txn:
        approved = code == _RC.APPROVED
        status = status or (TxnStatus.APPROVED if approved else TxnStatus.DECLINED)
        stamp = now.isoformat()
        row = Txn(
            terminal_id=request.terminal_id,
            merchant_id=request.merchant_id,
            batch=request.batch,
            trace=request.trace,
            kind=kind,
            processing_code=request.CONSTANTS["3"],
            amount=request.amount,
            response_code=code,
            status=status,
            fingerprint=fingerprint,
            local_time=request.local_date + request.local_time,
            created_at=stamp,
            updated_at=stamp,
            rrn=f"{now:%y%m%d}{self.ledger.next_number('rrn') % 1_000_000:06d}",
            auth_code=self._approval_code() if status is TxnStatus.APPROVED else None,
            **extra,  # type: ignore[arg-type]
        )
        row = self.ledger.insert(row)
        logger.info(
            "%s %s terminal %s batch %06d trace %06d %s %d fen -> %s (%s) rrn %s",
            request.MTI,
            kind.value,
            row.terminal_id,
            row.batch,
            row.trace,
            row.masked_pan or (row.wallet.value if row.wallet else "-"),
            row.amount,
            code,
            row.status.value,
            row.rrn,
        )
        return row

    def _approval_code(self) -> str:
        number = self.ledger.next_number("auth")
        digest = cmac_aes(self._fingerprint_key, number.to_bytes(16, "big"))
        return f"{int.from_bytes(digest[:4], 'big') % 1_000_000:06d}"

    def _order_id(self, wallet: Wallet, now: datetime) -> str:
        return f"{_ORDER_PREFIX[wallet]}{now:%Y%m%d}{self.ledger.next_number('order'):012d}"

    def resolve(self, row: Txn, now: datetime, closing: bool = False) -> Txn:
        """Finish a waiting QR order whose time has come.

        Args:
            row: any ledger row (only ``pending`` ones change).
            now: the current time.
            closing: a settlement closes the batch: an order still waiting is CLOSED.

        Returns:
            The row as it is now.
        """
        if row.status is not TxnStatus.PENDING:
            return row
        due = row.resolves_at is not None and now >= datetime.fromisoformat(row.resolves_at)
        if due and row.final_code == _RC.APPROVED:
            return self.ledger.update(
                row,
                now,
                status=TxnStatus.APPROVED,
                response_code=_RC.APPROVED.value,
                wallet_status=WalletStatus.SUCCESS,
                auth_code=self._approval_code(),
            )
        if due and row.final_code is not None:
            return self.ledger.update(
                row,
                now,
                status=TxnStatus.DECLINED,
                response_code=row.final_code,
                wallet_status=WalletStatus.PAYERROR,
            )
        if closing:
            return self.ledger.update(
                row,
                now,
                status=TxnStatus.DECLINED,
                response_code=_RC.DO_NOT_HONOUR.value,
                wallet_status=WalletStatus.CLOSED,
            )
        return row

    # -- sales ----------------------------------------------------------------------------------

    def _card_sale(self, request: CardSaleRequest, keys: WorkingKeys, now: datetime) -> Outcome:
        pan = request.card_number()
        if pan is None:
            return self._answer(request, _RC.FORMAT_ERROR, now), 0.0, False
        config = self._config()
        decision = card_decision(
            pan,
            request.card_expiry(),
            request.pin_block,
            keys.pik,
            now,
            slow_issuer_s=config.slow_issuer_s,
        )
        fingerprint = self._fingerprint(request.MTI, request.amount, pan, request.entry_mode)
        screened = self._screen(request, fingerprint, now)
        if screened is not None:
            return screened, decision.delay_s, decision.silent
        code = decision.code if request.amount > 0 else _RC.INVALID_AMOUNT
        masked = mask_pan(pan) if 13 <= len(pan) <= 19 else None
        row = self._record(
            request,
            TxnKind.SALE,
            code,
            fingerprint=fingerprint,
            now=now,
            masked_pan=masked,
            entry_mode=request.entry_mode,
        )
        return self._answer(request, code, now, row), decision.delay_s, decision.silent

    def _qr_sale(self, request: QrSaleRequest, now: datetime) -> IsoMessage:
        decision = qr_decision(request.auth_code)
        fingerprint = self._fingerprint(request.MTI, request.amount, request.auth_code)
        screened = self._screen(request, fingerprint, now)
        if screened is not None:
            return screened
        if request.amount == 0:
            row = self._record(
                request, TxnKind.QR, _RC.INVALID_AMOUNT, fingerprint=fingerprint, now=now
            )
            return self._answer(request, _RC.INVALID_AMOUNT, now, row)
        truth = decision.truth
        pending = truth == _RC.IN_PROGRESS
        wait = timedelta(seconds=self._config().userpaying_s)
        wallet = decision.wallet
        row = self._record(
            request,
            TxnKind.QR,
            truth,
            fingerprint=fingerprint,
            now=now,
            status=TxnStatus.PENDING if pending else None,
            wallet=wallet,
            wallet_status=WalletStatus.SUCCESS if truth == _RC.APPROVED else decision.status,
            wallet_order_id=self._order_id(wallet, now) if wallet is not None else None,
            resolves_at=(now + wait).isoformat() if decision.final_code else None,
            final_code=decision.final_code,
        )
        answer = self._answer(request, decision.answer, now, row)
        if decision.answer != truth:  # SYSTEMERROR: the terminal hears 96, the order is paid
            answer = answer.model_copy(update={"wallet_status": decision.status, "auth_code": None})
        return answer

    def _precreate(self, request: QrPrecreateRequest, now: datetime) -> IsoMessage:
        wallet = request.wallet or Wallet.WECHAT
        fingerprint = self._fingerprint(request.MTI, request.amount, wallet)
        screened = self._screen(request, fingerprint, now)
        if screened is not None:
            return screened
        if request.amount == 0:
            row = self._record(
                request, TxnKind.QR, _RC.INVALID_AMOUNT, fingerprint=fingerprint, now=now
            )
            return self._answer(request, _RC.INVALID_AMOUNT, now, row)
        never = request.amount % 100 == 96
        wait = timedelta(seconds=self._config().userpaying_s)
        row = self._record(
            request,
            TxnKind.QR,
            _RC.IN_PROGRESS,
            fingerprint=fingerprint,
            now=now,
            status=TxnStatus.PENDING,
            wallet=wallet,
            wallet_status=WalletStatus.NOTPAY,
            wallet_order_id=self._order_id(wallet, now),
            resolves_at=None if never else (now + wait).isoformat(),
            final_code=None if never else _RC.APPROVED.value,
        )
        return self._answer(request, _RC.IN_PROGRESS, now, row)

    # -- void and refund ------------------------------------------------------------------------

    def _void(self, request: VoidRequest, now: datetime) -> IsoMessage:
        fingerprint = self._fingerprint(
            request.MTI, request.amount, request.original_batch, request.original_trace
        )
        screened = self._screen(request, fingerprint, now)
        if screened is not None:
            return screened
        original = self.ledger.find(
            request.terminal_id, request.original_batch, request.original_trace
        )
        if original is not None:
            original = self.resolve(original, now)
        if original is None or request.original_rrn not in (None, original.rrn):
            code = _RC.NOT_FOUND
        elif (
            original.kind not in _SALES
            or original.batch != request.batch
            or original.status is not TxnStatus.APPROVED
        ):
            code = _RC.INVALID_TRANSACTION
        elif original.amount != request.amount:
            code = _RC.INVALID_AMOUNT
        else:
            code = _RC.APPROVED
            self.ledger.update(
                original,
                now,
                status=TxnStatus.VOIDED,
                wallet_status=WalletStatus.REFUND if original.wallet else None,
            )
        row = self._record(
            request, TxnKind.VOID, code, fingerprint=fingerprint, now=now, **self._copied(original)
        )
        return self._answer(request, code, now, row)

    def _refund(self, request: RefundRequest, now: datetime) -> IsoMessage:
        fingerprint = self._fingerprint(request.MTI, request.amount, request.original_rrn)
        screened = self._screen(request, fingerprint, now)
        if screened is not None:
            return screened
        original = self.ledger.find_by_rrn(request.merchant_id, request.original_rrn)
        if original is None or (
            request.original_trace is not None
            and (original.trace, original.batch) != (request.original_trace, request.original_batch)
        ):
            code = _RC.NOT_FOUND
        elif original.status not in (TxnStatus.APPROVED, TxnStatus.SETTLED):
            code = _RC.INVALID_TRANSACTION
        elif not 0 < request.amount <= original.amount - self.ledger.refunded(original.id):
            code = _RC.INVALID_AMOUNT
        else:
            code = _RC.APPROVED
            if original.wallet is not None:
                self.ledger.update(original, now, wallet_status=WalletStatus.REFUND)
        row = self._record(
            request,
            TxnKind.REFUND,
            code,
            fingerprint=fingerprint,
            now=now,
            **self._copied(original),
        )
        return self._answer(request, code, now, row)

    @staticmethod
    def _copied(original: Txn | None) -> dict[str, Any]:
        if original is None:
            return {}
        return {
            "original_id": original.id,
            "masked_pan": original.masked_pan,
            "wallet": original.wallet,
        }
